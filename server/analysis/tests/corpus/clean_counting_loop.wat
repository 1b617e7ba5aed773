;; Clean: a loop that counts down and falls through when the counter reaches zero,
;; a loop left by a branch to an enclosing block, and a loop left from inside an `if`.
(module
  (import "env" "memory" (memory 1))
  (func $sum (export "sum") (param $n i32) (result i32) (local $acc i32)
    (loop $again
      (local.set $acc (i32.add (local.get $acc) (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $again (local.get $n)))
    (local.get $acc))
  (func $find (export "find") (param $p i32) (result i32)
    (block $found
      (loop $scan
        (br_if $found (i32.eqz (i32.load8_u (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $scan)))
    (local.get $p))
  (func $until (export "until") (param $p i32)
    (loop $again
      (if (i32.load (local.get $p))
        (then (return)))
      (br $again))))
