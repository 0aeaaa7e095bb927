#!/usr/bin/env bash
# Peer benchmark: int8 ONNX Runtime and int8 PyTorch on Float32 equivalents of the WrapNet zoo.
# Creates <repo root>/.venv-bench on first use (benchmarks/venv.sh: pinned versions), then runs peers.py with all
# arguments.
#   bash benchmarks/peers/run.sh --models resnet20 --batches 64 --threads 1
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
source "$here/../venv.sh"

exec "$venv/bin/python" "$here/peers.py" "$@"
