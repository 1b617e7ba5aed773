;; detect_unsafe_operations: 1001 initial table elements, over max_table_size 1000.
(module (table 1001 funcref))
