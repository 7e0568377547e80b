;; loan_score — a credit score in 300..850 from one citizen's consented records.
;;
;; Input (privacy/sandbox ABI, 428 bytes): 3 vectors
;;   [0] 24 monthly housing-fund contributions, yuan
;;   [1] 24 monthly tax payments, yuan
;;   [2] business licence facts: [years_registered, capital_yuan, active (1 = active)]
;; Any other shape traps (`unreachable`).
;;
;; Output "int", integer arithmetic only:
;;   paid     = months with a contribution > 0                      (0..24)
;;   average  = sum(clamp(contribution, 0, 100000)) / 24           (integer division)
;;   taxed    = months with a tax payment > 0                       (0..24)
;;   years    = clamp(years_registered, 0, 10)
;;   capital  = 30 if capital >= 1000000, 15 if capital >= 100000, else 0
;;   status   = 40 if active == 1, else -100
;;   score    = clamp(300 + 10*paid + min(average, 5000)/50 + 5*taxed + 6*years
;;                    + capital + status, 300, 850)
(module
  (memory (export "memory") 1)

  ;; The input goes at offset 1024; grow memory to hold it, or return -1 if refused.
  (func (export "qcl_alloc") (param $len i32) (result i32)
    (local $pages i32)
    (local.set $pages
      (i32.shr_u (i32.add (local.get $len) (i32.const 66559)) (i32.const 16)))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const -1))
          (then (return (i32.const -1))))))
    (i32.const 1024))

  (func $clamp (param $v i64) (param $lo i64) (param $hi i64) (result i64)
    (select
      (local.get $lo)
      (select (local.get $hi) (local.get $v) (i64.gt_s (local.get $v) (local.get $hi)))
      (i64.lt_s (local.get $v) (local.get $lo))))

  (func (export "qcl_run") (param $p i32) (param $len i32) (result i64)
    (local $i i32)
    (local $at i32)
    (local $contribution i64)
    (local $paid i64)
    (local $sum i64)
    (local $taxed i64)
    (local $capital i64)
    (local $score i64)
    ;; shape: magic, count 3, then 24 + 24 + 3 values
    (if (i32.ne (local.get $len) (i32.const 428)) (then unreachable))
    (if (i32.ne (i32.load offset=4 (local.get $p)) (i32.const 3)) (then unreachable))
    (if (i32.ne (i32.load offset=8 (local.get $p)) (i32.const 24)) (then unreachable))
    (if (i32.ne (i32.load offset=204 (local.get $p)) (i32.const 24)) (then unreachable))
    (if (i32.ne (i32.load offset=400 (local.get $p)) (i32.const 3)) (then unreachable))
    ;; the 24 months of both series
    (block $done
      (loop $month
        (br_if $done (i32.eq (local.get $i) (i32.const 24)))
        (local.set $at (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 3))))
        (local.set $contribution (i64.load offset=12 (local.get $at)))
        (if (i64.gt_s (local.get $contribution) (i64.const 0))
          (then (local.set $paid (i64.add (local.get $paid) (i64.const 1)))))
        (local.set $sum
          (i64.add (local.get $sum)
            (call $clamp (local.get $contribution) (i64.const 0) (i64.const 100000))))
        (if (i64.gt_s (i64.load offset=208 (local.get $at)) (i64.const 0))
          (then (local.set $taxed (i64.add (local.get $taxed) (i64.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $month)))
    (local.set $score
      (i64.add
        (i64.add
          (i64.add (i64.const 300) (i64.mul (local.get $paid) (i64.const 10)))
          (i64.div_u
            (call $clamp (i64.div_u (local.get $sum) (i64.const 24)) (i64.const 0) (i64.const 5000))
            (i64.const 50)))
        (i64.add
          (i64.mul (local.get $taxed) (i64.const 5))
          (i64.mul
            (call $clamp (i64.load offset=404 (local.get $p)) (i64.const 0) (i64.const 10))
            (i64.const 6)))))
    ;; licence capital and status
    (local.set $capital (i64.load offset=412 (local.get $p)))
    (local.set $score
      (i64.add (local.get $score)
        (select (i64.const 30)
          (select (i64.const 15) (i64.const 0) (i64.ge_s (local.get $capital) (i64.const 100000)))
          (i64.ge_s (local.get $capital) (i64.const 1000000)))))
    (local.set $score
      (i64.add (local.get $score)
        (select (i64.const 40) (i64.const -100)
          (i64.eq (i64.load offset=420 (local.get $p)) (i64.const 1)))))
    (call $clamp (local.get $score) (i64.const 300) (i64.const 850)))
)
