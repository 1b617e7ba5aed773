;; check_import_restrictions: `env.exit` is in blocked_imports.
(module
  (import "env" "exit" (func $exit (param i32)))
  (func (export "main") (call $exit (i32.const 0))))
