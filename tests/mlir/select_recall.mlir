// The sattn-select-spec pass under a quality target (min-recall, issue 20): the same choice as
// sattn-select --min-recall, the chosen grid point's parameters written onto the op, dense with a
// target of 1, the cheapest candidate with 0, and the real activations as calibration data; the
// bound's confidence (recall-confidence) and what it covers (recall-bound) from the pass and from the
// pipeline.
// RUN: sattn-opt %s -sattn-select-spec=min-recall=1.0 | FileCheck %s --check-prefix=ALL
// RUN: sattn-opt %s -sattn-select-spec=min-recall=0 | FileCheck %s --check-prefix=ANY
// RUN: env SATTN_MIN_RECALL=1 sattn-opt %s -sattn-select-spec | FileCheck %s --check-prefix=ALL
// RUN: sattn-opt %s "-sattn-select-spec=min-recall=0.9 data=%S/../../data/real/calib/layer3" | FileCheck %s --check-prefix=REAL
// RUN: sattn-select --min-recall 0.9 --data %S/../../data/real/calib/layer3 %s | %python -c "import json,sys; p=json.loads(sys.stdin.readline()); print('PLAN', p['spec'], p['params'])" | FileCheck %s --check-prefix=REAL-CLI
// RUN: sattn-opt %s -sattn-to-rvv=min-recall=0 | FileCheck %s --check-prefix=PIPE
// RUN: not sattn-opt %s -sattn-select-spec=min-recall=1.5 2>&1 | FileCheck %s --check-prefix=RANGE
// RUN: sattn-opt %s "-sattn-select-spec=min-recall=0.9 recall-confidence=0.5 data=%S/../../data/real/calib/layer3" | FileCheck %s --check-prefix=CONF
// RUN: sattn-opt %s "-sattn-to-rvv=min-recall=0 recall-confidence=0.6" | FileCheck %s --check-prefix=CONF-PIPE
// RUN: not sattn-opt %s "-sattn-select-spec=min-recall=0.9 recall-confidence=0.3" 2>&1 | FileCheck %s --check-prefix=CONF-RANGE
// RUN: sattn-opt %s "-sattn-select-spec=min-recall=0.9 recall-bound=cv data=%S/../../data/real/calib/layer3,%S/../../data/real/eval/layer3,%S/../../data/real/calib/layer3,%S/../../data/real/eval/layer3" | FileCheck %s --check-prefix=CV
// RUN: sattn-opt %s "-sattn-select-spec=min-recall=0.9 recall-bound=cv data=%S/../../data/real/calib/layer3,%S/../../data/real/eval/layer3" | FileCheck %s --check-prefix=CV-TWO
// RUN: sattn-opt %s "-sattn-to-rvv=min-recall=0 recall-bound=mean" | FileCheck %s --check-prefix=BOUND-PIPE
// RUN: not sattn-opt %s "-sattn-select-spec=min-recall=0.9 recall-bound=median" 2>&1 | FileCheck %s --check-prefix=BOUND-NAME
// ALL: selection = "recall: no sparse candidate reaches recall >= 1 {{.*}}: dense{{.*}}", {{.*}}spec = "dense"
// ANY: selection = "recall: cheapest on cpu with recall >= 0 on 1 calibration sample (synthetic, seed 23159): sliding_window window_size=4 {{.*}}, {{.*}}spec = "sliding_window"{{.*}}window_size = 4
// REAL: selection = "recall: cheapest on cpu with recall >= 0.9 on 1 calibration sample: [[SPEC:[a-z_]+]] {{.*}}spec = "[[SPEC]]"
// REAL-CLI: PLAN {{bsr|sliding_window|topk_per_query|dense}}
// PIPE: sattn.rvv_call {{{.*}}block_size = 32 : i64{{.*}}keep_ratio = 5.000000e-02 : f64{{.*}}selection = "recall: cheapest on rvv with recall >= 0 {{.*}}: bsr keep_ratio=0.05,block_size=32 {{.*}}spec = "bsr"
// RANGE: --min-recall must be from 0 to 1 (got 1.5)
// CONF: selection = "recall: cheapest on cpu with recall >= 0.9 on 1 calibration sample: {{.*}} at confidence 0.5, {{.*}}; --recall-confidence 0.5"
// CONF-PIPE: sattn.rvv_call {{{.*}}selection = "recall: cheapest on rvv with recall >= 0 {{.*}} at confidence 0.6, {{.*}}--recall-confidence 0.6"
// CONF-RANGE: --recall-confidence must be from 0.5 to below 1 (got 0.3)
// CV: selection = "recall: cheapest on cpu with recall >= 0.9 on 4 calibration samples, pooled: {{.*}} for the mean over text, {{.*}}; confidence {{0\.[0-9]+}} chosen by leave-one-out cross-validation over the 4 samples (out-of-sample recall {{.*}}); --min-recall 0.9; --recall-bound cv"
// CV-TWO: selection = "recall: cheapest on cpu with recall >= 0.9 on 2 calibration samples, pooled: {{.*}} at confidence 0.95 for the mean over text, {{.*}}; cv needs 4 or more samples: the mean bound at 0.95; --min-recall 0.9; --recall-bound cv"
// BOUND-PIPE: sattn.rvv_call {{{.*}}selection = "recall: cheapest on rvv with recall >= 0 {{.*}} for the mean over text, {{.*}}--recall-bound mean"
// BOUND-NAME: --recall-bound must be window, mean or cv (got 'median')
module {
  "sattn.sparse_attention"() {
    name = "real_layer3", heads = 6 : i64, kv_heads = 2 : i64, seq_len = 1024 : i64, head_dim = 64 : i64, causal = true
  } : () -> ()
}
