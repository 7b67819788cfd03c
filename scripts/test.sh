#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the suite needs on a fresh Debian
# machine, starts throwaway PostgreSQL and Redis servers on 127.0.0.1 ports of their own
# (scripts/lib/services.sh), then runs every test — including the `postgres-tests` feature
# (the PostgreSQL store and the multi-replica reliability tests, tests/replicas.rs). Tests
# only ever talk to 127.0.0.1.
#
# Environment (all optional):
#   LEADGATE_TEST_TIMEOUT    seconds the whole `cargo test` may take (default 4800)
#   LEADGATE_REPLICA_LEADS   leads per replica test (default 2000; the issue's full run is 5000)
#   LEADGATE_TEST_NO_SERVICES=1  do not install or start PostgreSQL/Redis (runs the SQLite
#                            suite only: the postgres-tests feature is left off)
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh --test replicas`).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust from your distribution or rustup first" >&2
  exit 1
fi

TEST_TIMEOUT="${LEADGATE_TEST_TIMEOUT:-4800}"

# shellcheck source=scripts/lib/services.sh
source scripts/lib/services.sh
install_browser

if [[ "${LEADGATE_TEST_NO_SERVICES:-}" == "1" ]]; then
  exec timeout --kill-after=30 "$TEST_TIMEOUT" cargo test --locked "$@"
fi

start_test_services

# Not exec: the EXIT trap must stop the servers afterwards.
timeout --kill-after=30 "$TEST_TIMEOUT" cargo test --locked --features postgres-tests "$@"
