;; suspicious_module_upload: imports a process-exit and a process-spawning function.
(module
  (import "wasi" "proc_exit" (func (param i32)))
  (import "env" "system" (func (param i32) (result i32))))
