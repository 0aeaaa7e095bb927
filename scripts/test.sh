#!/usr/bin/env bash
# Runs every test: installs system packages, builds the CLI in release, fetches MNIST and Fashion-MNIST (verified),
# then runs the whole test suite in release mode (the slow end-to-end training tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product wrapnet
.build/release/wrapnet data fetch all
swift test -c release
