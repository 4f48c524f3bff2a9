;; upper: the WAT example actor. Output = u64 LE count of requests served so
;; far (kept in the state arena at offset 0) followed by the request with
;; ASCII a-z turned to A-Z. Memory: input at 4096, output after it.
(module
  (import "wio" "state_read" (func $state_read (param i32 i32 i32) (result i32)))
  (import "wio" "state_write" (func $state_write (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $cap (mut i32) (i32.const 0))

  ;; wio_input(cap) -> ptr: make room for cap bytes of input and cap+8 of output.
  (func (export "wio_input") (param $n i32) (result i32)
    (local $pages i32)
    (local.set $pages
      (i32.shr_u
        (i32.add (i32.add (i32.const 4112) (i32.shl (local.get $n) (i32.const 1))) (i32.const 65535))
        (i32.const 16)))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const -1))
          (then unreachable))))
    (global.set $cap (local.get $n))
    (i32.const 4096))

  (func (export "wio_init") (param $n i32) (result i32) (i32.const 0))

  (func (export "wio_handle") (param $n i32) (result i64)
    (local $out i32) (local $i i32) (local $c i32)
    (if (i32.gt_u (local.get $n) (global.get $cap)) (then (return (i64.const -1))))
    (local.set $out (i32.add (i32.const 4096) (global.get $cap)))
    (if (call $state_read (i32.const 0) (local.get $out) (i32.const 8)) (then (return (i64.const -1))))
    (i64.store (local.get $out) (i64.add (i64.load (local.get $out)) (i64.const 1)))
    (if (call $state_write (i32.const 0) (local.get $out) (i32.const 8)) (then (return (i64.const -1))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $c (i32.load8_u (i32.add (i32.const 4096) (local.get $i))))
        (if (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122)))
          (then (local.set $c (i32.sub (local.get $c) (i32.const 32)))))
        (i32.store8 (i32.add (i32.add (local.get $out) (i32.const 8)) (local.get $i)) (local.get $c))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
      (i64.extend_i32_u (i32.add (local.get $n) (i32.const 8)))))
)
