;; wio_handle asks for 4 GiB of memory; past the limit the grow fails and
;; the actor traps.
(module (import "wio" "state_read" (func $sr (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wio_input") (param i32) (result i32) (i32.const 1024))
  (func (export "wio_handle") (param i32) (result i64)
    (if (i32.eq (memory.grow (i32.const 65535)) (i32.const -1)) (then unreachable))
    (i64.const 0)))
