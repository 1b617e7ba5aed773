;; detect_unsafe_operations: an exported function grows memory by whatever the host passes.
(module
  (memory 1)
  (func $grow (export "grow") (param $pages i32) (result i32)
    (memory.grow (local.get $pages))))
