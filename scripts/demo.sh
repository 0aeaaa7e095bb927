#!/usr/bin/env bash
# The main job, end to end (about 5 minutes on 2 cores after the first build): installs system packages, builds in
# release, fetches MNIST, trains a 32-bit-accumulator mlp (binary weights, 2-bit activations), fine-tunes it as a
# WrapNet model (8-bit wrap-around accumulators + cyclic activation + overflow penalty), packs it for the integer
# engine, runs the engine against the trainer's simulation (--compare), and prints a results table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product wrapnet 2>&1 | tail -n 1
wrapnet=.build/release/wrapnet
$wrapnet data fetch mnist
out=$(mktemp -d)
echo "working in $out"

echo "1/5 train the 32-bit-accumulator baseline (2 epochs)"
$wrapnet train --model mlp --acc-mode exact --epochs 2 --out "$out/mlp-exact" 2>/dev/null | head -n 1
echo "2/5 fine-tune it for 8-bit wrap-around accumulators: cyclic activation k=2, penalty 0.01 (1 epoch)"
$wrapnet train --model mlp --acc-mode cyclic --acc-bits 8 --slope 2 --penalty 0.01 \
  --init "$out/mlp-exact/model.safetensors" --epochs 1 --lr 3e-4 --out "$out/mlp-cyclic8" 2>/dev/null | head -n 1
echo "3/5 the 32-bit model on 8-bit wrap-around accumulators, no retraining"
$wrapnet eval "$out/mlp-exact/model.safetensors" --acc-mode wrap --acc-bits 8 --json > "$out/naive.json"
echo "4/5 pack the WrapNet model for the integer engine"
$wrapnet convert "$out/mlp-cyclic8/model.safetensors" --out "$out/mlp-cyclic8.engine.safetensors" | tail -n 1
echo "5/5 integer engine vs the trainer on the 10,000 test images (8-bit lanes), then with 32-bit lanes"
$wrapnet eval "$out/mlp-cyclic8.engine.safetensors" --compare "$out/mlp-cyclic8/model.safetensors" --lanes 8 \
  --threads 1 --json > "$out/engine8.json"
$wrapnet eval "$out/mlp-cyclic8.engine.safetensors" --lanes 32 --threads 1 --json > "$out/engine32.json"

python3 - "$out" <<'PY'
import json, sys
d = sys.argv[1]
exact = json.load(open(f"{d}/mlp-exact/summary.json"))
wrapnet = json.load(open(f"{d}/mlp-cyclic8/summary.json"))
naive = json.load(open(f"{d}/naive.json"))
e8 = json.load(open(f"{d}/engine8.json"))
e32 = json.load(open(f"{d}/engine32.json"))
print()
print("mlp on MNIST (10,000 test images), binary weights, 2-bit activations")
print(f"  32-bit accumulators                         {100 * exact['test_accuracy']:6.2f} %")
print(f"  8-bit wrap-around, no retraining            {100 * naive['accuracy']:6.2f} %")
print(f"  8-bit WrapNet (wrap + cyclic + penalty)     {100 * wrapnet['test_accuracy']:6.2f} %  (simulation)")
print(f"  8-bit WrapNet, integer engine               {100 * e8['accuracy']:6.2f} %  "
      f"mismatches {e8['mismatches']}, accumulator mismatches {e8['accumulator_mismatches']}")
print(f"  engine images/s, 1 thread: 8-bit lanes {e8['images_per_second']:,.0f}, 32-bit lanes {e32['images_per_second']:,.0f}"
      f" ({e8['images_per_second'] / e32['images_per_second']:.2f}x)")
PY
