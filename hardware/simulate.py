#!/usr/bin/env python3
"""Simulations of generated WrapNet hardware on real MNIST test images; writes docs/hardware/simulation.{json,md}.

Trains (once; cached under runs/hw/) the models the hardware is checked on, with small budgets: the point here is
bit-exactness, not accuracy (the accuracy results are in docs/results):
  mlp    32-bit base, 1 epoch on 10k images; WrapNet fine-tunes (cyclic, k = 2) at 6, 8 and 12 bits, 1 epoch on 10k
  cnn    32-bit base, 1 epoch on 10k images; WrapNet 8-bit fine-tune, 1 epoch on 10k
then runs `wrapnet rtl` (Verilator) on N test images:
  every dense layer of the 8-bit mlp and cnn (accumulators and output codes against the engine), the 8-bit mlp as
  one chained module (logit sums and classes against the engine), the low-bit layers of the 6- and 12-bit mlp,
  saturating PEs (P = 1: the trainer's order; P = 16: clamped once per cycle) against their software model,
and the energy proxy: bit toggles of the accumulator register and adder-tree nets per MAC on real data, for the same
layer built as wrap 8-bit, saturate 8-bit and exact 32-bit (Verilator VCD, hardware/toggles.py).

Usage:
  python3 hardware/simulate.py                 # 100 images
  python3 hardware/simulate.py --images 20     # quicker
The wrapnet binary is $WRAPNET, else .build/release/wrapnet.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import toggles  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = os.path.join(ROOT, "runs", "hw")

# name: (train arguments, initial model or None)
MODELS = {
    "mlp-exact": (["--model", "mlp", "--acc-mode", "exact", "--epochs", "1", "--limit-train", "10000"], None),
    "mlp-cyclic8": (["--model", "mlp", "--acc-mode", "cyclic", "--acc-bits", "8", "--slope", "2", "--penalty", "0.01",
                     "--epochs", "1", "--lr", "3e-4", "--limit-train", "10000"], "mlp-exact"),
    "mlp-cyclic6": (["--model", "mlp", "--acc-mode", "cyclic", "--acc-bits", "6", "--slope", "2", "--penalty", "0.01",
                     "--epochs", "1", "--lr", "1e-3", "--limit-train", "10000"], "mlp-exact"),
    "mlp-cyclic12": (["--model", "mlp", "--acc-mode", "cyclic", "--acc-bits", "12", "--slope", "2", "--penalty", "0.01",
                      "--epochs", "1", "--lr", "3e-4", "--limit-train", "10000"], "mlp-exact"),
    "cnn-exact": (["--model", "cnn", "--acc-mode", "exact", "--epochs", "1", "--limit-train", "10000"], None),
    "cnn-cyclic8": (["--model", "cnn", "--acc-mode", "cyclic", "--acc-bits", "8", "--slope", "2", "--penalty", "0.001",
                     "--epochs", "1", "--lr", "1e-3", "--limit-train", "10000"], "cnn-exact"),
}


def log(message):
    print(message, file=sys.stderr, flush=True)


def wrapnet():
    path = os.environ.get("WRAPNET") or os.path.join(ROOT, ".build", "release", "wrapnet")
    if not os.path.exists(path):
        sys.exit(f"simulate: {path} not found; build it with `swift build -c release --product wrapnet`")
    return path


def run(args, capture=True):
    result = subprocess.run(args, cwd=ROOT, text=True, capture_output=capture)
    if result.returncode != 0:
        sys.exit(f"simulate: `{' '.join(args)}` failed (exit {result.returncode}):\n{result.stderr[-3000:] if capture else ''}")
    return result.stdout


def ensure_model(name):
    """Trains and converts `name` unless runs/hw/<name> already holds it; returns the engine model's path."""
    args, init = MODELS[name]
    out = os.path.join(RUNS, name)
    engine = out + ".engine.safetensors"
    if not os.path.exists(os.path.join(out, "model.safetensors")):
        if init:
            ensure_model(init)
            args = args + ["--init", os.path.join(RUNS, init, "model.safetensors")]
        log(f"training {name}: wrapnet train {' '.join(args)}")
        run([wrapnet(), "train"] + args + ["--out", out])
    if not os.path.exists(engine):
        run([wrapnet(), "convert", os.path.join(out, "model.safetensors"), "--out", engine])
    return engine


def accuracy(name):
    with open(os.path.join(RUNS, name, "summary.json")) as f:
        return json.load(f).get("test_accuracy")


