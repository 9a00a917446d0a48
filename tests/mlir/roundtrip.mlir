// Generic and custom forms of every op print and parse back to the same module; libsattn's own
// reader (sattn-select) reads both forms alike.
// RUN: sattn-opt %s | FileCheck %s
// RUN: sattn-opt %s -mlir-print-op-generic | FileCheck %s --check-prefix=GEN
// RUN: sattn-opt %s -mlir-print-op-generic | sattn-opt | FileCheck %s
// RUN: sattn-opt %s | sattn-opt -mlir-print-op-generic | FileCheck %s --check-prefix=GEN
// Printing is a fixed point: what sattn-opt prints, it prints again unchanged, in either form.
// RUN: sattn-opt %s > %t.custom
// RUN: sattn-opt %t.custom | diff %t.custom -
// RUN: sattn-opt %s -mlir-print-op-generic > %t.generic
// RUN: sattn-opt %t.generic -mlir-print-op-generic | diff %t.generic -
// RUN: sattn-opt %s | sattn-select - > %t.from-custom
// RUN: sattn-opt %s -mlir-print-op-generic | sattn-select - > %t.from-generic
// Equal but for where the spec attribute is written (its column differs between the forms).
// RUN: sed -E 's/<stdin>:[0-9]+:[0-9]+/LOC/' %t.from-custom > %t.c
// RUN: sed -E 's/<stdin>:[0-9]+:[0-9]+/LOC/' %t.from-generic > %t.g
// RUN: diff %t.c %t.g
// RUN: FileCheck %s --check-prefix=PLAN < %t.from-custom

// CHECK-LABEL: module {
// CHECK-NEXT: sattn.sparse_attention {causal = true, heads = 4 : i64, keep_ratio = 2.500000e-01 : f64, seq_len = 512 : i64}
// GEN: "sattn.sparse_attention"() {causal = true, heads = 4 : i64, keep_ratio = 2.500000e-01 : f64, seq_len = 512 : i64} : () -> ()
// PLAN: "name":"op0"{{.*}}"spec":"bsr"
"sattn.sparse_attention"() {seq_len = 512 : i64, heads = 4 : i64, causal = true, keep_ratio = 0.25} : () -> ()

// An op without attributes prints without a dictionary.
// CHECK-NEXT: sattn.sparse_attention{{$}}
// GEN-NEXT: "sattn.sparse_attention"() : () -> ()
sattn.sparse_attention

// Unsigned seeds, unit attributes and 0/1 booleans keep their form.
// CHECK-NEXT: sattn.sparse_attention {lsh_buckets = 4 : i64, seed = 18446744073709551615 : ui64, seq_len = 64 : i64, wrap}
// GEN-NEXT: "sattn.sparse_attention"() {lsh_buckets = 4 : i64, seed = 18446744073709551615 : ui64, seq_len = 64 : i64, wrap} : () -> ()
// PLAN: "name":"op2"{{.*}}"seed":18446744073709551615{{.*}}"spec":"lsh"
sattn.sparse_attention {seq_len = 64, lsh_buckets = 4, seed = 18446744073709551615 : ui64, wrap}

// CHECK-NEXT: sattn.rvv_call {{{.*}}spec = "sliding_window", window_size = 8 : i64}
// GEN-NEXT: "sattn.rvv_call"() {{{.*}}spec = "sliding_window", window_size = 8 : i64} : () -> ()
// PLAN: "name":"op3"{{.*}}"kind":"override"{{.*}}"spec":"sliding_window"
sattn.rvv_call {seq_len = 512, spec = "sliding_window", window_size = 8, nm_enabled = false}

// CHECK-NEXT: sattn.rocc_call {blg_enabled = true, block_size = 16 : i64, global_tokens = 16 : i64, seq_len = 128 : i64, spec = "block_local_global"}
// GEN-NEXT: "sattn.rocc_call"() {blg_enabled = true, block_size = 16 : i64, global_tokens = 16 : i64, seq_len = 128 : i64, spec = "block_local_global"} : () -> ()
// PLAN: "name":"op4"{{.*}}"spec":"block_local_global"
"sattn.rocc_call"() {seq_len = 128 : i64, spec = "block_local_global", block_size = 16 : i64, global_tokens = 16 : i64, blg_enabled = true} : () -> ()
// CHECK-NEXT: }
