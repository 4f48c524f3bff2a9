;; wio_handle loads far outside its memory: a trap.
(module (import "wio" "state_read" (func $sr (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wio_input") (param i32) (result i32) (i32.const 1024))
  (func (export "wio_handle") (param i32) (result i64) (i64.load (i32.const 0x7ffffff0))))
