;; detect_infinite_loops, low: the halt idiom rustc emits for `loop {}` on a path it proves dead.
(module
  (func $never (export "never") (param i32) (result i32)
    (loop $l (br $l))
    (unreachable)))
