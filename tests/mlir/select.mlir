// Selection flips in MLIR, for each rule and each override, on the inputs sattn-select's own
// tests use (tests/cli/select/, whose comments give the costs). select_agrees.sh checks every
// choice against sattn-select on every example; here each flip is shown on its own.

// The rules in order; disabling one (pass option or SATTN_DISABLE_*) falls through to the next,
// and the last to the cost model.
// RUN: sattn-opt %S/../cli/select/rules.mlir -sattn-select-spec | FileCheck %s --check-prefix=BLG
// RUN: env SATTN_DISABLE_BLG=1 sattn-opt %S/../cli/select/rules.mlir -sattn-select-spec | FileCheck %s --check-prefix=NM
// RUN: sattn-opt %S/../cli/select/rules.mlir -sattn-select-spec=disable=block_local_global | FileCheck %s --check-prefix=NM
// RUN: env SATTN_DISABLE_BLG=1 SATTN_DISABLE_NM=1 sattn-opt %S/../cli/select/rules.mlir -sattn-select-spec | FileCheck %s --check-prefix=TOPK
// RUN: sattn-opt %S/../cli/select/rules.mlir -sattn-select-spec=disable=blg,nm | FileCheck %s --check-prefix=TOPK
// RUN: env SATTN_DISABLE_BLG=1 SATTN_DISABLE_NM=1 SATTN_DISABLE_TOPK=1 sattn-opt %S/../cli/select/rules.mlir -sattn-select-spec | FileCheck %s --check-prefix=LSH
// RUN: env SATTN_DISABLE_BLG=1 SATTN_DISABLE_NM=1 SATTN_DISABLE_TOPK=1 SATTN_DISABLE_LSH=1 sattn-opt %S/../cli/select/rules.mlir -sattn-select-spec | FileCheck %s --check-prefix=LANDMARK
// RUN: env SATTN_DISABLE_BLG=1 SATTN_DISABLE_NM=1 SATTN_DISABLE_TOPK=1 SATTN_DISABLE_LSH=1 SATTN_DISABLE_LANDMARK=1 sattn-opt %S/../cli/select/rules.mlir -sattn-select-spec | FileCheck %s --check-prefix=RULES-OFF
// BLG: selection = "rule: global_tokens = 16 > 0 selects block_local_global", {{.*}}spec = "block_local_global"
// NM: selection = "rule: global_tokens = 16 > 0 would select block_local_global, but it is disabled by {{SATTN_DISABLE_BLG=1|--disable block_local_global}}; nm_n = 2 and nm_m = 8 selects nm_structured", {{.*}}spec = "nm_structured"
// TOPK: selection = "rule: {{.*}}topk_k = 16 selects topk_per_query", {{.*}}spec = "topk_per_query"
// LSH: selection = "rule: {{.*}}lsh_buckets = 4 selects lsh", {{.*}}spec = "lsh"
// LANDMARK: selection = "rule: {{.*}}num_landmarks = 16 selects landmark", {{.*}}spec = "landmark"
// RULES-OFF: selection = "cost: {{.*}}spec = "bsr"

// The cost model and its hints: a close call on cpu (sliding_window) that the prefer hints and
// the backend flip; flag over environment.
// RUN: sattn-opt %S/../cli/select/close_call.mlir -sattn-select-spec | FileCheck %s --check-prefix=SW
// RUN: sattn-opt %S/../cli/select/close_call.mlir -sattn-select-spec=prefer-bsr | FileCheck %s --check-prefix=BSR
// RUN: env SATTN_PREFER_BSR=1 sattn-opt %S/../cli/select/close_call.mlir -sattn-select-spec | FileCheck %s --check-prefix=BSR-ENV
// RUN: env SATTN_PREFER_BSR=1 sattn-opt %S/../cli/select/close_call.mlir -sattn-select-spec=prefer-sw | FileCheck %s --check-prefix=SW
// RUN: sattn-opt %S/../cli/select/close_call.mlir -sattn-select-spec=backend=rvv | FileCheck %s --check-prefix=BSR-RVV
// RUN: env SATTN_DISABLE_SW=1 sattn-opt %S/../cli/select/close_call.mlir -sattn-select-spec | FileCheck %s --check-prefix=BSR
// SW: selection = "cost: cheapest on cpu: sliding_window {{.*}}spec = "sliding_window"
// BSR: selection = "cost: {{.*}}spec = "bsr"
// BSR-ENV: selection = "cost: {{.*}}SATTN_PREFER_BSR=1{{.*}}spec = "bsr"
// BSR-RVV: selection = "cost: cheapest on rvv: bsr {{.*}}spec = "bsr"

