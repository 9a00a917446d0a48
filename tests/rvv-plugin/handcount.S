# A riscv64 program whose kernel region can be counted by hand (tests/unit/test_rvv_plugin.cpp
# holds the count). No libc: every instruction executed is in this file. The region (between
# the sattn markers) runs twice, from an outer loop that is itself outside the region, and is:
#
#   setup        3 scalar                                   (li t0; li a4; mv a5)
#   fixed loop   FIXED_ITERS = 10 iterations of:
#                  4 scalar   (addi, c.addi, flw, bnez)
#                  2 vsetvl   (vsetvli, vsetivli)
#                  2 unit-stride loads  (vle32.v, vl1re32.v)
#                  1 strided load       (vlse32.v)
#                  2 indexed loads      (vluxei32.v, vloxei32.v)
#                  4 vector arithmetic  (vfadd.vv, vfmacc.vv, vmv.v.i, vmv.x.s)
#                  2 reductions         (vfredusum.vs, vredsum.vs)
#                  1 unit-stride store  (vse32.v)
#                  1 strided store      (vsse32.v)
#                  1 indexed store      (vsuxei32.v)
#   strip-mine   over STRIP_ELEMS = 64 float32 elements at LMUL 2, ceil(64 / (2*VLEN/32))
#                iterations of:
#                  1 vsetvl, 1 unit-stride load, 1 vector arithmetic, 1 unit-stride store,
#                  4 scalar (sub, slli, add, bnez)
#   tail         1 vsetvl (vsetvl, register form)
#
# Every vector instruction of the fixed loop runs at LMUL 1 (vl1re32.v is a one-register load
# whatever vtype says), those of the strip-mine loop at LMUL 2.
# Outside the region (not counted) there are scalar and vector instructions of every class too.
# Build: clang-16 --target=riscv64-linux-gnu -march=rv64gcv -c; riscv64-linux-gnu-ld -static.

        .equ FIXED_ITERS, 10
        .equ STRIP_ELEMS, 64

        .section .bss
        .balign 64
buf:    .zero 4096
out:    .zero 4096

        .text
        .globl _start
_start:
        la      a0, buf
        la      a1, out
        li      a2, 8                    # stride in bytes for the strided accesses
        li      t2, 4                    # AVL of the fixed loop
        li      s1, 2                    # the region runs twice
        vsetvli t1, zero, e32, m1, ta, ma   # outside the region: not counted
        vmv.v.i v4, 0                    # index vector: byte offsets 0
        vle32.v v9, (a0)
        li      t3, 0x10                 # vtype e32, m1, ta=0, ma=0 for the register vsetvl
outer:
        slti    x0, x0, 0x5a1            # region begin marker

        li      t0, FIXED_ITERS          # scalar
        li      a4, STRIP_ELEMS          # scalar
fixed:
        vsetvli t1, t2, e32, m1, ta, ma  # vsetvl
        vle32.v v1, (a0)                 # unit load
        vl1re32.v v10, (a0)              # unit load (whole register)
        vlse32.v v2, (a0), a2            # strided load
        vluxei32.v v3, (a0), v4          # indexed load
        vloxei32.v v11, (a0), v4         # indexed load
        vfadd.vv v5, v1, v2              # arith
        vfmacc.vv v5, v1, v3             # arith
        vmv.v.i v6, 0                    # arith (move)
        vmv.x.s a6, v5                   # arith (move to scalar)
        vfredusum.vs v7, v5, v6          # reduction
        vredsum.vs v8, v9, v6            # reduction
        vse32.v v5, (a1)                 # unit store
        vsse32.v v5, (a1), a2            # strided store
        vsuxei32.v v5, (a1), v4          # indexed store
        vsetivli zero, 4, e32, m1, ta, ma   # vsetvl
        flw     ft0, 0(a0)               # scalar (FP load: not a vector access)
        c.addi  a3, 1                    # scalar (compressed)
        addi    t0, t0, -1               # scalar
        bnez    t0, fixed                # scalar

        mv      a5, a0
strip:
        vsetvli t1, a4, e32, m2, ta, ma  # vsetvl
        vle32.v v2, (a5)                 # unit load
        vfadd.vv v2, v2, v2              # arith
        vse32.v v2, (a5)                 # unit store
        sub     a4, a4, t1               # scalar
        slli    t4, t1, 2                # scalar
        add     a5, a5, t4               # scalar
        bnez    a4, strip                # scalar

        vsetvl  t1, t2, t3               # vsetvl

        slti    x0, x0, 0x5a0            # region end marker
        vfadd.vv v1, v1, v1              # outside: not counted
        addi    s1, s1, -1
        bnez    s1, outer

        li      a0, 0
        li      a7, 93                   # exit
        ecall
