;; Imports wio.state_read with the wrong signature.
(module
  (import "wio" "state_read" (func $sr (param i64) (result i32)))
  (memory (export "memory") 1)
  (func (export "wio_input") (param i32) (result i32) (i32.const 1024))
  (func (export "wio_handle") (param i32) (result i64) (i64.const 0)))
