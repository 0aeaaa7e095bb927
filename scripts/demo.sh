#!/usr/bin/env bash
# The main job, end to end (about 5 minutes on 2 cores after the first build): installs system packages, builds in
# release, fetches MNIST, and shows on one setting why WrapNet exists:
#   an mlp with binary weights and 3-bit activations, trained with 32-bit accumulators (2 epochs), collapses when its
#   sums are taken in 8-bit wrap-around accumulators (11 % of them overflow); fine-tuned as a WrapNet model
#   (range calibration with accumulator preloads, cyclic activation, overflow penalty; 1 epoch) it recovers to
#   within a few tenths of the 32-bit model, next to a saturating 8-bit accumulator fine-tuned with the same budget.
#   The integer engine then runs the WrapNet model with real 8-bit integers against the trainer (--compare) and
#   with 32-bit lanes for speed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product wrapnet 2>&1 | tail -n 1
wrapnet=.build/release/wrapnet
$wrapnet data fetch mnist
out=$(mktemp -d)
echo "working in $out"
model=(--model mlp --act-bits 3)
tune=(--acc-bits 8 --epochs 1 --lr 1e-3 --calibrate --init "$out/exact/model.safetensors")

echo "1/6 train the 32-bit-accumulator baseline: mlp, binary weights, 3-bit activations (2 epochs)"
$wrapnet train "${model[@]}" --acc-mode exact --epochs 2 --out "$out/exact" 2>/dev/null | head -n 1
echo "2/6 run it unchanged on 8-bit accumulators: wrap-around, then saturating"
$wrapnet eval "$out/exact/model.safetensors" --acc-mode wrap --acc-bits 8 --json > "$out/naive-wrap.json"
$wrapnet eval "$out/exact/model.safetensors" --acc-mode saturate --acc-bits 8 --json > "$out/naive-saturate.json"
echo "3/6 fine-tune for 8-bit wrap-around accumulators (WrapNet: calibration with preloads, cyclic activation k=2, penalty 0.001; 1 epoch)"
$wrapnet train "${model[@]}" "${tune[@]}" --acc-mode cyclic --slope 2 --penalty 0.001 --out "$out/wrapnet" 2>/dev/null \
  | head -n 1
echo "4/6 fine-tune for 8-bit saturating accumulators with the same budget (calibration with preloads, no penalty)"
$wrapnet train "${model[@]}" "${tune[@]}" --acc-mode saturate --penalty 0 --out "$out/saturate" 2>/dev/null | head -n 1
echo "5/6 pack the WrapNet model for the integer engine"
$wrapnet convert "$out/wrapnet/model.safetensors" --out "$out/wrapnet.engine.safetensors" | tail -n 1
echo "6/6 integer engine vs the trainer on the 10,000 test images (8-bit lanes), then with 32-bit lanes"
$wrapnet eval "$out/wrapnet.engine.safetensors" --compare "$out/wrapnet/model.safetensors" --lanes 8 --threads 1 \
  --json > "$out/engine8.json"
$wrapnet eval "$out/wrapnet.engine.safetensors" --lanes 32 --threads 1 --json > "$out/engine32.json"

python3 - "$out" <<'PY'
import json, sys
d = sys.argv[1]
def load(name):
    with open(f"{d}/{name}") as f:
        return json.load(f)
exact, wrapnet, saturate = load("exact/summary.json"), load("wrapnet/summary.json"), load("saturate/summary.json")
naive_wrap, naive_sat = load("naive-wrap.json"), load("naive-saturate.json")
e8, e32 = load("engine8.json"), load("engine32.json")
base = 100 * exact["test_accuracy"]
def row(label, accuracy, overflow=None, note=""):
    a = 100 * accuracy
    o = "" if overflow is None else f"{100 * overflow:7.3f} %"
    print(f"  {label:44s}{a:6.2f} %  {a - base:+6.2f}  {o:>9s}  {note}".rstrip())
def low_bit_overflow(summary):
    layers = [l for l in summary["layers"] if l["accumulator_bits"] < 32]
    return sum(l["overflows"] for l in layers) / max(1, sum(l["outputs"] for l in layers))
print()
print("mlp on MNIST (10,000 test images), binary weights, 3-bit activations; fine-tuning: 1 epoch each")
print(f"  {'accumulator':44s}{'accuracy':>8s}  {'vs 32':>6s}  {'overflow':>9s}")
row("32-bit", exact["test_accuracy"])
row("8-bit wrap-around, no retraining", naive_wrap["accuracy"], naive_wrap["overflow_rate"])
row("8-bit saturating, no retraining", naive_sat["accuracy"], naive_sat["overflow_rate"])
row("8-bit saturating, fine-tuned", saturate["test_accuracy"], low_bit_overflow(saturate))
row("8-bit WrapNet, fine-tuned (simulation)", wrapnet["test_accuracy"], low_bit_overflow(wrapnet))
row("8-bit WrapNet, integer engine", e8["accuracy"], None,
    f"mismatches {e8['mismatches']}, accumulator mismatches {e8['accumulator_mismatches']}")
print(f"  engine images/s, 1 thread: 8-bit lanes {e8['images_per_second']:,.0f}, 32-bit lanes {e32['images_per_second']:,.0f}"
      f" ({e8['images_per_second'] / e32['images_per_second']:.2f}x)")
PY
