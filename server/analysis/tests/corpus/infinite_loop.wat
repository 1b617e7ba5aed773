;; detect_infinite_loops: a loop that does work and only ever branches back to itself.
(module
  (func $spin (export "spin") (local $i i32)
    (loop $forever
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $forever))))
