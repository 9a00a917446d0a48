// Every pass and pipeline, spelled every way (pass flags, pass options, -pass-pipeline, the named
// pipelines), and what the lowering carries: the resolved shape, numerics, parameters and flags.
// RUN: sattn-opt %s -sattn-lower-rvv | FileCheck %s --check-prefixes=RVV,CALL
// RUN: sattn-opt %s -pass-pipeline='builtin.module(sattn-lower-rvv)' | FileCheck %s --check-prefixes=RVV,CALL
// RUN: sattn-opt %s -sattn-to-rvv | FileCheck %s --check-prefixes=RVV,CALL
// RUN: sattn-opt %s -pass-pipeline='builtin.module(sattn-to-rvv)' | FileCheck %s --check-prefixes=RVV,CALL
// RUN: sattn-opt %s -sattn-select-spec=backend=rvv -sattn-lower-rvv | FileCheck %s --check-prefixes=RVV,CALL
// RUN: sattn-opt %s -sattn-lower-rvv -sattn-lower-rvv | FileCheck %s --check-prefixes=RVV,CALL
// RUN: sattn-opt %s -sattn-lower-rocc | FileCheck %s --check-prefixes=ROCC,CALL
// RUN: sattn-opt %s -sattn-to-rocc | FileCheck %s --check-prefixes=ROCC,CALL
// RUN: sattn-opt %s -pass-pipeline='builtin.module(sattn-select-spec{backend=rocc},sattn-lower-rocc)' | FileCheck %s --check-prefixes=ROCC,CALL
// The generic form of a lowered module verifies again (and -verify-each checks every pass).
// RUN: sattn-opt %s -sattn-lower-rocc -mlir-print-op-generic | sattn-opt -verify-each | FileCheck %s --check-prefixes=ROCC,CALL
// Pipeline options: forcing dense turns every flag off.
// RUN: sattn-opt %s -pass-pipeline='builtin.module(sattn-select-spec{force-spec=dense},sattn-lower-rocc)' | FileCheck %s --check-prefix=DENSE
// RUN: sattn-opt %s -sattn-to-rocc='force-spec=dense' | FileCheck %s --check-prefix=DENSE
// RUN: sattn-opt %s -sattn-lower-rvv='force-spec=dense disable=bsr' | FileCheck %s --check-prefix=DENSE
// Selection only: spec and selection are added, nothing is lowered.
// RUN: sattn-opt %s -sattn-select-spec | FileCheck %s --check-prefix=SEL
// A bad pass option is the same error as sattn-select's.
// RUN: not sattn-opt %s -sattn-to-rvv='disable=diagonal' 2>&1 | FileCheck %s --check-prefix=BAD

// RVV-NOT: sattn.sparse_attention
// ROCC-NOT: sattn.sparse_attention
// SEL-NOT: _call
// DENSE-NOT: _enabled = true
// BAD: error: --disable: unknown spec 'diagonal'

// Every field, for a block_local_global op with GQA in bf16.
// RVV: sattn.rvv_call {batch = 1 : i64, blg_enabled = true, block_size = 16 : i64, causal = false, comp_block_size = 0 : i64, global_tokens = 16 : i64, gqa_group_size = 2 : i64, head_dim = 16 : i64, heads = 4 : i64, kv_heads = 2 : i64, kv_len = 256 : i64, lsh_enabled = false, name = "blg", nm_enabled = false, precision = "bf16", scale = 2.500000e-01 : f64, selection = "rule: global_tokens = 16 > 0 selects block_local_global", seq_len = 256 : i64, spec = "block_local_global", topk_enabled = false, window_blocks = 1 : i64}
// ROCC: sattn.rocc_call {batch = 1 : i64, blg_enabled = true, {{.*}}spec = "block_local_global"
// DENSE: _call {{.*}}name = "blg"{{.*}}spec = "dense"
// SEL: sattn.sparse_attention {{{.*}}name = "blg"{{.*}}selection = "rule: global_tokens = 16 > 0 selects block_local_global", {{.*}}spec = "block_local_global"
sattn.sparse_attention {name = "blg", seq_len = 256, heads = 4, gqa_group_size = 2, head_dim = 16, global_tokens = 16, block_size = 16, precision = "bf16"}

// i8 with its scales (written as f32: the decimal value is kept); nm_structured.
// CALL: _call {{.*}}name = "nm"{{.*}}nm_enabled = true, nm_m = 8 : i64, nm_n = 2 : i64, precision = "i8", scale = 2.500000e-01 : f64, scale_k = 2.500000e-02 : f64, scale_q = 5.000000e-02 : f64, scale_v = 1.000000e-01 : f64, {{.*}}spec = "nm_structured", topk_enabled = false}
// DENSE: _call {{.*}}name = "nm"{{.*}}precision = "i8"{{.*}}spec = "dense"
sattn.sparse_attention {name = "nm", seq_len = 128, head_dim = 16, heads = 1, nm_n = 2, nm_m = 8, precision = "i8", scale_q = 0.05 : f32, scale_k = 0.025 : f32, scale_v = 0.1 : f32}

// bsr with compression scoring: comp_block_size and the defaults of the spec's other parameters.
// CALL: _call {{.*}}block_size = 32 : i64, causal = true, comp_block_size = 8 : i64, global_tokens = 0 : i64, {{.*}}keep_ratio = 2.500000e-01 : f64, {{.*}}name = "bsr"{{.*}}spec = "bsr"
sattn.sparse_attention {name = "bsr", seq_len = 256, head_dim = 16, heads = 2, causal, block_size = 32, keep_ratio = 0.25, comp_block_size = 8}

// top-k and lsh: their flags; lsh's seed stays unsigned.
// CALL: _call {{.*}}name = "topk"{{.*}}spec = "topk_per_query", topk_enabled = true, topk_k = 8 : i64}
sattn.sparse_attention {name = "topk", seq_len = 64, head_dim = 16, heads = 1, topk_k = 8}
// CALL: _call {{.*}}lsh_buckets = 4 : i64, lsh_enabled = true, lsh_rounds = 2 : i64, name = "lsh"{{.*}}seed = 7 : ui64{{.*}}spec = "lsh"
sattn.sparse_attention {name = "lsh", seq_len = 64, head_dim = 16, heads = 1, lsh_buckets = 4, lsh_rounds = 2, seed = 7}

// An unnamed op is named after its position, as libsattn's reader names it.
// CALL: _call {{.*}}name = "op5"
sattn.sparse_attention {seq_len = 64, head_dim = 16, heads = 1, window_size = 4}
