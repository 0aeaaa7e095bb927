#!/usr/bin/env bash
# The main job, end to end: installs system packages, builds in release, fetches MNIST and prints its summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product wrapnet 2>&1 | tail -n 1
.build/release/wrapnet data fetch mnist
.build/release/wrapnet data info --dataset mnist
