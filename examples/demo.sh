#!/usr/bin/env bash
# The whole chain that exists so far, on the embedded Indian Pines scene, at tiny presets.
# Run through `make demo` (which creates .venv first). Artifacts land in $DEMO_DIR.
set -euo pipefail
DEMO_DIR=${DEMO_DIR:-runs/demo}
mkdir -p "$DEMO_DIR"
step() { printf '\n== %s\n' "$*" >&2; }

step "1. ingest the embedded AVIRIS Indian Pines scene (48 bands, 400-1000 nm, 32x32 patches)"
hsigen ingest --example indian-pines --size 32 --stride 16 --val-fraction 0.25 --out "$DEMO_DIR/dataset"
hsigen inspect "$DEMO_DIR/dataset"

cat >&2 <<MSG

Done. Where to look:
  $DEMO_DIR/dataset/preview.png      false-colour preview of the aligned scene
  $DEMO_DIR/dataset/cube.tif         48-band GeoTIFF (band descriptions carry wavelengths)
  $DEMO_DIR/dataset/patches.h5       normalised patches, labels, train/val split
  hsigen inspect $DEMO_DIR/dataset   the manifest (config, hashes, metrics)
MSG
