#!/usr/bin/env bash
# README's main-job command: installs what is missing, builds the `dev` preset's
# driver_prototype example and runs it. Extra arguments go to the example
# (e.g. ./scripts/run_example.sh --seed 7 --ops 40000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
cmake --preset dev >/dev/null
cmake --build --preset dev --target driver_prototype
exec build/dev/examples/driver_prototype "$@"
