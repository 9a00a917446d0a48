// Every pipeline: select, lower to RVV, lower to RoCC, select then lower, pipeline syntax.
// RUN: sattn-opt %s -pass-pipeline='builtin.module(sattn-lower-rvv)' | FileCheck %s --check-prefix=RVV
// RUN: sattn-opt %s -sattn-lower-rocc | FileCheck %s --check-prefix=ROCC
// RUN: sattn-opt %s -sattn-select-spec=backend=rvv -sattn-lower-rvv | FileCheck %s --check-prefix=RVV
// RUN: sattn-opt %s -pass-pipeline='builtin.module(sattn-select-spec{force-spec=dense},sattn-lower-rocc)' | FileCheck %s --check-prefix=FORCED
// RUN: sattn-opt %s -sattn-lower-rvv -mlir-print-op-generic | sattn-opt -verify-each | FileCheck %s --check-prefix=RVV

// RVV-NOT: sattn.sparse_attention
// RVV: sattn.rvv_call {batch = 1 : i64, blg_enabled = true, block_size = 16 : i64, causal = false, comp_block_size = 0 : i64, gqa_group_size = 2 : i64, global_tokens = 16 : i64, head_dim = 16 : i64, heads = 4 : i64, kv_heads = 2 : i64, kv_len = 256 : i64, lsh_enabled = false, name = "blg", nm_enabled = false, precision = "bf16", scale = 2.500000e-01 : f64, selection = "rule: {{.*}}", seq_len = 256 : i64, spec = "block_local_global", topk_enabled = false, window_blocks = 1 : i64}
// ROCC: sattn.rocc_call {{{.*}}blg_enabled = true
// FORCED: sattn.rocc_call {{{.*}}blg_enabled = false{{.*}}spec = "dense"
sattn.sparse_attention {name = "blg", seq_len = 256, heads = 4, gqa_group_size = 2, head_dim = 16, global_tokens = 16, block_size = 16, precision = "bf16"}
// RVV: sattn.rvv_call {{{.*}}nm_enabled = true{{.*}}nm_m = 8 : i64, nm_n = 2 : i64{{.*}}scale_q = 5.000000e-02 : f64{{.*}}spec = "nm_structured"
sattn.sparse_attention {seq_len = 128, head_dim = 16, heads = 1, nm_n = 2, nm_m = 8, precision = "i8", scale_q = 0.05, scale_k = 0.05, scale_v = 0.05}
