;; detect_unsafe_operations: table.grow by an exported function's parameter.
(module
  (table 1 funcref)
  (func $grow (export "grow_table") (param $n i32) (result i32)
    (table.grow (ref.null func) (local.get $n))))