def rtl(model, out, images, extra):
    """Runs `wrapnet rtl --json`; returns its JSON (exits on any mismatch or error). A run whose output is newer than
    the model and the wrapnet binary and was made with the same arguments is reused (runs/hw/rtl/*/request.json)."""
    args = [wrapnet(), "rtl", model, "--out", out, "--images", str(images), "--simulator", "verilator", "--json"] + extra
    request_path = out + ".request.json"
    report_path = os.path.join(out, "report.json")
    if os.path.exists(report_path) and os.path.exists(request_path):
        newest_input = max(os.path.getmtime(model), os.path.getmtime(wrapnet()))
        with open(request_path) as f:
            same = json.load(f) == args
        if same and os.path.getmtime(report_path) > newest_input:
            log("  (reused) " + " ".join(args[1:]))
            with open(report_path) as f:
                return json.load(f)
    log("  " + " ".join(args[1:]))
    result = subprocess.run(args, cwd=ROOT, text=True, capture_output=True)
    if result.returncode != 0:
        sys.exit(f"simulate: wrapnet rtl failed (exit {result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    with open(report_path, "w") as f:
        f.write(result.stdout)
    with open(request_path, "w") as f:
        json.dump(args, f)
    return json.loads(result.stdout)


def energy_proxy(model, work):
    """Toggles per MAC of the accumulator register and the adder tree for one real layer (fc2 of the 8-bit mlp,
    one image) built in three modes, with P = 1 and P = 16."""
    rows = []
    for parallel, mode, bits in ((p, m, b) for p in (1, 16) for m, b in (("wrap", 8), ("saturate", 8), ("exact", 32))):
        out = os.path.join(work, f"energy-{mode}-p{parallel}")
        extra = ["--layers", "fc2", "--parallel", str(parallel), "--vcd-rows", "1"]
        if mode != "wrap":
            extra += ["--acc-mode", mode] + (["--acc-bits", str(bits)] if mode != "exact" else [])
        report = rtl(model, out, 1, extra)
        layer = report["layers"][0]
        macs = 1024 * 1024  # one image: 1024 channels x fan-in 1024
        groups = {"accumulator": ["*.pe.acc_r"], "products": ["*.pe.p[0-9]*"]}
        if parallel > 1:
            groups["tree"] = ["*.pe.s[0-9]*_*"]
        summary = toggles.summarize(os.path.join(out, "layer_fc2.vcd"), groups, macs=macs)
        row = {"mode": mode, "accumulator_bits": bits, "parallel": parallel, "pe": layer["pe"], "macs": macs,
               "mismatches": layer["accumulatorMismatches"] + layer["codeMismatches"]}
        for g in groups:
            entry = summary["groups"][g]
            row[g] = {"signals": entry["signals"], "bits": entry["bits"], "toggles": entry["toggles"],
                      "per_mac": entry["toggles"] / macs}
        rows.append(row)
    return rows


def markdown(result):
    lines = ["# Generated hardware against the integer engine", "",
             f"`python3 hardware/simulate.py` ({result['verilator']}), {result['images']} MNIST test images; "
             "every value below was compared one by one with the integer engine's (the trace of every layer is "
             "itself checked against the engine before it is written as test vectors).", "",
             "| model | layer | PE | values checked | accumulator mismatches | code mismatches | cycles |",
             "|---|---|---|---:|---:|---:|---:|"]
    for run in result["runs"]:
        for l in run["report"]["layers"]:
            codes = str(l["codeMismatches"]) if l["outputStage"] else "– (sums only)"
            lines.append(f"| {run['label']} | {l['layer']} | `{l['pe']}` | {l['values']:,} | {l['accumulatorMismatches']} | "
                         f"{codes} | {l['cycles']:,} |")
    lines += ["", "Whole networks (layer units chained through code buffers; the class is the argmax of the engine's "
              "Float scale and bias applied to the simulated logit sums):", "",
              "| model | module | images | logit-sum mismatches | class mismatches | cycles |", "|---|---|---:|---:|---:|---:|"]
    for run in result["runs"]:
        n = run["report"].get("network")
        if n:
            lines.append(f"| {run['label']} | `{n['module']}` | {n['images']} | {n['logitMismatches']} | "
                         f"{n['predictionMismatches']} | {n['cycles']:,} |")
    lines += ["", "Models (trained for these checks with small budgets; accuracy results are in "
              "[docs/results](../results/README.md)):", "", "| model | training | test accuracy |", "|---|---|---:|"]
    for name, m in result["models"].items():
        acc = f"{100 * m['accuracy']:.2f} %" if m["accuracy"] is not None else "–"
        lines.append(f"| {name} | `wrapnet train {' '.join(m['train'])}`{' --init ' + m['init'] if m['init'] else ''} | {acc} |")
    lines += ["", "## Energy proxy: bit toggles per MAC on real data", "",
              "Layer fc2 of the 8-bit WrapNet mlp (binary weights, 2-bit activations, fan-in 1024), one test image "
              "(1,048,576 MACs), built with each accumulator, P = 1 and P = 16. Toggles are bit flips of the nets "
              "between successive values in the simulation's value-change dump: a proxy for dynamic energy, not a "
              "power measurement (no capacitances, no clock tree). The register's toggles stand for its adder's "
              "output too. With P = 16 and 2-bit codes the tree needs at most 7 bits, so it is the same in all three "
              "PEs; the trained model rarely overflows, so the saturating register holds the same values as the "
              "wrapping one.", "",
              "| P | accumulator | PE | accumulator register toggles/MAC | adder-tree toggles/MAC | product toggles/MAC | PE toggles/MAC |",
              "|---:|---|---|---:|---:|---:|---:|"]
    for r in result["energy"]:
        tree = r.get("tree", {"per_mac": 0.0})["per_mac"]
        total = r["accumulator"]["per_mac"] + tree + r["products"]["per_mac"]
        tree_text = f"{tree:.3f}" if "tree" in r else "– (no tree)"
        lines.append(f"| {r['parallel']} | {r['mode']} {r['accumulator_bits']}-bit | `{r['pe']}` | "
                     f"{r['accumulator']['per_mac']:.3f} | {tree_text} | {r['products']['per_mac']:.3f} | {total:.3f} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100, help="test images per simulation (default 100)")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "hardware"), help="report folder")
    args = parser.parse_args()
    if args.images < 1:
        sys.exit("simulate: --images must be at least 1")
    for tool in ("verilator", "iverilog"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            sys.exit(f"simulate: {tool} not found; run scripts/setup.sh")
    started = time.time()
    run([wrapnet(), "data", "fetch", "mnist"])
    models = {name: ensure_model(name) for name in ("mlp-cyclic8", "mlp-cyclic6", "mlp-cyclic12", "cnn-cyclic8")}
    work = os.path.join(RUNS, "rtl")
    n = args.images
    plan = [
        ("mlp 8-bit WrapNet", "mlp-cyclic8", ["--parallel", "64", "--network"], n),
        ("cnn 8-bit WrapNet", "cnn-cyclic8", ["--parallel", "64"], n),
        ("mlp 6-bit WrapNet", "mlp-cyclic6", ["--parallel", "64", "--layers", "fc2,fc3,fc4"], n),
        ("mlp 12-bit WrapNet", "mlp-cyclic12", ["--parallel", "64", "--layers", "fc2,fc3,fc4"], n),
        ("mlp 8-bit, saturating PE (P = 16)", "mlp-cyclic8",
         ["--parallel", "16", "--layers", "fc2", "--acc-mode", "saturate", "--acc-bits", "8"], n),
        ("mlp 8-bit, saturating PE (P = 1)", "mlp-cyclic8",
         ["--parallel", "1", "--layers", "fc2", "--acc-mode", "saturate", "--acc-bits", "8"], max(1, n // 10)),
        ("cnn 8-bit, saturating PE (P = 1)", "cnn-cyclic8",
         ["--parallel", "1", "--layers", "conv2,conv4", "--acc-mode", "saturate", "--acc-bits", "8"], max(1, n // 10)),
    ]
    runs = []
    for label, name, extra, images in plan:
        log(f"{label}: {images} image(s)")
        report = rtl(models[name], os.path.join(work, name + "-" + str(len(runs))), images, extra)
        runs.append({"label": label, "model": name, "images": images, "arguments": extra, "report": report})
    log("energy proxy: fc2 of the 8-bit mlp in three accumulator modes")
    energy = energy_proxy(models["mlp-cyclic8"], work)
    version = subprocess.run(["verilator", "--version"], capture_output=True, text=True).stdout.strip()
    result = {
        "images": n, "verilator": version, "seconds": round(time.time() - started, 1), "runs": runs, "energy": energy,
        "models": {name: {"train": MODELS[name][0], "init": MODELS[name][1], "accuracy": accuracy(name)}
                   for name in MODELS},
    }
    mismatches = sum(l["accumulatorMismatches"] + l["codeMismatches"] for r in runs for l in r["report"]["layers"])
    mismatches += sum(r["report"]["network"]["logitMismatches"] + r["report"]["network"]["predictionMismatches"]
                      for r in runs if r["report"].get("network"))
    result["mismatches"] = mismatches
    os.makedirs(args.out, exist_ok=True)
    for name, text in (("simulation.json", json.dumps(result, indent=1, sort_keys=True) + "\n"),
                       ("simulation.md", markdown(result))):
        tmp = os.path.join(args.out, f".{name}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(args.out, name))
    log(f"simulations: {mismatches} mismatches in all, {result['seconds']} s; wrote {args.out}/simulation.md")
    if mismatches:
        sys.exit(1)


if __name__ == "__main__":
    main()
