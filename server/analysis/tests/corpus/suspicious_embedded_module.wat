;; suspicious_module_upload: a data segment that is itself a WebAssembly module.
(module
  (memory 1)
  (data (i32.const 0) "\00asm\01\00\00\00"))
