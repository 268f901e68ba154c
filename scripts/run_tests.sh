#!/usr/bin/env bash
# README's test command: installs what is missing, then configures, builds and runs the
# whole test suite of the `dev` preset (unit, property and stress tests, lints, the
# installed-package consumer, benchmark smoke runs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
cmake --workflow --preset dev
