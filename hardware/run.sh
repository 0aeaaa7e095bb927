#!/usr/bin/env bash
# The hardware job, end to end: installs the tools, builds wrapnet, then regenerates docs/hardware/:
#   hardware/grid.py      the PE synthesis grid (Yosys generic CMOS, iCE40, Xilinx 7; nextpnr fmax of the headline PEs,
#                         b = 8 and exact) and output-stationary arrays
#   hardware/simulate.py  generated layers and a whole mlp against the integer engine on real MNIST images (Verilator),
#                         saturating PEs against their software model, toggles per MAC (energy proxy)
#   hardware/cost.py      per-model cost: MACs, PE area per MAC, accumulator bits (mlp, cnn, resnet20)
# Results are cached under runs/ (trained models, per-configuration synthesis), so a rerun only redoes what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product wrapnet 2>&1 | tail -n 1
start=$(date +%s)
python3 hardware/grid.py --fmax subset
python3 hardware/cost.py
python3 hardware/simulate.py "$@"
echo "hardware: docs/hardware regenerated in $(( $(date +%s) - start )) s"
