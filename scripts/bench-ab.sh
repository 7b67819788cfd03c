#!/usr/bin/env bash
# Alternates two leadgate builds under the same end-to-end load, to compare them in the
# same minutes: this machine's speed moves by 1.5-2x within minutes, so a figure means
# something only beside the other build's, measured next to it.
#
#   scripts/bench-ab.sh OLD_BINARY NEW_BINARY [STAGES] [LEADS] [ROUNDS]
#   scripts/bench-ab.sh /tmp/leadgate-old target/release/leadgate intake,evaluate 40000 2
set -euo pipefail
old=${1:?old leadgate binary}
new=${2:?new leadgate binary}
stages=${3:-intake,evaluate}
leads=${4:-40000}
rounds=${5:-2}
cd "$(dirname "$0")/.."
for r in $(seq 1 "$rounds"); do
    for v in old new; do
        bin=$old
        [ "$v" = new ] && bin=$new
        echo "== $v, round $r, $(date -u +%T) UTC"
        LEADGATE_BENCH_BIN=$(realpath "$bin") LEADGATE_BENCH_STAGES=$stages LEADGATE_BENCH_LEADS=$leads \
            cargo bench --bench e2e 2>/dev/null | grep -E '^\|' | grep -v -e '---' -e '| figure'
    done
done
