#!/usr/bin/env bash
# Install neuro-snn with its test dependencies and run the whole test suite:
#   1. the CPU suite;
#   2. the CUDA kernels in Numba's CUDA simulator, which must be enabled before numba is imported,
#      so it runs in its own pytest process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh dev
# The external toolchains' venvs (Sinabs, Rockpool, Brian2; scripts/toolchains/*.txt) are built once from the
# registry and cached under ~/.cache/neuro-snn/venvs: start any missing build now, so it overlaps the suite
# (the toolchain tests wait for it, or skip with pip's reason when it cannot be built).
for toolchain in sinabs rockpool brian2; do
  python scripts/toolchain_venv.py "$toolchain" > /dev/null 2>&1 &
done
export NUMBA_NUM_THREADS="${NUMBA_NUM_THREADS:-2}"
# Two workers, each test file kept on one worker (module fixtures build once): most of a cold run is numba
# compiling kernels, one compile per core.
python -m pytest -q tests -m "not cudasim" -n 2 --dist loadfile --durations=30 "$@"
NUMBA_ENABLE_CUDASIM=1 python -m pytest -q tests -m cudasim "$@"
wait
