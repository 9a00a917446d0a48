// The verifier's and the passes' messages are sattn-select's, word for word: each input below
// fails in sattn-opt and in sattn-select with the same message (MLIR adds its own location).
// RUN: split-file %s %t
// RUN: not sattn-opt %t/range.mlir 2>&1 | FileCheck %s --check-prefix=RANGE
// RUN: not sattn-select %t/range.mlir 2>&1 | FileCheck %s --check-prefix=RANGE
// RUN: not sattn-opt %t/gqa.mlir 2>&1 | FileCheck %s --check-prefix=GQA
// RUN: not sattn-select %t/gqa.mlir 2>&1 | FileCheck %s --check-prefix=GQA
// RUN: not sattn-opt %t/call.mlir 2>&1 | FileCheck %s --check-prefix=CALL
// RUN: not sattn-select %t/call.mlir 2>&1 | FileCheck %s --check-prefix=CALL
// RUN: not sattn-opt %t/forced.mlir -sattn-select-spec 2>&1 | FileCheck %s --check-prefix=FORCED
// RUN: not sattn-select %t/forced.mlir 2>&1 | FileCheck %s --check-prefix=FORCED
// RUN: env SATTN_PREFER_BSR=2 not sattn-opt %t/ok.mlir -sattn-lower-rvv 2>&1 | FileCheck %s --check-prefix=ENV
// RUN: env SATTN_PREFER_BSR=2 not sattn-select %t/ok.mlir 2>&1 | FileCheck %s --check-prefix=ENV
// RUN: not sattn-opt %t/ok.mlir -sattn-select-spec=backend=gpu 2>&1 | FileCheck %s --check-prefix=BACKEND
// RUN: not sattn-select %t/ok.mlir --backend gpu 2>&1 | FileCheck %s --check-prefix=BACKEND
// RUN: not sattn-opt %t/ok.mlir -sattn-select-spec=force-spec=diagonal 2>&1 | FileCheck %s --check-prefix=SPEC
// RUN: not sattn-select %t/ok.mlir --force-spec diagonal 2>&1 | FileCheck %s --check-prefix=SPEC

// RANGE: error: {{.*}}attribute 'keep_ratio': must be in (0, 1] (got 1.5)
// GQA: error: {{.*}}attribute 'gqa_group_size': 2 disagrees with heads / kv_heads = 8 / 2
// CALL: error: {{.*}}attribute 'topk_enabled': false disagrees with spec 'topk_per_query'
// FORCED: error: {{.*}}cannot use bsr (the op's spec attribute (bsr, {{.*}}forced.mlir:1:{{[0-9]+}})): bsr needs at least 2 key blocks to select among; kv_len 64 with block_size 64 gives 1
// ENV: error: {{.*}}SATTN_PREFER_BSR
// BACKEND: error: {{.*}}--backend must be cpu, rvv, rocc or imc (got 'gpu')
// SPEC: error: {{.*}}unknown spec 'diagonal'

//--- range.mlir
"sattn.sparse_attention"() {seq_len = 64 : i64, keep_ratio = 1.5 : f64} : () -> ()
//--- gqa.mlir
"sattn.sparse_attention"() {seq_len = 64 : i64, heads = 8 : i64, kv_heads = 2 : i64, gqa_group_size = 2 : i64} : () -> ()
//--- call.mlir
sattn.rvv_call {seq_len = 64 : i64, spec = "topk_per_query", topk_k = 8 : i64, topk_enabled = false}
//--- forced.mlir
"sattn.sparse_attention"() {seq_len = 64 : i64, spec = "bsr", block_size = 64 : i64} : () -> ()
//--- ok.mlir
"sattn.sparse_attention"() {seq_len = 64 : i64, window_size = 4 : i64} : () -> ()
