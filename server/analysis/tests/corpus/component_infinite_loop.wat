;; detect_infinite_loops inside a component's core module (function index within that module).
(component
  (core module $m
    (func $spin (loop $l (nop) (br $l)))))
