#!/usr/bin/env python3
"""Peer benchmark: int8 ONNX Runtime and int8 PyTorch (x86 backend) on Float32 equivalents of the WrapNet zoo.

Run through run.sh, which builds the pinned virtual environment. See README.md next to this file.

For every model x engine x batch x threads: warm up, then time repeats of at least --seconds each and report the
median images/s. The int8 engines are checked against the Float32 PyTorch net (argmax agreement and relative logit
error on random images) so a broken quantization cannot hide behind a fast number.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")  # exporter / quantizer deprecation chatter

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnxruntime.quantization import (  # noqa: E402
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

ALL_MODELS = ["mlp", "cnn", "vgg-small", "resnet20"]
ENGINES = ["ort-int8", "torch-int8", "ort-fp32", "torch-fp32"]
ENGINE_TITLES = {"ort-int8": "ORT int8", "torch-int8": "PyTorch int8", "ort-fp32": "ORT fp32",
                 "torch-fp32": "PyTorch fp32", "wrapnet": "wrapnet"}
WRAPNET_MISSING = "wrapnet bench: not available in this build"


# ---------------------------------------------------------------------------------------------------------------
# Float32 equivalents of Sources/WrapNet/Quantized/ModelZoo.swift.
# Every WrapNet hidden layer is WrapLayer -> BatchNorm -> ActivationCodes; here it is conv/linear -> BatchNorm -> ReLU.
# ---------------------------------------------------------------------------------------------------------------

def conv_block(i, o, stride=1):
    return [nn.Conv2d(i, o, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]


def linear_block(i, o):
    return [nn.Linear(i, o, bias=False), nn.BatchNorm1d(o), nn.ReLU()]


class Shortcut(nn.Module):
    """Option-A shortcut as in ResidualBlock.shortcut: subsample by the stride, zero-pad channels evenly."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.stride = stride
        self.before = (out_channels - in_channels) // 2
        self.after = out_channels - in_channels - self.before

    def forward(self, x):
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.before or self.after:
            x = F.pad(x, (0, 0, 0, 0, self.before, self.after))
        return x