// GQA makes bsr win; SATTN_PREFER_SW and the lowpower profile (select.prefer: sw) flip it back.
// RUN: sattn-opt %S/../cli/select/gqa.mlir -sattn-select-spec | FileCheck %s --check-prefix=BSR
// RUN: env SATTN_PREFER_SW=on sattn-opt %S/../cli/select/gqa.mlir -sattn-select-spec | FileCheck %s --check-prefix=SW
// RUN: sattn-opt %S/../cli/select/gqa.mlir -sattn-select-spec=profile=%S/../../profiles/lowpower.yaml | FileCheck %s --check-prefix=SW-PROFILE
// SW-PROFILE: selection = "cost: {{.*}}profile {{.*}}lowpower.yaml: select.prefer: sw{{.*}}spec = "sliding_window"

// The window spills a 32 KiB L1 (bsr wins) and fits 64 KiB (sliding_window); l1-bytes outranks
// SATTN_HW_L1_BYTES; disabling bsr also gives sliding_window.
// RUN: sattn-opt %S/../cli/select/l1_window.mlir -sattn-select-spec | FileCheck %s --check-prefix=BSR
// RUN: sattn-opt %S/../cli/select/l1_window.mlir -sattn-select-spec=l1-bytes=65536 | FileCheck %s --check-prefix=SW
// RUN: env SATTN_HW_L1_BYTES=65536 sattn-opt %S/../cli/select/l1_window.mlir -sattn-select-spec | FileCheck %s --check-prefix=SW
// RUN: env SATTN_HW_L1_BYTES=65536 sattn-opt %S/../cli/select/l1_window.mlir -sattn-select-spec=l1-bytes=32768 | FileCheck %s --check-prefix=BSR
// RUN: env SATTN_DISABLE_BSR=1 sattn-opt %S/../cli/select/l1_window.mlir -sattn-select-spec | FileCheck %s --check-prefix=SW
// RUN: sattn-opt %S/../cli/select/l1_window.mlir -sattn-select-spec=disable=bsr | FileCheck %s --check-prefix=SW

// Forcing: the op's spec attribute, SATTN_FORCE_SPEC over it, force-spec over both.
// RUN: sattn-opt %S/../cli/select/forced_attr.mlir -sattn-select-spec | FileCheck %s --check-prefix=ATTR
// RUN: env SATTN_FORCE_SPEC=bsr sattn-opt %S/../cli/select/forced_attr.mlir -sattn-select-spec | FileCheck %s --check-prefix=ENV-FORCE
// RUN: env SATTN_FORCE_SPEC=bsr sattn-opt %S/../cli/select/forced_attr.mlir -sattn-select-spec=force-spec=sliding_window | FileCheck %s --check-prefix=FLAG-FORCE
// ATTR: selection = "override: forced by the op's spec attribute (dense, {{.*}}forced_attr.mlir:{{[0-9]+}}:{{[0-9]+}})", {{.*}}spec = "dense"
// ENV-FORCE: selection = "override: forced by SATTN_FORCE_SPEC=bsr, which overrides the op's spec attribute (dense)", {{.*}}spec = "bsr"
// FLAG-FORCE: selection = "override: forced by --force-spec sliding_window{{.*}}spec = "sliding_window"

// A selection already made is kept: select with one option, then lower with another.
// RUN: sattn-opt %S/../cli/select/close_call.mlir -sattn-select-spec=prefer-bsr -sattn-lower-rvv='prefer-sw' | FileCheck %s --check-prefix=KEPT
// KEPT: sattn.rvv_call {{.*}}spec = "bsr"
