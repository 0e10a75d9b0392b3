#!/usr/bin/env bash
# Example CI regression gate ("before vs after a deploy"): benchmark a baseline and a candidate,
# then fail the job when the candidate is slower beyond noise:
#   dual_round_benchmarker.py --compare BASELINE CANDIDATE --fail-on-regression GATES
# A gate METRIC=PCT fails when the candidate is more than PCT percent worse AND the 95% bootstrap
# interval of the change excludes zero (docs/benchmarker_guide.md, "Comparing two runs").
# BASELINE: the result directory of an earlier run (e.g. kept from the main branch's last job);
# unset, a baseline run is made first.  BASE_ENDPOINT / CANDIDATE_ENDPOINT point at real servers;
# unset, each side gets its own bundled mock server (BASE_MOCKER_ARGS / CANDIDATE_MOCKER_ARGS).
# Exit codes: 0 no regression | 1 a mock server did not start | 2 usage | 3 preflight failed
#   6 a round had no successful request | 7 regression (--fail-on-regression)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
OUT=${OUT:-results/ci-regression}
GATES=${GATES:-ttft_p50=25 ttft_p99=50 itl_p50=25}  # METRIC=PCT ..., see --help
EXTRA_ARGS=${EXTRA_ARGS:-}                         # more benchmarker flags for both runs
BASE_MOCKER_ARGS=${BASE_MOCKER_ARGS:-}
CANDIDATE_MOCKER_ARGS=${CANDIDATE_MOCKER_ARGS:-}

pids=()
logs=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for log in "${logs[@]}"; do rm -f "$log"; done
}
trap cleanup EXIT

# start_mocker ARGS: start a mock server on a free port; its base URL goes to MOCK_BASE.  Not
# called in $(...): a subshell's pids+= would not reach cleanup, and the server would outlive us.
start_mocker() {
  local log base="" pid
  log=$(mktemp)
  logs+=("$log")
  # shellcheck disable=SC2086  # $1 is a list of flags
  "$PYTHON" llm_mocker.py --host 127.0.0.1 --port 0 --ttft-ms 20 --itl-ms 5 --output-tokens 32 \
    $1 >"$log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 200); do  # up to 20 s
    base=$(grep -o 'http://[0-9.:]*' "$log" | head -n 1 || true)
    [ -n "$base" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$base" ]; then
    echo "ci_regression: FAIL: the mock server did not start ($PYTHON llm_mocker.py); its output:" >&2
    cat "$log" >&2
    return 1
  fi
  MOCK_BASE=$base
}

# bench ENDPOINT DIR: one dual-round run (same prompts both times, so the comparison is paired)
bench() {
  # shellcheck disable=SC2086  # EXTRA_ARGS is a list of flags
  "$PYTHON" dual_round_benchmarker.py --endpoint "$1" --dataset examples/example_dataset.json \
    --concurrency 2 --output-dir "$2" --overwrite --quiet $EXTRA_ARGS
}

if [ -z "${BASELINE:-}" ]; then
  if [ -z "${BASE_ENDPOINT:-}" ]; then
    start_mocker "$BASE_MOCKER_ARGS" || exit 1
    BASE_ENDPOINT="$MOCK_BASE/v1/chat/completions"
  fi
  BASELINE="$OUT/baseline"
  bench "$BASE_ENDPOINT" "$BASELINE"
fi
if [ -z "${CANDIDATE_ENDPOINT:-}" ]; then
  start_mocker "$CANDIDATE_MOCKER_ARGS" || exit 1
  CANDIDATE_ENDPOINT="$MOCK_BASE/v1/chat/completions"
fi
bench "$CANDIDATE_ENDPOINT" "$OUT/candidate"

status=0
# shellcheck disable=SC2086  # GATES is a list of METRIC=PCT items
"$PYTHON" dual_round_benchmarker.py --compare "$BASELINE" "$OUT/candidate" \
  --fail-on-regression $GATES --output-dir "$OUT/compare" --overwrite || status=$?
case $status in
  0) echo "ci_regression: PASS: no regression beyond $GATES (see $OUT/compare/compare.html)" ;;
  7) echo "ci_regression: FAIL: the candidate regressed (see $OUT/compare/compare.html)" >&2 ;;
  *) echo "ci_regression: FAIL: the comparison could not run (exit $status)" >&2 ;;
esac
exit $status
