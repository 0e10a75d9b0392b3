#!/usr/bin/env bash
# Example CI gate: start the bundled mock server, run the dual-round benchmark against it, and fail
# the job when goodput or the error rate is out of bounds.  Point ENDPOINT at a real server (and
# drop the mocker part) to gate a deployment.  Exit codes (dual_round_benchmarker.py --help, plus 1):
#   0 ok | 1 the mock server did not start | 2 usage | 3 preflight failed
#   4 goodput below --fail-on-slo | 5 errors above --fail-on-errors
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}        # the interpreter that runs the mocker and the benchmarker
MOCKER_ARGS=${MOCKER_ARGS:-}     # more mock-server flags, e.g. "--error-rate 0.01"
OUT=${OUT:-results/ci-gate}
MIN_GOODPUT=${MIN_GOODPUT:-90}   # percent of requests that must meet the SLO, in every round
MAX_ERRORS=${MAX_ERRORS:-1}      # percent of requests that may fail, in every round
EXTRA_ARGS=${EXTRA_ARGS:-}       # more benchmarker flags, e.g. "--slo ttft_ms=500"

if [ -z "${ENDPOINT:-}" ]; then
  log=$(mktemp)
  # shellcheck disable=SC2086  # MOCKER_ARGS is a list of flags
  "$PYTHON" llm_mocker.py --host 127.0.0.1 --port 0 --ttft-ms 20 --itl-ms 5 --output-tokens 32 \
    $MOCKER_ARGS >"$log" 2>&1 &
  mocker=$!
  trap 'kill $mocker 2>/dev/null; rm -f "$log"' EXIT
  base=""
  for _ in $(seq 200); do  # up to 20 s; `|| true`: no match yet must not trip set -e
    base=$(grep -o 'http://[0-9.:]*' "$log" | head -n 1 || true)
    [ -n "$base" ] && break
    kill -0 "$mocker" 2>/dev/null || break  # it exited: waiting longer will not help
    sleep 0.1
  done
  if [ -z "$base" ]; then
    echo "ci_gate: FAIL: the mock server did not start ($PYTHON llm_mocker.py); its output:" >&2
    cat "$log" >&2
    exit 1
  fi
  ENDPOINT="$base/v1/chat/completions"
  METRICS="$base/metrics"
fi

status=0
"$PYTHON" dual_round_benchmarker.py \
  --endpoint "$ENDPOINT" \
  --dataset examples/example_dataset.json \
  --concurrency 2 8 \
  ${METRICS:+--prometheus-url "$METRICS"} \
  --slo-file examples/slo_example.yaml \
  --fail-on-slo "$MIN_GOODPUT" \
  --fail-on-errors "$MAX_ERRORS" \
  --output-dir "$OUT" --overwrite --quiet $EXTRA_ARGS || status=$?

case $status in
  0) echo "ci_gate: PASS (results in $OUT/summary.json)" ;;
  4) echo "ci_gate: FAIL: goodput below ${MIN_GOODPUT}% in some round" >&2 ;;
  5) echo "ci_gate: FAIL: more than ${MAX_ERRORS}% of requests failed in some round" >&2 ;;
  *) echo "ci_gate: FAIL: the benchmark could not run (exit $status)" >&2 ;;
esac
exit $status
