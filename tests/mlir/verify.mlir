// The verifier is libsattn's validate(): the same messages as sattn-select.
// RUN: not sattn-opt %s -split-input-file -verify-diagnostics 2>&1 | FileCheck %s --check-prefix=NONE --allow-empty
// RUN: sattn-opt %s -split-input-file -verify-diagnostics

// NONE-NOT: error: unexpected

// expected-error @+1 {{attribute 'nm_n'}}
sattn.sparse_attention {seq_len = 64, nm_n = 9, nm_m = 8}
// -----
// expected-error @+1 {{attribute 'heads'}}
sattn.sparse_attention {seq_len = 64, heads = 6, kv_heads = 4}
// -----
// expected-error @+1 {{unknown precision 'fp7'}}
sattn.sparse_attention {seq_len = 64, precision = "fp7"}
// -----
// expected-error @+1 {{unknown spec 'diagonal'}}
sattn.sparse_attention {seq_len = 64, spec = "diagonal"}
// -----
// expected-error @+1 {{failed to satisfy constraint: integer attribute}}
sattn.sparse_attention {seq_len = "long"}
// -----
// expected-error @+1 {{attribute 'blg_enabled': true disagrees with spec 'bsr'}}
sattn.rvv_call {seq_len = 256, spec = "bsr", blg_enabled = true}
// -----
// expected-error @+1 {{a backend call needs a 'spec' attribute}}
sattn.rocc_call {seq_len = 256}
// -----
// expected-warning @+1 {{unknown attribute 'colour' ignored}}
sattn.sparse_attention {seq_len = 64, colour = "blue"}
