;; detect_infinite_loops: every target of the br_table stays inside the loop; the inner block's
;; exit leads back into the loop too. The helper before it makes the function index 1.
(module
  (func $helper)
  (func $dispatch (export "dispatch") (param $x i32)
    (loop $top
      (block $inner
        (br_table $inner $top $inner (local.get $x)))
      (local.set $x (i32.add (local.get $x) (i32.const 1)))
      (br $top))))
