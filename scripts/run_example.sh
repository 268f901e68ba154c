#!/usr/bin/env bash
# README's main-job command: installs what is missing, builds the `dev` preset and runs
# the example program. Extra arguments go to the example.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
cmake --preset dev >/dev/null
cmake --build --preset dev --target srcu_hot_swap
exec build/dev/examples/srcu_hot_swap "$@"
