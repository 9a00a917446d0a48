#!/usr/bin/env bash
# One GPU session: compare the backward tile variants (bench/gpu/bwd_variants.sh, VARIANTS),
# pick per head_dim the fastest that passes the tests (bench/gpu/pick_bwd.py), then run the
# whole GPU suite (bench/gpu/run.sh: tests + benchmark against FlexAttention) built with the pick.
# Environment: as the two scripts (VARIANTS, OLD_SRC, SEQS, CASES, TC_CASES, BWD_CASES, OUT).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-bench/results}
OUT=$out BUILD=/tmp/sattn-bwdv SEQS=${VARIANT_SEQS:-${SEQS:-16384}} bash bench/gpu/bwd_variants.sh || true
flags=$(python3 bench/gpu/pick_bwd.py "$out/bwd-variants.json" "$out/bwd-variants-tests.txt" "${VARIANTS:-base:}" \
  2> >(tee -a "$out/bwd-variants.txt" >&2))
echo "picked: $flags" | tee -a "$out/bwd-variants.txt"
EXTRA_FLAGS="$flags" OUT=$out BUILD=/tmp/sattn-gpu bash bench/gpu/run.sh
