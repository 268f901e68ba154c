#!/usr/bin/env bash
# Installs whichever of itn's build, test and CI dependencies are missing, from Debian
# bookworm's archive. Idempotent: with everything present it only checks and exits.
# Needs root (or password-less sudo) when something is missing; otherwise it prints the
# command to run and fails.
set -euo pipefail

packages=(
  g++ cmake ninja-build                                    # build
  libabsl-dev libgtest-dev libgmock-dev librapidcheck-dev  # library and tests
  libbenchmark-dev                                         # benchmarks
  clang-14 libclang-rt-14-dev                              # tsan and tsa presets
  spin                                                     # model checking
  gnuplot-nox python3                                      # benchmark and trace plots, tables
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo)
  else
    echo "itn: these Debian packages are missing: ${missing[*]}" >&2
    echo "itn: run this script as root, or install them yourself:" >&2
    echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

echo "itn: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
