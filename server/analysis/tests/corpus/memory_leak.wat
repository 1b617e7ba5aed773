;; detect_memory_leaks: memory.grow in a loop whose result is dropped.
(module
  (memory 1)
  (func $hog (export "hog") (param $n i32)
    (loop $again
      (drop (memory.grow (i32.const 1)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $again (local.get $n)))))
