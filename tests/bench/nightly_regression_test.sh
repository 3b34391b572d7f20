#!/usr/bin/env bash
# benchmarks/nightly end to end on the golden tiny model, generation only, --quick:
#   runs 1-2: the history;  run 3: unchanged, must not be flagged (exit 0);
#   run 4: every sampling step slowed by LIKENESS_BENCH_INJECT_DELAY_MS, must be flagged (exit 1).
# The delay (400 ms on a ~150 ms step) makes run 4 about 3x slower, and the report is given a
# 40 % floor, so a busy shared machine neither hides the slowdown nor flags the unchanged run.
#   nightly_regression_test.sh SOURCE_DIR BUILD_DIR     (exit 77: skipped, binaries not built)
set -uo pipefail
SRC=$1
BUILD=$2
DELAY_MS=400
REPORT_ARGS="--min_history 2 --relative_floor 0.4"

for binary in generate_benchmark nightly_report; do
  if [[ ! -x $BUILD/bin/$binary ]]; then
    echo "SKIPPED: $BUILD/bin/$binary is not built"
    exit 77
  fi
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/likeness-nightly-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export LIKENESS_BUILD_DIR=$BUILD LIKENESS_MACHINE_ID=nightly-test
export LIKENESS_NIGHTLY_HISTORY=$WORK/history.jsonl LIKENESS_NIGHTLY_REPORT_ARGS=$REPORT_ARGS

run() {  # run N [env...]: one nightly run into $WORK/report-N; echoes its exit status
  local n=$1; shift
  env "$@" "$SRC/benchmarks/nightly" --quick --only generate --report "$WORK/report-$n" \
    > "$WORK/nightly-$n.log" 2>&1
  echo $?
}

fail() {
  echo "FAIL: $*"
  for f in "$WORK"/nightly-*.log; do echo "--- $f"; cat "$f"; done
  exit 1
}

for n in 1 2; do
  rc=$(run $n)
  [[ $rc == 0 ]] || fail "run $n (history) exited $rc"
done

rc=$(run 3)
[[ $rc == 0 ]] || fail "unchanged run 3 exited $rc: flagged without a change"
grep -q '"regressions": 0' "$WORK/report-3/summary.json" || fail "run 3 has regressions"
grep -q '<svg' "$WORK/report-3/index.html" || fail "run 3 report has no plot"

rc=$(run 4 LIKENESS_BENCH_INJECT_DELAY_MS=$DELAY_MS)
[[ $rc == 1 ]] || fail "slowed run 4 exited $rc, wanted 1 (regression flagged)"
grep -q '"kind": "regression"' "$WORK/report-4/summary.json" || fail "run 4 summary has no regression"
grep -q 'seconds_per_image' "$WORK/report-4/summary.json" || fail "run 4 did not flag seconds_per_image"
grep -q 'REGRESSED' "$WORK/report-4/index.html" || fail "run 4 page does not say REGRESSED"
[[ $(wc -l < "$WORK/history.jsonl") == 4 ]] || fail "history should hold 4 records"

echo "PASS: unchanged run not flagged; run slowed by $DELAY_MS ms/step flagged"
grep -A1 '"kind": "regression"' "$WORK/report-4/summary.json"
exit 0
