#!/usr/bin/env bash
# Sets everything up, then trains on the built-in 8x8 digits and writes
# samples, a held-out evaluation and an HTML report into runs/digits/
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
aevb=.venv/bin/aevb
$aevb fit digits-train --out runs/digits
$aevb sample runs/digits -n 64 --out runs/digits/samples.npy --png runs/digits/samples.png
$aevb sample runs/digits -n 64 --mean --png runs/digits/sample_means.png
$aevb evaluate runs/digits digits-test --k 1000 --json runs/digits/evaluation.json
$aevb report runs/digits digits-test --out runs/digits/report.html
