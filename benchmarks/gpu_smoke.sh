#!/usr/bin/env bash
# GPU smoke benchmark (issue 15 item 5): paper-preset latent training, 100 steps at batch 16
# (steps/s, peak GPU memory, the data loader's share of step time; plain bf16, then --compile
# --channels-last) and DDIM-50 sampling of 256×256×48 (s/sample). Under 10 minutes on one
# modern GPU. Results are printed and written to $WORKDIR/gpu_smoke.json.
#
#   benchmarks/gpu_smoke.sh                       # on a CUDA machine, from the repository root
#   benchmarks/gpu_smoke.sh --tiny --device cpu   # CPU check of the same code at tiny size
#   PYTHON=.venv/bin/python WORKDIR=/scratch/smoke benchmarks/gpu_smoke.sh --no-compile
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
WORKDIR="${WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/hsigen-gpu-smoke.XXXXXX")}"
if [[ " $* " != *" --device cpu "* ]]; then
    "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: run with --tiny --device cpu to check the script')"
fi
export HF_HUB_OFFLINE=1 HSIGEN_CACHE="$WORKDIR/cache"
trap 'rm -rf "$WORKDIR/cache" "$WORKDIR"/ldm* "$WORKDIR/samples"' EXIT
timeout 600 "$PYTHON" benchmarks/gpu_smoke.py --workdir "$WORKDIR" "$@"
