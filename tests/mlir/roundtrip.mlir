// Generic and custom forms print and parse back to the same module.
// RUN: sattn-opt %s | FileCheck %s
// RUN: sattn-opt %s -mlir-print-op-generic | FileCheck %s --check-prefix=GEN
// RUN: sattn-opt %s -mlir-print-op-generic | sattn-opt | FileCheck %s
// RUN: sattn-opt %s | sattn-opt -mlir-print-op-generic | FileCheck %s --check-prefix=GEN

// CHECK: sattn.sparse_attention {causal = true, heads = 4 : i64, keep_ratio = 2.500000e-01 : f64, seq_len = 512 : i64}
// GEN: "sattn.sparse_attention"() {causal = true, heads = 4 : i64, keep_ratio = 2.500000e-01 : f64, seq_len = 512 : i64} : () -> ()
"sattn.sparse_attention"() {seq_len = 512 : i64, heads = 4 : i64, causal = true, keep_ratio = 0.25} : () -> ()
// CHECK: sattn.rvv_call {{{.*}}spec = "sliding_window"
// GEN: "sattn.rvv_call"() {{{.*}}spec = "sliding_window"
sattn.rvv_call {seq_len = 512, spec = "sliding_window", window_size = 8}
// CHECK: sattn.rocc_call {{{.*}}spec = "dense"
sattn.rocc_call {seq_len = 128, spec = "dense"}
