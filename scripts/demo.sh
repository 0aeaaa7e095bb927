#!/usr/bin/env bash
# The main job, end to end: installs system packages, builds in release, fetches MNIST, prints its summary, then
# trains a small WrapNet model (binary weights, 2-bit activations, 8-bit wrap-around accumulators with the cyclic
# activation and overflow penalty) for one epoch on 10,000 images and evaluates it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product wrapnet 2>&1 | tail -n 1
wrapnet=.build/release/wrapnet
$wrapnet data fetch mnist
$wrapnet data info --dataset mnist
out=$(mktemp -d)/mlp-cyclic8
$wrapnet train --dataset mnist --model mlp --weight-bits 1 --act-bits 2 --acc-bits 8 --acc-mode cyclic --slope 2 \
  --penalty 0.01 --epochs 1 --limit-train 10000 --out "$out" 2>/dev/null
$wrapnet eval "$out/model.safetensors" --dataset mnist