class BasicBlock(nn.Module):
    """conv1 -> bn1 -> relu -> conv2 -> bn2, plus shortcut, then relu (the block's output activation)."""

    def __init__(self, in_channels, width, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.shortcut = Shortcut(in_channels, width, stride)
        self.relu2 = nn.ReLU()

    def forward(self, x):
        h = self.relu1(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return self.relu2(h + self.shortcut(x))


def build(name):
    """(module, input shape [C, H, W], MACs per image) for a zoo name."""
    if name == "mlp":
        layers = [nn.Flatten()] + linear_block(784, 1024)
        for _ in range(3):
            layers += linear_block(1024, 1024)
        layers.append(nn.Linear(1024, 10))
        return nn.Sequential(*layers), (1, 28, 28)
    if name == "cnn":
        layers = conv_block(1, 16) + [nn.MaxPool2d(2, 2)] + conv_block(16, 32) + conv_block(32, 64)
        layers += [nn.MaxPool2d(2, 2)] + conv_block(64, 64) + [nn.Flatten(), nn.Linear(64 * 7 * 7, 10)]
        return nn.Sequential(*layers), (1, 28, 28)
    if name == "vgg-small":
        layers = conv_block(3, 128) + conv_block(128, 128) + [nn.MaxPool2d(2, 2)]
        layers += conv_block(128, 256) + conv_block(256, 256) + [nn.MaxPool2d(2, 2)]
        layers += conv_block(256, 512) + conv_block(512, 512) + [nn.MaxPool2d(2, 2)]
        layers += [nn.Flatten(), nn.Linear(512 * 4 * 4, 10)]
        return nn.Sequential(*layers), (3, 32, 32)
    if name == "resnet20":
        layers = conv_block(3, 16)
        in_c = 16
        for stage, width in enumerate([16, 32, 64]):
            for b in range(3):
                stride = 2 if stage > 0 and b == 0 else 1
                layers.append(BasicBlock(in_c, width, stride))
                in_c = width
        # WrapNet: GlobalSumPool, with 1/plane folded into the logits layer's input scale; here: average pool.
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
        return nn.Sequential(*layers), (3, 32, 32)
    raise SystemExit(f"unknown model '{name}' (known: {', '.join(ALL_MODELS)})")


def count_macs(model, shape):
    macs = 0

    def hook(m, inp, out):
        nonlocal macs
        if isinstance(m, nn.Conv2d):
            macs += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            macs += out.numel() * m.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    for h in handles:
        h.remove()
    return macs


def random_pixels(rng, n, shape):
    """Raw 8-bit pixels as Float32 0...255, [N, C, H, W] (WrapModel.forward's input contract)."""
    return rng.integers(0, 256, size=(n, *shape)).astype(np.float32)


def initialise(model, shape, seed):
    """Seeded random weights; BN statistics estimated on random pixels so activations are well scaled; random
    affine BN parameters; then BN folded into the preceding conv/linear (inference form for every engine)."""
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.uniform_(m.bias, -0.1, 0.1)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.momentum = None  # cumulative average over the statistics batches
    rng = np.random.default_rng(seed)
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.from_numpy(random_pixels(rng, 32, shape)))
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.eval()
    return fold_bn(model)


def fold_bn(module):
    """Folds every (Conv2d|Linear, BatchNorm) pair that sits next to each other in a Sequential or BasicBlock."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    if isinstance(module, BasicBlock):
        module.conv1 = fuse_conv_bn_eval(module.conv1, module.bn1)
        module.bn1 = nn.Identity()
        module.conv2 = fuse_conv_bn_eval(module.conv2, module.bn2)
        module.bn2 = nn.Identity()
        return module
    if isinstance(module, nn.Sequential):
        out = []
        children = list(module.children())
        i = 0
        while i < len(children):
            c = children[i]
            nxt = children[i + 1] if i + 1 < len(children) else None
            if isinstance(c, nn.Conv2d) and isinstance(nxt, nn.BatchNorm2d):
                out.append(fuse_conv_bn_eval(c, nxt))
                i += 2
            elif isinstance(c, nn.Linear) and isinstance(nxt, nn.BatchNorm1d):
                out.append(fuse_linear_bn_eval(c, nxt))
                i += 2
            else:
                out.append(fold_bn(c))
                i += 1
        return nn.Sequential(*out)
    return module


# ---------------------------------------------------------------------------------------------------------------
# Engines
# ---------------------------------------------------------------------------------------------------------------

def export_onnx(model, shape, path, opset):
    torch.onnx.export(
        model, (torch.zeros(1, *shape),), path, dynamo=False, opset_version=opset, input_names=["pixels"],
        output_names=["logits"], dynamic_axes={"pixels": {0: "n"}, "logits": {0: "n"}}, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))


class Batches(CalibrationDataReader):
    def __init__(self, batches):
        self.items = iter([{"pixels": b} for b in batches])

    def get_next(self):
        return next(self.items, None)


def quantize_onnx(fp32_path, int8_path, calibration, args):
    src = fp32_path
    if not args.no_ort_preprocess:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        src = fp32_path.replace(".onnx", ".pre.onnx")
        quant_pre_process(fp32_path, src, skip_symbolic_shape=True)
    quantize_static(
        src, int8_path, Batches(calibration), quant_format=QuantFormat.QDQ, per_channel=True,
        weight_type=QuantType.QInt8,
        activation_type=QuantType.QUInt8 if args.ort_activations == "uint8" else QuantType.QInt8,
        reduce_range=args.ort_reduce_range == "on", calibrate_method=CalibrationMethod.MinMax)
    return ops_histogram(int8_path)


def cpu_has_vnni():
    """Whether the x86 CPU has an 8-bit dot-product instruction (VNNI/AMX). Without one, ORT's u8 x s8 kernels
    multiply through 16-bit pair sums that saturate for 255 x 127 + 255 x 127, so 7-bit weights are needed."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        return False
    return bool(flags & {"avx512_vnni", "avx_vnni", "avx512vnni", "amx_int8"})


def ops_histogram(path):
    counts = {}
    for node in onnx.load(path).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def ort_session(path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return lambda x: sess.run(["logits"], {"pixels": x})[0]


def quantize_torch(model, shape, calibration):
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    example = (torch.zeros(1, *shape),)
    prepared = prepare_fx(model, get_default_qconfig_mapping("x86"), example)
    with torch.inference_mode():
        for b in calibration:
            prepared(torch.from_numpy(b))
    return convert_fx(prepared).eval()


def torch_runner(module):
    def run(x):
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()
    return run


def time_runner(run, x, seconds, repeats, warmup_seconds):
    """Median images/s over `repeats` timed runs of at least seconds / repeats each (so at least `seconds` timed
    in all), after a warm-up."""
    batch = x.shape[0]
    run(x)
    t_end = time.perf_counter() + warmup_seconds
    while time.perf_counter() < t_end:
        run(x)
    rates = []
    for _ in range(repeats):
        iters = 0
        t0 = time.perf_counter()
        while True:
            run(x)
            iters += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds / repeats:
                break
        rates.append(iters * batch / elapsed)
    return statistics.median(rates), rates


def agreement(reference, logits):
    agree = float(np.mean(np.argmax(reference, 1) == np.argmax(logits, 1)))
    rel = float(np.linalg.norm(logits - reference) / max(np.linalg.norm(reference), 1e-12))
    return agree, rel


# ---------------------------------------------------------------------------------------------------------------
# wrapnet bench
# ---------------------------------------------------------------------------------------------------------------

def find_wrapnet(path):
    if path:
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    default = os.path.join(repo, ".build", "release", "wrapnet")
    return default if os.path.isfile(default) and os.access(default, os.X_OK) else None


def wrapnet_has_bench(exe):
    try:
        r = subprocess.run([exe, "bench", "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def wrapnet_bench(exe, model, threads, timeout):
    """{batch: images/s} from `wrapnet bench --model M --threads N --json`, or an error string."""
    try:
        r = subprocess.run([exe, "bench", "--model", model, "--threads", str(threads), "--json"],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout} s"
    except OSError as e:
        return str(e)
    if r.returncode != 0:
        return f"exit {r.returncode}: {r.stderr.strip()[-200:]}"
    text = r.stdout
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        start = text.find("{")
        try:
            doc = json.loads(text[start:]) if start >= 0 else None
        except json.JSONDecodeError:
            doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
        return "no {\"models\": [...]} JSON on stdout"
    out = {}
    for e in doc["models"]:
        try:
            if e.get("model") == model and int(e.get("threads", threads)) == threads:
                out[int(e["batch"])] = float(e["images_per_second"])
        except (KeyError, TypeError, ValueError):
            continue
    return out


# ---------------------------------------------------------------------------------------------------------------

def csv_list(kind):
    def parse(s):
        return [kind(v) for v in s.split(",") if v.strip()]
    return parse


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=csv_list(str), default=ALL_MODELS,
                   help="comma list of %s (default all; vgg-small is ~600 MMAC/image and slow)" % ",".join(ALL_MODELS))
    p.add_argument("--engines", type=csv_list(str), default=ENGINES, help="comma list of " + ",".join(ENGINES))
    p.add_argument("--batches", type=csv_list(int), default=[1, 64])
    p.add_argument("--threads", type=csv_list(int), default=[1, 2])
    p.add_argument("--seconds", type=float, default=2.0, help="minimum timed seconds per configuration, split evenly over the repeats (default 2)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats; the median is reported (default 3)")
    p.add_argument("--warmup", type=float, default=0.5, help="warm-up seconds before timing (default 0.5)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--calibration-batches", type=int, default=8, help="random batches of 16 for calibration")
    p.add_argument("--check-images", type=int, default=512, help="random images for the agreement check")
    p.add_argument("--min-agreement", type=float, default=0.90,
                   help="int8 vs fp32 argmax agreement below this marks the row SUSPECT and exits 2 (default 0.9)")
    p.add_argument("--ort-activations", choices=["uint8", "int8"], default="uint8")
    p.add_argument("--ort-reduce-range", choices=["auto", "on", "off"], default="auto",
                   help="7-bit weights in ORT quantization; auto: on when the CPU has no VNNI (default auto)")
    p.add_argument("--no-ort-preprocess", action="store_true", help="skip onnxruntime quant_pre_process")
    p.add_argument("--json", metavar="PATH", help="write all results as JSON")
    p.add_argument("--wrapnet", metavar="PATH", help="wrapnet executable (default .build/release/wrapnet)")
    p.add_argument("--wrapnet-timeout", type=int, default=600)
    p.add_argument("--keep-onnx", metavar="DIR", help="keep the exported/quantized ONNX files in DIR")
    args = p.parse_args()
    for m in args.models:
        if m not in ALL_MODELS:
            p.error(f"unknown model '{m}' (known: {', '.join(ALL_MODELS)})")
    for e in args.engines:
        if e not in ENGINES:
            p.error(f"unknown engine '{e}' (known: {', '.join(ENGINES)})")
    if min(args.threads) < 1 or min(args.batches) < 1 or args.repeats < 1:
        p.error("batches, threads and repeats must be >= 1")

    if args.ort_reduce_range == "auto":
        args.ort_reduce_range = "off" if cpu_has_vnni() else "on"
    torch.set_num_interop_threads(1)
    torch.backends.quantized.engine = "x86"
    env = {
        "python": platform.python_version(), "torch": torch.__version__, "onnxruntime": ort.__version__,
        "onnx": onnx.__version__, "numpy": np.__version__, "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "quantized_engine": torch.backends.quantized.engine,
        "ort_activations": args.ort_activations, "ort_reduce_range": args.ort_reduce_range,
        "seconds": args.seconds, "repeats": args.repeats, "seed": args.seed, "opset": args.opset,
    }
    print("peers: " + ", ".join(f"{k} {v}" for k, v in env.items()), flush=True)

    exe = find_wrapnet(args.wrapnet)
    wrapnet_ok = bool(exe) and wrapnet_has_bench(exe)
    if args.wrapnet and not exe:
        print(f"peers: --wrapnet {args.wrapnet}: not an executable file", flush=True)
    if not wrapnet_ok:
        print(f"peers: {WRAPNET_MISSING}", flush=True)

    workdir = args.keep_onnx or tempfile.mkdtemp(prefix="peers-")
    os.makedirs(workdir, exist_ok=True)
    results, failures = [], []
    try:
        for name in args.models:
            model, shape = build(name)
            model = initialise(model, shape, args.seed)
            macs = count_macs(model, shape)
            rng = np.random.default_rng(args.seed + 1000)
            calibration = [random_pixels(rng, 16, shape) for _ in range(args.calibration_batches)]
            check = random_pixels(rng, args.check_images, shape)
            with torch.inference_mode():
                reference = model(torch.from_numpy(check)).numpy()
            print(f"\n== {name}: input [N, {shape[0]}, {shape[1]}, {shape[2]}] float32 pixels 0..255, "
                  f"{macs / 1e6:.1f} MMAC/image", flush=True)

            runners, quality = {}, {}
            fp32_path = os.path.join(workdir, f"{name}.fp32.onnx")
            int8_path = os.path.join(workdir, f"{name}.int8.onnx")
            need_onnx = any(e.startswith("ort-") for e in args.engines)
            if need_onnx:
                export_onnx(model, shape, fp32_path, args.opset)
            for engine in args.engines:
                try:
                    if engine == "torch-fp32":
                        runners[engine] = lambda threads, m=model: torch_runner(m)
                    elif engine == "torch-int8":
                        q = quantize_torch(model, shape, calibration)
                        runners[engine] = lambda threads, m=q: torch_runner(m)
                    elif engine == "ort-fp32":
                        runners[engine] = lambda threads: ort_session(fp32_path, threads)
                    elif engine == "ort-int8":
                        ops = quantize_onnx(fp32_path, int8_path, calibration, args)
                        print(f"   ort-int8 graph: " + ", ".join(f"{k}x{v}" for k, v in sorted(ops.items())),
                              flush=True)
                        runners[engine] = lambda threads: ort_session(int8_path, threads)
                    torch.set_num_threads(1)
                    logits = runners[engine](1)(check)
                    agree, rel = agreement(reference, logits)
                    sane = agree >= args.min_agreement if engine.endswith("int8") else True
                    quality[engine] = {"argmax_agreement": agree, "relative_logit_error": rel, "sane": sane}
                    flag = "" if sane else f"  SUSPECT (< {args.min_agreement:.2f})"
                    print(f"   {engine:10s} vs torch-fp32 on {len(check)} random images: argmax agreement "
                          f"{agree * 100:.1f}%, relative logit error {rel:.3f}{flag}", flush=True)
                    if not sane:
                        failures.append(f"{name} {engine}: agreement {agree:.3f}")
                except Exception as e:  # keep going: report the failure in the table
                    print(f"   {engine}: FAILED: {type(e).__name__}: {e}", flush=True)
                    failures.append(f"{name} {engine}: {type(e).__name__}: {e}")
                    quality[engine] = {"error": f"{type(e).__name__}: {e}"}

            wrapnet_rates = {}
            for threads in args.threads:
                torch.set_num_threads(threads)
                if wrapnet_ok:
                    wrapnet_rates[threads] = wrapnet_bench(exe, name, threads, args.wrapnet_timeout)
                sessions = {e: make(threads) for e, make in runners.items()}
                for batch in args.batches:
                    x = random_pixels(rng, batch, shape)
                    row = {"model": name, "batch": batch, "threads": threads, "macs_per_image": macs,
                           "images_per_second": {}, "repeats": {}, "quality": quality}
                    for engine, run in sessions.items():
                        ips, rates = time_runner(run, x, args.seconds, args.repeats, args.warmup)
                        row["images_per_second"][engine] = ips
                        row["repeats"][engine] = rates
                        print(f"   batch {batch:3d} threads {threads}  {engine:10s} {ips:10.1f} images/s "
                              f"(repeats: {', '.join(f'{r:.1f}' for r in rates)})", flush=True)
                    if wrapnet_ok:
                        w = wrapnet_rates[threads]
                        if isinstance(w, dict) and batch in w:
                            row["images_per_second"]["wrapnet"] = w[batch]
                        else:
                            row["wrapnet_note"] = w if isinstance(w, str) else f"no batch {batch} in its JSON"
                    else:
                        row["wrapnet_note"] = WRAPNET_MISSING
                    results.append(row)
                del sessions
    finally:
        if not args.keep_onnx:
            shutil.rmtree(workdir, ignore_errors=True)

    print_table(results, args.engines, wrapnet_ok)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "wrapnet": exe if wrapnet_ok else WRAPNET_MISSING,
                       "results": results, "failures": failures}, f, indent=2)
        print(f"peers: wrote {args.json}")
    if failures:
        print("peers: problems:\n  " + "\n  ".join(failures))
        sys.exit(2)


def print_table(results, engines, wrapnet_ok):
    cols = [ENGINE_TITLES[e] for e in engines] + ["wrapnet"]
    head = f"{'model':10s} {'batch':>5s} {'threads':>7s} " + " ".join(f"{c:>13s}" for c in cols) + "  int8 argmax agreement"
    print("\nimages/s (median of repeats; higher is better)")
    print(head)
    print("-" * len(head))
    for r in results:
        cells = []
        for e in engines:
            v = r["images_per_second"].get(e)
            cells.append(f"{v:13.1f}" if v is not None else f"{'failed':>13s}")
        w = r["images_per_second"].get("wrapnet")
        cells.append(f"{w:13.1f}" if w is not None else f"{'n/a':>13s}")
        agree = []
        for e in engines:
            q = r["quality"].get(e, {})
            if e.endswith("int8") and "argmax_agreement" in q:
                agree.append(f"{ENGINE_TITLES[e].split()[0]} {q['argmax_agreement'] * 100:.1f}%"
                             + ("" if q["sane"] else " SUSPECT"))
        print(f"{r['model']:10s} {r['batch']:5d} {r['threads']:7d} " + " ".join(cells) + "  " + ", ".join(agree))
    if not wrapnet_ok:
        print(f"wrapnet column: {WRAPNET_MISSING}")
    else:
        notes = {r.get("wrapnet_note") for r in results if r.get("wrapnet_note")}
        for n in sorted(notes):
            print(f"wrapnet: {n}")


if __name__ == "__main__":
    main()
