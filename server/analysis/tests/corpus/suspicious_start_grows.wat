;; suspicious_module_upload: the start function grows memory in a loop (until growth fails).
(module
  (memory 1)
  (func $bomb
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))))
  (start $bomb))
