#!/usr/bin/env bash
# End-to-end check of examples/recipe_env_test.yaml, run the way a CI job runs it.
#
# Starts the bundled mock server on a free loopback port, runs the recipe with its variables set
# and checks the result files (and that the API key appears in none of them), then runs it with
# the required DRB_OUTPUT_DIR missing and with a bad DRB_CONCURRENCY and checks exit code 2 and
# the message.  The mock server is stopped on any exit.  Run it from anywhere:
#
#   bash tests/test_recipe_env_integration.sh          (PYTHON=... picks the interpreter)
#
# tests/test_recipe_integration.py runs it from the pytest suite.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
RECIPE=examples/recipe_env_test.yaml
SECRET=sk-drbench-integration-test-9f3b2c
WORK=$(mktemp -d "${TMPDIR:-/tmp}/drbench-recipe-env.XXXXXX")
MOCK_PID=""

cleanup() {
    if [[ -n "$MOCK_PID" ]]; then
        kill "$MOCK_PID" 2>/dev/null || true
        wait "$MOCK_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$WORK"/*.err; do
        [[ -s "$f" ]] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
    done
    exit 1
}

# --- the mock server ---------------------------------------------------------------------------
"$PYTHON" llm_mocker.py --host 127.0.0.1 --port 0 --ttft-ms 5 --itl-ms 1 --output-tokens 8 \
    >"$WORK/mock.out" 2>"$WORK/mock.err" &
MOCK_PID=$!
BASE=""
for _ in $(seq 1 200); do  # up to 20 s
    line=$(head -n 1 "$WORK/mock.out" 2>/dev/null || true)
    if [[ "$line" =~ ^llm_mocker:\ serving\ on\ (http://127\.0\.0\.1:[0-9]+)$ ]]; then
        BASE=${BASH_REMATCH[1]}
        break
    fi
    kill -0 "$MOCK_PID" 2>/dev/null || fail "the mock server exited before serving"
    sleep 0.1
done
[[ -n "$BASE" ]] || fail "the mock server printed no ready line within 20 s"
echo "mock server at $BASE"

# --- a small dataset of our own, so the test depends on no example file but the recipe ----------
"$PYTHON" - "$WORK/prompts.jsonl" <<'EOF'
import json, sys
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for i in range(4):
        f.write(json.dumps({"text": f"Prompt {i}: describe the number {i} in a few words. " * 4}) + "\n")
EOF

# --- 1. everything from the environment: the run succeeds and writes every file ----------------
OUT="$WORK/results"
set +e
env DRB_ENDPOINT="$BASE/v1/chat/completions" \
    DRB_DATASET="$WORK/prompts.jsonl" \
    DRB_NUM_SAMPLES=3 \
    DRB_CONCURRENCY="1 2" \
    DRB_MAX_TOKENS=8 \
    DRB_API_KEY="$SECRET" \
    DRB_METRICS_URL="$BASE/metrics" \
    DRB_OUTPUT_DIR="$OUT" \
    "$PYTHON" dual_round_benchmarker.py --recipe "$RECIPE" --no-plots >"$WORK/run.out" 2>"$WORK/run.err"
status=$?
set -e
[[ $status -eq 0 ]] || fail "the recipe run exited $status, expected 0"

for f in summary.json metrics_summary.csv requests.jsonl \
    concurrency_1_round_1.json concurrency_1_round_2.json \
    concurrency_2_round_1.json concurrency_2_round_2.json; do
    [[ -s "$OUT/$f" ]] || fail "missing or empty result file $f"
done
lines=$(wc -l <"$OUT/requests.jsonl")
[[ $lines -eq 12 ]] || fail "requests.jsonl has $lines lines, expected 12 (3 prompts x 2 rounds x 2 levels)"
rows=$(($(wc -l <"$OUT/metrics_summary.csv") - 1))
[[ $rows -eq 4 ]] || fail "metrics_summary.csv has $rows rows, expected 4 (2 levels x 2 rounds)"

"$PYTHON" - "$OUT/summary.json" "$BASE" <<'EOF' || fail "summary.json does not record the recipe's values"
import json, sys
summary = json.load(open(sys.argv[1], encoding="utf-8"))
cfg, base = summary["config"], sys.argv[2]
assert cfg["endpoint"] == base + "/v1/chat/completions", cfg["endpoint"]
assert cfg["concurrency"] == [1, 2], cfg["concurrency"]
assert cfg["num_samples"] == 3 and cfg["max_tokens"] == 8, (cfg["num_samples"], cfg["max_tokens"])
assert cfg["prometheus_url"] == [base + "/metrics"], cfg["prometheus_url"]
assert cfg["api_key"] == "***", "the API key is not redacted"
levels = summary["levels"]
assert [lv["concurrency"] for lv in levels] == [1, 2], levels
for lv in levels:
    assert [r["round"] for r in lv["rounds"]] == [1, 2], lv["rounds"]
    for r in lv["rounds"]:
        assert r["requests"] == {"total": 3, "succeeded": 3, "failed": 0}, r["requests"]
    assert lv["rounds"][1]["server_metrics"] is not None, "no Prometheus figures for round 2"
EOF
if grep -rqF -- "$SECRET" "$OUT" "$WORK/run.out" "$WORK/run.err"; then
    fail "the API key appears in a result file or in the output"
fi
echo "ok: recipe run from environment variables wrote every result file"

# --- 2. the required variable missing: exit 2, the recipe's own message, nothing written --------
set +e
env -u DRB_OUTPUT_DIR DRB_ENDPOINT="$BASE/v1/chat/completions" \
    "$PYTHON" dual_round_benchmarker.py --recipe "$RECIPE" >"$WORK/missing.out" 2>"$WORK/missing.err"
status=$?
set -e
[[ $status -eq 2 ]] || fail "without DRB_OUTPUT_DIR the run exited $status, expected 2"
grep -qE "^drbench: $RECIPE:[0-9]+: output_dir: DRB_OUTPUT_DIR: set DRB_OUTPUT_DIR to the results directory$" \
    "$WORK/missing.err" || fail "unexpected message without DRB_OUTPUT_DIR: $(cat "$WORK/missing.err")"
[[ $(wc -l <"$WORK/missing.err") -eq 1 ]] || fail "expected one line on stderr, got: $(cat "$WORK/missing.err")"
echo "ok: missing DRB_OUTPUT_DIR stops with exit 2 and the recipe's message"

# --- 3. a value that is not a number: exit 2, naming the key, the variable and the value --------
set +e
env DRB_OUTPUT_DIR="$WORK/never" DRB_CONCURRENCY="1 five" \
    "$PYTHON" dual_round_benchmarker.py --recipe "$RECIPE" >"$WORK/bad.out" 2>"$WORK/bad.err"
status=$?
set -e
[[ $status -eq 2 ]] || fail "with DRB_CONCURRENCY='1 five' the run exited $status, expected 2"
grep -qF "concurrency: \${DRB_CONCURRENCY:-1 2} gave '1 five'; expected an integer, got 'five'" \
    "$WORK/bad.err" || fail "unexpected message for a bad DRB_CONCURRENCY: $(cat "$WORK/bad.err")"
[[ ! -e "$WORK/never" ]] || fail "a failed recipe still created its output directory"
echo "ok: a bad DRB_CONCURRENCY stops with exit 2 naming key, variable and value"
echo "PASS"
