;; Clean: the requested page count is compared with a bound before memory.grow.
(module
  (memory 1)
  (func $grow (export "grow") (param $pages i32) (result i32)
    (if (i32.gt_u (local.get $pages) (i32.const 16))
      (then (return (i32.const -1))))
    (memory.grow (local.get $pages))))
