;; detect_unsafe_operations, medium: an internal function grows by a value loaded from memory.
(module
  (memory 1)
  (func $grow_by_header (param $p i32) (result i32)
    (memory.grow (i32.load (local.get $p))))
  (func (export "run") (result i32)
    (call $grow_by_header (i32.const 0))))
