#!/usr/bin/env bash
# Training-speed benchmark: `wrapnet train` against PyTorch CPU twins of the zoo models, images/s side by side.
# Creates <repo root>/.venv-bench on first use (benchmarks/venv.sh: the CPU-only torch build and numpy, pinned),
# then runs training.py with all arguments:
#   bash benchmarks/training/run.sh --models mlp,cnn,resnet20 --threads 1,2
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
source "$here/../venv.sh"

exec "$venv/bin/python" "$here/training.py" "$@"
