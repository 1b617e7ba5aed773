;; detect_infinite_loops: a function that calls itself on every path (function 1: one import first).
(module
  (import "host" "log" (func $log (param i32)))
  (func $forever (export "forever") (param $n i32) (result i32)
    (call $log (local.get $n))
    (call $forever (i32.add (local.get $n) (i32.const 1)))))
