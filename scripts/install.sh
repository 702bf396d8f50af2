#!/usr/bin/env bash
# Install neuro-snn (editable) with the pins that keep torch on its CPU build.
# Usage: bash scripts/install.sh [extra]     e.g. bash scripts/install.sh dev
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
target="."
[ -n "$extra" ] && target=".[$extra]"
python -m pip install --quiet --disable-pip-version-check -c constraints.txt "torch==2.13.0"
python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e "$target"
