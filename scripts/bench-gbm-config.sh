#!/usr/bin/env bash
# A config folder for the e2e bench with a gbm model blended in (issue #26, item 8): a copy
# of config/ whose scoring.toml adds `[model]` (weight 0.5) over a gbm trained on
# config/past-leads.csv. Prints the leadgate.toml to pass as LEADGATE_BENCH_CONFIG:
#
#   cfg=$(scripts/bench-gbm-config.sh /tmp/gbm-config)
#   LEADGATE_BENCH_CONFIG=$cfg LEADGATE_BENCH_STAGES=intake,evaluate LEADGATE_BENCH_ROUNDS=3 \
#     cargo bench --bench e2e
#
# usage: scripts/bench-gbm-config.sh [DIR] [LEADGATE_BINARY]   (run from the repository root;
# the binary defaults to target/release/leadgate, e.g. after `cargo bench --no-run --bench e2e`)
set -euo pipefail

dir=${1:-/tmp/leadgate-gbm-config}
bin=${2:-target/release/leadgate}
root=$(pwd)
[[ -x $bin ]] || { echo "no leadgate binary at $bin: build one (cargo build --release)" >&2; exit 1; }
[[ -f config/leadgate.toml ]] || { echo "run from the repository root" >&2; exit 1; }

rm -rf "$dir"
mkdir -p "$dir"
cp -r config/. "$dir"/
rm -f "$dir"/leadgate.db "$dir"/leadgate.db-shm "$dir"/leadgate.db-wal
# The connector manifests stay in the repository: point at them from the copy.
sed -i "s|^connectors = \"../connectors\"|connectors = \"$root/connectors\"|" "$dir/leadgate.toml"

"$bin" train "$dir/past-leads.csv" --config "$dir/leadgate.toml" --outcome converted \
  --model gbm --out "$dir/model.json" >&2
cat >> "$dir/scoring.toml" <<'TOML'

# Added by scripts/bench-gbm-config.sh: the gbm trained on past-leads.csv, blended in.
[model]
path = "model.json"
weight = 0.5
TOML
"$bin" check --config "$dir/leadgate.toml" >&2
echo "$dir/leadgate.toml"
