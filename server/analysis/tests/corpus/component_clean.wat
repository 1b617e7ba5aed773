;; Clean component wrapping a core module.
(component
  (core module $m
    (func (export "f") (result i32) (i32.const 1))))
