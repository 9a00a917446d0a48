// The verifier is libsattn's: the MLIR reader's attribute vocabulary and validate(), and for a
// backend call its spec and flags. Messages as sattn-select prints them (messages.mlir compares
// the two tools word for word); attribute types are ODS's.
// RUN: sattn-opt %s -split-input-file -verify-diagnostics

// expected-error @+1 {{attribute 'nm_n': nm_n (9) must be <= nm_m (8)}}
sattn.sparse_attention {seq_len = 64, nm_n = 9, nm_m = 8}
// -----
// expected-error @+1 {{must be divisible by kv_heads (4)}}
sattn.sparse_attention {seq_len = 64, heads = 6, kv_heads = 4}
// -----
// expected-error @+1 {{attribute 'gqa_group_size': heads (8) is not divisible by gqa_group_size (3)}}
sattn.sparse_attention {seq_len = 64, heads = 8, gqa_group_size = 3}
// -----
// expected-error @+1 {{attribute 'keep_ratio': must be in (0, 1] (got 1.5)}}
sattn.sparse_attention {seq_len = 64, keep_ratio = 1.5}
// -----
// expected-error @+1 {{attribute 'window_size': must be >= 1 (got 0)}}
"sattn.sparse_attention"() {seq_len = 64 : i64, window_size = 0 : i64} : () -> ()
// -----
// expected-error @+1 {{attribute 'precision': unknown precision 'fp7' (valid: fp32, bf16, i8, i4)}}
sattn.sparse_attention {seq_len = 64, precision = "fp7"}
// -----
// expected-error @+1 {{attribute 'spec': unknown spec 'diagonal' (valid: dense, sliding_window, bsr, block_local_global, nm_structured, topk_per_query, lsh, landmark, quest)}}
sattn.sparse_attention {seq_len = 64, spec = "diagonal"}
// -----
// expected-error @+1 {{attribute 'num_heads' repeats 'heads'}}
sattn.sparse_attention {heads = 4, num_heads = 4}
// -----
// expected-error @+1 {{attribute 'causal': expected a boolean (true/false or 0/1), got integer 2}}
sattn.sparse_attention {causal = 2}
// -----
// Types: ODS's constraints.
// expected-error @+1 {{attribute 'seq_len' failed to satisfy constraint: integer attribute}}
sattn.sparse_attention {seq_len = "long"}
// -----
// expected-error @+1 {{attribute 'precision' failed to satisfy constraint: string attribute}}
sattn.sparse_attention {precision = 16}
// -----
// expected-error @+1 {{attribute 'selection' failed to satisfy constraint: string attribute}}
sattn.sparse_attention {selection = 1}
// -----
// expected-error @+1 {{attribute 'nm_enabled' failed to satisfy constraint: boolean attribute}}
sattn.rvv_call {spec = "dense", nm_enabled = "no"}
// -----
// Backend calls: a spec that can run on the op, flags that agree with it.
// expected-error @+1 {{sattn.rvv_call needs a 'spec' attribute (the lowering passes write it)}}
sattn.rvv_call {seq_len = 256}
// -----
// expected-error @+1 {{attribute 'blg_enabled': true disagrees with spec 'bsr'}}
sattn.rvv_call {seq_len = 256, spec = "bsr", blg_enabled = true}
// -----
// expected-error @+1 {{attribute 'lsh_enabled': false disagrees with spec 'lsh'}}
sattn.rocc_call {seq_len = 256, spec = "lsh", lsh_enabled = false}
// -----
// expected-error @+1 {{spec bsr: bsr needs at least 2 key blocks to select among; kv_len 64 with block_size 64 gives 1}}
sattn.rocc_call {seq_len = 64, spec = "bsr", block_size = 64}
// -----
// expected-error @+1 {{attribute 'window_size'}}
sattn.rvv_call {seq_len = 64, spec = "sliding_window", window_size = 100}
// -----
// Unknown attributes are warnings, as in every reader; the flags mean nothing on the op itself.
// expected-warning @+2 {{unknown attribute 'colour' ignored}}
// expected-warning @+1 {{unknown attribute 'topk_enabled' ignored}}
sattn.sparse_attention {seq_len = 64, colour = "blue", topk_enabled = true}
// -----
// Valid ops verify silently.
sattn.sparse_attention {seq_len = 64, heads = 8, gqa_group_size = 4, causal = 1, scale = 1, window_size = 4}
sattn.rvv_call {seq_len = 64, spec = "nm_structured", nm_enabled = true, blg_enabled = false, nm_n = 2, nm_m = 4}
