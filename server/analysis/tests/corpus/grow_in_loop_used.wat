;; Clean: memory.grow in a retry loop whose result is checked and used.
(module
  (memory 1)
  (func $reserve (export "reserve") (result i32) (local $base i32) (local $tries i32)
    (loop $retry
      (local.set $base (memory.grow (i32.const 1)))
      (if (i32.eq (local.get $base) (i32.const -1))
        (then
          (local.set $tries (i32.add (local.get $tries) (i32.const 1)))
          (br_if $retry (i32.ne (local.get $tries) (i32.const 3))))))
    (i32.store (i32.shl (local.get $base) (i32.const 16)) (i32.const 42))
    (local.get $base)))
