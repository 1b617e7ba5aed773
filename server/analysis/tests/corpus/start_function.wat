;; detect_unsafe_operations, low: a start function.
(module
  (global $ready (mut i32) (i32.const 0))
  (func $init (global.set $ready (i32.const 1)))
  (start $init))
