# Sourced by the benchmark scripts (benchmarks/peers/run.sh, benchmarks/training/run.sh): creates
# <repo root>/.venv-bench on first use, and again when the pins below change, with ONNX Runtime, onnx, numpy and the
# CPU-only PyTorch build; sets $venv. Expects $repo (the repository root).
venv="$repo/.venv-bench"

ORT_VERSION=1.32.0
ONNX_VERSION=1.23.2
NUMPY_VERSION=2.4.6
# PyTorch: the CPU-only build (about 190 MB) when pip can find it (a --find-links folder or PyTorch's CPU wheel
# index given through PIP_FIND_LINKS / PIP_EXTRA_INDEX_URL); otherwise the same version from PyPI, whose Linux
# wheel requires the CUDA runtime packages (several GB) even to import on a CPU-only machine.
TORCH_VERSION=2.13.0
TORCH_CPU_SPEC="torch==${TORCH_VERSION}+cpu"
TORCH_PYPI_SPEC="torch==${TORCH_VERSION}"

fail() {
  echo "run.sh: $*" >&2
  exit 1
}

python=${PYTHON:-python3}
command -v "$python" >/dev/null 2>&1 ||
  fail "$python not found; install Python 3.9+ (Debian/Ubuntu: apt-get install -y python3 python3-venv python3-pip)"

stamp="$venv/.bench-pins"
pins="ort=$ORT_VERSION onnx=$ONNX_VERSION numpy=$NUMPY_VERSION torch=$TORCH_VERSION"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$pins" ]]; then
  "$python" -c "import venv, ensurepip" >/dev/null 2>&1 ||
    fail "the Python venv module (with ensurepip) is missing; Debian/Ubuntu: apt-get install -y python3-venv"
  if [[ ! -x "$venv/bin/python" ]]; then
    echo "run.sh: creating $venv" >&2
    "$python" -m venv "$venv" || fail "could not create $venv (Debian/Ubuntu: apt-get install -y python3-venv)"
  fi
  "$venv/bin/python" -m pip --version >/dev/null 2>&1 ||
    fail "pip is missing in $venv; Debian/Ubuntu: apt-get install -y python3-venv python3-pip, then delete $venv"
  pip=("$venv/bin/python" -m pip install --disable-pip-version-check)
  echo "run.sh: installing onnxruntime $ORT_VERSION, onnx $ONNX_VERSION, numpy $NUMPY_VERSION" >&2
  "${pip[@]}" "onnxruntime==$ORT_VERSION" "onnx==$ONNX_VERSION" "numpy==$NUMPY_VERSION" ||
    fail "pip install of onnxruntime/onnx/numpy failed"
  echo "run.sh: installing $TORCH_CPU_SPEC (falls back to $TORCH_PYPI_SPEC with its CUDA dependencies)" >&2
  if ! "${pip[@]}" "$TORCH_CPU_SPEC" 2>/dev/null; then
    echo "run.sh: no CPU-only torch wheel found; installing $TORCH_PYPI_SPEC from PyPI (several GB)" >&2
    "${pip[@]}" "$TORCH_PYPI_SPEC" || fail "pip install of torch failed"
  fi
  "$venv/bin/python" -c "import torch, onnx, onnxruntime, numpy" || fail "the installed packages do not import"
  echo "$pins" >"$stamp"
fi

