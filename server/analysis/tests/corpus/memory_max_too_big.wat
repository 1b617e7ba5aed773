;; detect_unsafe_operations, low: a maximum (4 GiB) over the limit; the minimum is fine.
(module (memory 1 65536))
