;; flushcount: state [0,8) counts requests, [8,16) counts wio_flush calls.
;; The output is the two counters, so a test can see that a drain flushed
;; and that the flush's state write was committed.
(module
  (import "wio" "state_read" (func $sr (param i32 i32 i32) (result i32)))
  (import "wio" "state_write" (func $sw (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wio_input") (param i32) (result i32) (i32.const 1024))
  (func $bump (param $off i32)
    (drop (call $sr (local.get $off) (i32.const 0) (i32.const 8)))
    (i64.store (i32.const 0) (i64.add (i64.load (i32.const 0)) (i64.const 1)))
    (drop (call $sw (local.get $off) (i32.const 0) (i32.const 8))))
  (func (export "wio_handle") (param i32) (result i64)
    (call $bump (i32.const 0))
    (drop (call $sr (i32.const 0) (i32.const 16) (i32.const 16)))
    (i64.const 0x0000001000000010))
  (func (export "wio_flush") (result i32)
    (call $bump (i32.const 8))
    (i32.const 0)))
