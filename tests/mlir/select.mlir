// Selection flips: each rule, the cost model, each override (pass option and SATTN_* variable).
// RUN: sattn-opt %s -split-input-file -sattn-select-spec | FileCheck %s --check-prefix=DEF
// RUN: sattn-opt %s -split-input-file -sattn-select-spec=prefer-sw | FileCheck %s --check-prefix=PSW
// RUN: env SATTN_FORCE_SPEC=dense sattn-opt %s -split-input-file -sattn-select-spec | FileCheck %s --check-prefix=ENVF
// RUN: sattn-opt %s -split-input-file -sattn-select-spec="force-spec=sliding_window" | FileCheck %s --check-prefix=FLAGF
// RUN: env SATTN_DISABLE_BSR=1 sattn-opt %s -split-input-file -sattn-select-spec | FileCheck %s --check-prefix=NOBSR
// RUN: sattn-opt %s -split-input-file -sattn-select-spec="disable=block_local_global,nm_structured" | FileCheck %s --check-prefix=DIS

// DEF: spec = "block_local_global"{{.*}}selection = "rule: global_tokens
// PSW: spec = "block_local_global"
// ENVF: selection = "override: SATTN_FORCE_SPEC=dense", spec = "dense"
// FLAGF: spec = "sliding_window"
// NOBSR: spec = "block_local_global"
// DIS: selection = "cost:
sattn.sparse_attention {seq_len = 256, heads = 2, head_dim = 16, global_tokens = 16, block_size = 16, window_size = 8}
// -----
// DEF: spec = "nm_structured"{{.*}}selection = "rule: nm_n
// DIS: spec = "dense"
sattn.sparse_attention {seq_len = 256, heads = 2, head_dim = 16, nm_n = 2, nm_m = 8}
// -----
// DEF: spec = "topk_per_query"
sattn.sparse_attention {seq_len = 256, heads = 2, head_dim = 16, topk_k = 16}
// -----
// DEF: spec = "lsh"
sattn.sparse_attention {seq_len = 256, heads = 2, head_dim = 16, lsh_buckets = 4}
// -----
// DEF: spec = "landmark"
sattn.sparse_attention {seq_len = 256, heads = 2, head_dim = 16, num_landmarks = 16}
// -----
// No sparse spec described: bsr by default; SATTN_DISABLE_BSR flips it.
// DEF: selection = "default: {{.*}}", spec = "bsr"
// NOBSR: spec = "{{dense|sliding_window}}"
sattn.sparse_attention {seq_len = 256, heads = 2, head_dim = 16}
// -----
// The op's own spec attribute is an override.
// DEF: selection = "override: {{.*}}", spec = "sliding_window"
sattn.sparse_attention {seq_len = 256, heads = 2, head_dim = 16, spec = "sliding_window", window_size = 4}
