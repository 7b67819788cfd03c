#!/usr/bin/env bash
# The reliability figures, rerunnable by anyone: starts throwaway PostgreSQL and Redis servers
# on 127.0.0.1 the same way scripts/test.sh does (scripts/lib/services.sh), runs the
# multi-replica tests (tests/replicas.rs: drain, kill -9 + restart, PostgreSQL restart,
# provider-fault storm; every lead delivered to a mock CRM) and the Redis tests
# (tests/redis.rs: shared cache and limiter) with --nocapture, then prints their figures as
# a Markdown table. Exits non-zero when a test fails.
#
# Environment (all optional):
#   LEADGATE_REPLICA_LEADS   leads per replica test (default here 5000: the issue's full run)
#   LEADGATE_TEST_TIMEOUT    seconds the tests may take (default 3600)
# Extra arguments go to `cargo test` before `--` (e.g. `--release`).
set -euo pipefail
cd "$(dirname "$0")/.."

export LEADGATE_REPLICA_LEADS="${LEADGATE_REPLICA_LEADS:-5000}"
TEST_TIMEOUT="${LEADGATE_TEST_TIMEOUT:-3600}"

# shellcheck source=scripts/lib/services.sh
source scripts/lib/services.sh
start_test_services

LOG="$WORK/reliability.log"
echo "running tests/replicas.rs and tests/redis.rs with LEADGATE_REPLICA_LEADS=$LEADGATE_REPLICA_LEADS ..." >&2
set +e
timeout --kill-after=30 "$TEST_TIMEOUT" cargo test --locked --features postgres-tests "$@" \
  --test replicas --test redis -- --nocapture 2>&1 | tee "$LOG" \
  | grep -E '^(replicas:|shared limiter:|test result:|test .*FAILED|failures:)' >&2
rc=${PIPESTATUS[0]}
set -e

# One row per `replicas:` line (key=value pairs; quoted values may hold spaces).
echo
echo "Reliability figures, $(date -u +%Y-%m-%d), LEADGATE_REPLICA_LEADS=$LEADGATE_REPLICA_LEADS, $(nproc) cores:"
echo
echo "| scenario | replicas | leads | faults injected | lost (store / CRM) | duplicates (store / CRM) | CRM writes | seconds |"
echo "|---|---|---|---|---|---|---|---|"
awk '
  function get(key,   m) {
    if (match($0, " " key "=(\"[^\"]*\"|[^ ]*)")) {
      m = substr($0, RSTART + length(key) + 2, RLENGTH - length(key) - 2)
      gsub(/"/, "", m)
      return m
    }
    return "?"
  }
  /^replicas: / {
    faults = get("faults")
    gsub(/,/, ", ", faults)
    injected = get("faults_injected") (faults == "" ? "" : " (" faults ")")
    printf "| %s | %s | %s | %s | %s / %s | %s / %s | %s | %s |\n", get("test"), get("replicas"), get("leads"),
      injected, get("lost"), get("crm_lost"), get("duplicates"), get("crm_duplicates"), get("crm_writes"), get("seconds")
  }
' "$LOG"
echo
grep -E '^shared limiter:' "$LOG" || true
grep -E '^replicas: .*test=provider-storm' "$LOG" | sed -E 's/.* fault="([^"]*)".*/provider storm: \1/' || true
if (( rc != 0 )); then
  echo "some tests failed (exit $rc): see the output above" >&2
fi
exit "$rc"
