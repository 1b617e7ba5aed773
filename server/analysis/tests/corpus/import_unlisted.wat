;; check_import_restrictions: a WASI import in neither list; the allowed `env.memory` gives nothing.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "env" "memory" (memory 1)))
