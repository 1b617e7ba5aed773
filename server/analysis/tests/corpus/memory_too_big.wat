;; detect_unsafe_operations: 2000 pages (131,072,000 bytes) initial, over 100 MiB.
(module (memory 2000))
