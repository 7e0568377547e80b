;; insurance_eligibility — may this citizen buy the policy, from one year of medical claims?
;;
;; Input (privacy/sandbox ABI, 44 bytes): 1 vector
;;   [0] medical claims facts: [year, visits, total_cost_yuan, reimbursed_yuan]
;; Any other shape traps (`unreachable`). The year identifies the record; the rule ignores it.
;;
;; Output "bool": 1 (eligible) iff all of
;;   0 <= visits <= 12
;;   0 <= total_cost_yuan <= 50000
;;   0 <= reimbursed_yuan <= total_cost_yuan
;;   total_cost_yuan - reimbursed_yuan <= 20000    (out of pocket)
;; (The subtraction can only wrap when an earlier condition is already false.)
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

  (func (export "qcl_run") (param $p i32) (param $len i32) (result i64)
    (local $visits i64)
    (local $total i64)
    (local $reimbursed i64)
    (if (i32.ne (local.get $len) (i32.const 44)) (then unreachable))
    (if (i32.ne (i32.load offset=4 (local.get $p)) (i32.const 1)) (then unreachable))
    (if (i32.ne (i32.load offset=8 (local.get $p)) (i32.const 4)) (then unreachable))
    (local.set $visits (i64.load offset=20 (local.get $p)))
    (local.set $total (i64.load offset=28 (local.get $p)))
    (local.set $reimbursed (i64.load offset=36 (local.get $p)))
    (i64.extend_i32_u
      (i32.and
        (i32.and
          (i32.and (i64.ge_s (local.get $visits) (i64.const 0))
                   (i64.le_s (local.get $visits) (i64.const 12)))
          (i32.and (i64.ge_s (local.get $total) (i64.const 0))
                   (i64.le_s (local.get $total) (i64.const 50000))))
        (i32.and
          (i32.and (i64.ge_s (local.get $reimbursed) (i64.const 0))
                   (i64.le_s (local.get $reimbursed) (local.get $total)))
          (i64.le_s (i64.sub (local.get $total) (local.get $reimbursed)) (i64.const 20000))))))
)
