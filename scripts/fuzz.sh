#!/usr/bin/env bash
# Long fuzz mode of Tests/WrapNetTests/FuzzTests.swift (CI runs 200 mutants per loader in the test suite):
#   1. N mutants per loader (default 10000) through the loaders in-process (release build), under a 4 GB
#      address-space limit (`ulimit -v 4000000`) and a time limit;
#   2. the command line on the first M mutants of each loader (default 300): `eval`, `convert` and
#      `train --resume` on checkpoints, `eval` on packed models, `data info` on IDX and CIFAR-10 files, each under
#      `ulimit -v 4000000` and `timeout 60`.
# Fails on any signal (a trap, an abort, a failed allocation), timeout or unexpected exit status; prints the
# figures. Usage: scripts/fuzz.sh [N] [M]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
m=${2:-300}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

swift build -c release --product wrapnet
swift build -c release --build-tests
wrapnet=$PWD/.build/release/wrapnet
tests=$PWD/.build/release/WrapNetPackageTests.xctest

echo "fuzz: $n mutants per loader in-process (4 GB limit)" >&2
start=$SECONDS
status=0
( ulimit -v 4000000; WRAPNET_FUZZ_MUTANTS=$n timeout 14400 "$tests" --testing-library swift-testing --filter FuzzTests ) \
  > "$work/inprocess.log" 2>&1 || status=$?
if ((status != 0)); then
  tail -n 40 "$work/inprocess.log" >&2
  echo "fuzz: in-process run FAILED (status $status: 124 is a timeout, above 128 a signal)" >&2
  exit 1
fi
grep -E "^fuzz |Test run with" "$work/inprocess.log" >&2 || true
echo "fuzz: in-process: $((7 * n)) mutants ($n each: checkpoint, packed model, IDX images and labels raw and gzip, CIFAR) in $((SECONDS - start)) s, 0 crashes" >&2

echo "fuzz: writing the first $m mutants per loader for the command line" >&2
WRAPNET_FUZZ_MUTANTS=$m WRAPNET_FUZZ_WRITE=$work/mutants "$tests" --testing-library swift-testing --filter FuzzTests \
  > "$work/write.log" 2>&1 || { tail -n 40 "$work/write.log"; exit 1; }

# Small valid datasets for the commands to run on.
python3 - "$work/data" <<'PY'
import gzip, os, random, struct, sys
root = sys.argv[1]
random.seed(1)
os.makedirs(root + "/mnist"); os.makedirs(root + "/cifar-10-batches-bin")
def images(n):
    labels = [random.randrange(10) for _ in range(n)]
    pixels = bytes(random.randrange(256) for _ in range(n * 784))
    return labels, pixels
for prefix, n in (("train", 64), ("t10k", 32)):
    labels, pixels = images(n)
    open(f"{root}/mnist/{prefix}-images-idx3-ubyte.gz", "wb").write(gzip.compress(struct.pack(">IIII", 0x803, n, 28, 28) + pixels))
    open(f"{root}/mnist/{prefix}-labels-idx1-ubyte.gz", "wb").write(gzip.compress(struct.pack(">II", 0x801, n) + bytes(labels)))
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    open(f"{root}/cifar-10-batches-bin/{name}", "wb").write(b"".join(bytes([random.randrange(10)]) + bytes(random.randrange(256) for _ in range(3072)) for _ in range(4)))
PY

runs=0; crashes=0; hangs=0; odd=0
check() {  # check LABEL COMMAND...: runs one command under the limits and classifies its exit status
  local label=$1; shift
  local status=0
  ( ulimit -v 4000000; timeout 60 "$@" ) > "$work/out.txt" 2>&1 || status=$?
  runs=$((runs + 1))
  case $status in
    0|1) ;;
    124) hangs=$((hangs + 1)); echo "HANG ($label): $*" >&2 ;;
    *) if ((status > 128)); then crashes=$((crashes + 1)); echo "SIGNAL $((status - 128)) ($label): $*" >&2
       else odd=$((odd + 1)); echo "STATUS $status ($label): $*" >&2; fi
       tail -n 5 "$work/out.txt" >&2 ;;
  esac
}
start=$SECONDS
for f in "$work"/mutants/checkpoint/*; do
  check checkpoint "$wrapnet" eval "$f" --data-dir "$work/data" --limit-test 8
  check checkpoint "$wrapnet" convert "$f" --out "$work/engine.safetensors"
  rm -rf "$work/run"; mkdir -p "$work/run"; cp "$f" "$work/run/checkpoint.safetensors"
  check checkpoint "$wrapnet" train --resume --out "$work/run" --data-dir "$work/data" --limit-test 8
done
for f in "$work"/mutants/packed/*; do
  check packed "$wrapnet" eval "$f" --dataset mnist --data-dir "$work/data"
done
for kind in idx-images idx-images-gz idx-labels idx-labels-gz; do
  for f in "$work/mutants/$kind"/*; do
    rm -rf "$work/d"; cp -r "$work/data" "$work/d"
    case $kind in
      idx-images) rm "$work/d/mnist/train-images-idx3-ubyte.gz"; cp "$f" "$work/d/mnist/train-images-idx3-ubyte" ;;
      idx-labels) rm "$work/d/mnist/train-labels-idx1-ubyte.gz"; cp "$f" "$work/d/mnist/train-labels-idx1-ubyte" ;;
      idx-images-gz) cp "$f" "$work/d/mnist/train-images-idx3-ubyte.gz" ;;
      idx-labels-gz) cp "$f" "$work/d/mnist/train-labels-idx1-ubyte.gz" ;;
    esac
    check "$kind" "$wrapnet" data info --dataset mnist --data-dir "$work/d"
  done
done
for f in "$work"/mutants/cifar/*; do
  rm -rf "$work/d"; cp -r "$work/data" "$work/d"; cp "$f" "$work/d/cifar-10-batches-bin/test_batch.bin"
  check cifar "$wrapnet" data info --dataset cifar10 --data-dir "$work/d"
done
echo "fuzz: command line: $runs runs in $((SECONDS - start)) s: $crashes signals, $hangs timeouts, $odd other statuses" >&2
((crashes == 0 && hangs == 0 && odd == 0))
