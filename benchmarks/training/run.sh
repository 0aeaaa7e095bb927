#!/usr/bin/env bash
# Training-speed benchmark: `wrapnet train` against PyTorch CPU twins of the zoo models, images/s side by side.
# Creates <repo root>/.venv-training on first use (torch CPU build + numpy, pinned below), then runs training.py
# with all arguments:
#   bash benchmarks/training/run.sh --models mlp,cnn,resnet20 --threads 1,2
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/.venv-training"

NUMPY_VERSION=2.4.6
# The CPU-only torch build (about 190 MB), found through pip's configured --find-links or PyTorch's CPU wheel index
# (PIP_FIND_LINKS / PIP_EXTRA_INDEX_URL). PyPI's torch wheel needs several GB of CUDA packages even to import, so
# this script does not fall back to it.
TORCH_SPEC="torch==2.13.0+cpu"

fail() {
  echo "run.sh: $*" >&2
  exit 1
}

python=${PYTHON:-python3}
command -v "$python" >/dev/null 2>&1 ||
  fail "$python not found; install Python 3.9+ (Debian/Ubuntu: apt-get install -y python3 python3-venv python3-pip)"

stamp="$venv/.training-pins"
pins="numpy=$NUMPY_VERSION $TORCH_SPEC"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$pins" ]]; then
  "$python" -c "import venv, ensurepip" >/dev/null 2>&1 ||
    fail "the Python venv module (with ensurepip) is missing; Debian/Ubuntu: apt-get install -y python3-venv"
  if [[ ! -x "$venv/bin/python" ]]; then
    echo "run.sh: creating $venv" >&2
    "$python" -m venv "$venv" || fail "could not create $venv (Debian/Ubuntu: apt-get install -y python3-venv)"
  fi
  echo "run.sh: installing $TORCH_SPEC and numpy $NUMPY_VERSION" >&2
  "$venv/bin/python" -m pip install --disable-pip-version-check "$TORCH_SPEC" "numpy==$NUMPY_VERSION" ||
    fail "pip could not install $TORCH_SPEC: give pip PyTorch's CPU wheels (PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu, or PIP_FIND_LINKS=<folder holding the wheel>)"
  "$venv/bin/python" -c "import torch, numpy" || fail "the installed packages do not import"
  echo "$pins" >"$stamp"
fi

exec "$venv/bin/python" "$here/training.py" "$@"
