;; Declares 2 GiB of initial memory: over the runtime's memory limit.
(module
  (memory (export "memory") 32768)
  (func (export "wio_input") (param i32) (result i32) (i32.const 1024))
  (func (export "wio_handle") (param i32) (result i64) (i64.const 0)))
