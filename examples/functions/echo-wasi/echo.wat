;; A WAGI echo function in WebAssembly text: answers with the request's own Content-Type and body, and tells what
;; it saw in X-Method, X-Path, X-Query, X-Authorization and X-Test headers. Build: npm run examples:build.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (memory (export "memory") 4)
  ;; 0..63: scratch (iovecs, counts); 512..1023: names; 1024..65535: environ pointers; 65536..131071: environ
  ;; strings; 131072..: the body being copied through.
  (data (i32.const 512) "CONTENT_TYPE")          ;; 512, 12
  (data (i32.const 528) "REQUEST_METHOD")        ;; 528, 14
  (data (i32.const 544) "PATH_INFO")             ;; 544, 9
  (data (i32.const 560) "QUERY_STRING")          ;; 560, 12
  (data (i32.const 576) "HTTP_AUTHORIZATION")    ;; 576, 18
  (data (i32.const 600) "HTTP_X_TEST")           ;; 600, 11
  (data (i32.const 640) "Content-Type: ")        ;; 640, 14
  (data (i32.const 656) "\nX-Method: ")          ;; 656, 11
  (data (i32.const 672) "\nX-Path: ")            ;; 672, 9
  (data (i32.const 688) "\nX-Query: ")           ;; 688, 10
  (data (i32.const 704) "\nX-Authorization: ")   ;; 704, 18
  (data (i32.const 728) "\nX-Test: ")            ;; 728, 9
  (data (i32.const 744) "\n\n")                  ;; 744, 2
  (data (i32.const 752) "text/plain")            ;; 752, 10

  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))

  ;; The value of environment variable name[0..len), as its address; 0 when absent.
  (func $getenv (param $name i32) (param $len i32) (result i32)
    (local $i i32) (local $count i32) (local $entry i32) (local $k i32) (local $same i32)
    (local.set $count (i32.load (i32.const 16)))
    (block $notfound
      (loop $entries
        (br_if $notfound (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $entry (i32.load (i32.add (i32.const 1024) (i32.mul (local.get $i) (i32.const 4)))))
        (local.set $k (i32.const 0))
        (local.set $same (i32.const 1))
        (block $compared
          (loop $chars
            (br_if $compared (i32.ge_u (local.get $k) (local.get $len)))
            (if (i32.ne (i32.load8_u (i32.add (local.get $entry) (local.get $k))) (i32.load8_u (i32.add (local.get $name) (local.get $k))))
              (then (local.set $same (i32.const 0)) (br $compared)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $chars)))
        (if (i32.and (local.get $same) (i32.eq (i32.load8_u (i32.add (local.get $entry) (local.get $len))) (i32.const 61)))
          (then (return (i32.add (local.get $entry) (i32.add (local.get $len) (i32.const 1))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $entries)))
    (i32.const 0))

  (func $header (param $label i32) (param $labelLen i32) (param $name i32) (param $nameLen i32)
    (local $value i32)
    (call $write (local.get $label) (local.get $labelLen))
    (local.set $value (call $getenv (local.get $name) (local.get $nameLen)))
    (if (local.get $value) (then (call $write (local.get $value) (call $strlen (local.get $value))))))

  (func (export "_start")
    (local $type i32) (local $n i32)
    (drop (call $environ_sizes_get (i32.const 16) (i32.const 20)))
    ;; Environment strings past 64 KiB do not fit: fail rather than overwrite the body area.
    (if (i32.gt_u (i32.load (i32.const 20)) (i32.const 65536)) (then unreachable))
    (drop (call $environ_get (i32.const 1024) (i32.const 65536)))
    (call $write (i32.const 640) (i32.const 14))
    (local.set $type (call $getenv (i32.const 512) (i32.const 12)))
    (if (i32.and (i32.ne (local.get $type) (i32.const 0)) (i32.ne (i32.load8_u (local.get $type)) (i32.const 0)))
      (then (call $write (local.get $type) (call $strlen (local.get $type))))
      (else (call $write (i32.const 752) (i32.const 10))))
    (call $header (i32.const 656) (i32.const 11) (i32.const 528) (i32.const 14))
    (call $header (i32.const 672) (i32.const 9) (i32.const 544) (i32.const 9))
    (call $header (i32.const 688) (i32.const 10) (i32.const 560) (i32.const 12))
    (call $header (i32.const 704) (i32.const 18) (i32.const 576) (i32.const 18))
    (call $header (i32.const 728) (i32.const 9) (i32.const 600) (i32.const 11))
    (call $write (i32.const 744) (i32.const 2))
    ;; The body, 64 KiB at a time, straight from stdin to stdout.
    (block $eof
      (loop $copy
        (i32.store (i32.const 32) (i32.const 131072))
        (i32.store (i32.const 36) (i32.const 65536))
        (drop (call $fd_read (i32.const 0) (i32.const 32) (i32.const 1) (i32.const 40)))
        (local.set $n (i32.load (i32.const 40)))
        (br_if $eof (i32.eqz (local.get $n)))
        (call $write (i32.const 131072) (local.get $n))
        (br $copy))))
)
