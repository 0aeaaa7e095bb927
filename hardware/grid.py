#!/usr/bin/env python3
"""Synthesis grid of WrapNet processing elements; writes docs/hardware/.

Generates every PE of the grid with `wrapnet rtl --pe` and the output-stationary arrays with `wrapnet rtl --array`,
synthesizes each with hardware/synth.py (Yosys generic / iCE40 / Xilinx, nextpnr-ice40 fmax), two at a time, and
writes docs/hardware/pe-grid.json, docs/hardware/README.md and the SVG plots.

Grid: P in {1, 16, 64}; binary and ternary weights; 2-bit activations; accumulator widths
b in {6, 7, 8, 10, 12, 16, 20, 32} in modes wrap and saturate, and mode exact (a 32-bit accumulator) once per
(P, weights). Arrays: 8x8 of P = 1 PEs, ternary, b = 8, wrap / saturate / exact (no fmax: its paths are the PE's).

Results are cached per configuration under runs/hw-cache/ (one JSON each), keyed by the SHA-256 of the generated
Verilog and of the synthesis flow (synth.flow_signature: the tool scripts and options), so a rerun only
synthesizes what changed.

Usage:
  python3 hardware/grid.py                  # the whole grid, 2 jobs
  python3 hardware/grid.py --fmax none      # skip place and route
The wrapnet binary is $WRAPNET, else .build/release/wrapnet (build it with `swift build -c release`).
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import resource
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402
import synth  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARALLEL = (1, 16, 64)
WEIGHTS = ("binary", "ternary")
ACT_BITS = 2
ACC_BITS = (6, 7, 8, 10, 12, 16, 20, 32)
MODES = ("wrap", "saturate")
ARRAY = (8, 8)
ARRAY_BITS = 8
ARRAY_WEIGHTS = "ternary"


def pe_configs():
    """Every PE of the grid as a dict of generator flags."""
    configs = []
    for p in PARALLEL:
        for weights in WEIGHTS:
            for bits in ACC_BITS:
                for mode in MODES:
                    configs.append({"kind": "pe", "weights": weights, "act_bits": ACT_BITS, "acc_bits": bits,
                                    "acc_mode": mode, "parallel": p})
            configs.append({"kind": "pe", "weights": weights, "act_bits": ACT_BITS, "acc_bits": 32,
                            "acc_mode": "exact", "parallel": p})
    return configs


def array_configs():
    """The output-stationary arrays, one per mode."""
    rows, cols = ARRAY
    return [{"kind": "array", "rows": rows, "cols": cols, "weights": ARRAY_WEIGHTS, "act_bits": ACT_BITS,
             "acc_bits": 32 if mode == "exact" else ARRAY_BITS, "acc_mode": mode, "parallel": 1}
            for mode in MODES + ("exact",)]


def config_id(config):
    """A file-name-safe name of a configuration, e.g. pe_ternary_a2_b8_wrap_p16."""
    shape = f"array_{config['rows']}x{config['cols']}" if config["kind"] == "array" else "pe"
    return (f"{shape}_{config['weights']}_a{config['act_bits']}_b{config['acc_bits']}_{config['acc_mode']}"
            f"_p{config['parallel']}")


def wrapnet_binary(path):
    """The wrapnet executable: `path`, else $WRAPNET, else .build/release/wrapnet; exits with advice if absent."""
    candidate = path or os.environ.get("WRAPNET") or os.path.join(ROOT, ".build", "release", "wrapnet")
    if not os.access(candidate, os.X_OK):
        sys.exit(f"grid: wrapnet binary {candidate} not found: run `swift build -c release` or set $WRAPNET")
    return candidate


def generate(wrapnet, config, out_dir):
    """Runs the generator for `config` into `out_dir`; returns (path of the .v file, top module name).

    The generator's own simulation is skipped here: the grid only synthesizes.
    """
    argv = [wrapnet, "rtl"]
    if config["kind"] == "array":
        argv += ["--array", f"{config['rows']}x{config['cols']}"]
    else:
        argv += ["--pe", "--parallel", str(config["parallel"])]
    argv += ["--weights", config["weights"], "--act-bits", str(config["act_bits"]),
             "--acc-bits", str(config["acc_bits"]), "--acc-mode", config["acc_mode"], "--out", out_dir, "--no-simulate"]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise synth.ToolError(f"{' '.join(argv)} failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    lines = proc.stdout.strip().splitlines()
    path = lines[-1].strip() if lines else ""
    if not path.endswith(".v") or not os.path.isfile(path):
        raise synth.ToolError(f"{' '.join(argv)} printed no Verilog path on its last line:\n{proc.stdout}")
    return path, os.path.splitext(os.path.basename(path))[0]


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def wants_fmax(config, policy):
    """Whether `config` gets place and route under the --fmax policy."""
    if config["kind"] == "array" or policy == "none":
        return False
    return policy == "all" or config["acc_bits"] == 8 or config["acc_mode"] == "exact"


def run_config(config, wrapnet, work_root, cache_root, fmax_policy, flow_hash):
    """Generates and synthesizes one configuration, or returns its cached result; adds 'cached' and 'config'."""
    name = config_id(config)
    work = os.path.join(work_root, name)
    os.makedirs(work, exist_ok=True)
    verilog, top = generate(wrapnet, config, os.path.join(work, "rtl"))
    fmax = wants_fmax(config, fmax_policy)
    key = {"verilog_sha256": sha256_file(verilog), "flow_sha256": flow_hash, "fmax": fmax}
    cache_path = os.path.join(cache_root, name + ".json")
    if os.path.isfile(cache_path):
        with open(cache_path) as f:
            cached = json.load(f)
        old = cached.get("key", {})
        # A result with fmax also answers a request without it (hardware/cost.py asks for areas only).
        if all(old.get(k) == key[k] for k in ("verilog_sha256", "flow_sha256")) and (old.get("fmax") or not fmax):
            cached["cached"] = True
            if not fmax:
                cached["fmax_mhz"] = None
            return cached
    result = synth.synthesize(verilog, top, os.path.join(work, "synth"), fmax=fmax)
    result.update({"config": config, "id": name, "key": key})
    os.makedirs(cache_root, exist_ok=True)
    tmp = cache_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, cache_path)
    result["cached"] = False
    return result


def tool_versions():
    """Versions of the tools, for the record in pe-grid.json."""
    versions = {}
    for tool, flag in (("yosys", "-V"), ("nextpnr-ice40", "--version")):
        proc = subprocess.run([synth.require_tool(tool), flag], capture_output=True, text=True)
        versions[tool] = (proc.stdout + proc.stderr).strip().splitlines()[0]
    return versions


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--wrapnet", help="wrapnet executable (default $WRAPNET or .build/release/wrapnet)")
    parser.add_argument("--jobs", type=int, default=2, help="configurations synthesized at once (default 2)")
    parser.add_argument("--fmax", choices=("all", "subset", "none"), default="all",
                        help="place and route every PE, only the headline ones (b = 8 and exact), or none (default all)")
    parser.add_argument("--cache", default=os.path.join(ROOT, "runs", "hw-cache"), help="per-configuration results")
    parser.add_argument("--work", default=os.path.join(ROOT, "runs", "hw-work"), help="Verilog, netlists, logs")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "hardware"), help="report folder")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")

    start = time.monotonic()
    try:
        versions = tool_versions()
        wrapnet = wrapnet_binary(args.wrapnet)
        flow_hash = synth.flow_signature()
        configs = pe_configs() + array_configs()
        # Largest first, so that the two workers finish together.
        order = sorted(configs, key=lambda c: -(c["parallel"] * (64 if c["kind"] == "array" else 1)))
        results = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = {pool.submit(run_config, c, wrapnet, args.work, args.cache, args.fmax, flow_hash): c
                       for c in order}
            for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
                try:
                    result = future.result()
                except synth.ToolError:
                    # Stop at the first failure: the queued configurations are dropped, the running one finishes.
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
                results[result["id"]] = result
                how = "cached" if result["cached"] else f"{sum(result['seconds'].values()):.1f} s"
                print(f"[{done}/{len(configs)}] {result['id']}: {how}", file=sys.stderr, flush=True)
    except synth.ToolError as error:
        sys.exit(f"grid: {error}")
    seconds = time.monotonic() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every tool this run started, Yosys's abc included
    cpu_seconds = usage.ru_utime + usage.ru_stime
    ordered = [results[config_id(c)] for c in configs]
    grid = {
        "tools": versions,
        "act_bits": ACT_BITS,
        "fmax_policy": args.fmax,
        "nextpnr": {"device": "iCE40 HX8K ct256", "target_mhz": synth.DEFAULT_FREQ_MHZ,
                    "seed": synth.NEXTPNR_SEED},
        "run": {"wall_seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1), "jobs": args.jobs,
                "cpus": os.cpu_count(), "configs": len(ordered), "cached": sum(r["cached"] for r in ordered)},
        "pe": [r for r in ordered if r["config"]["kind"] == "pe"],
        "array": [r for r in ordered if r["config"]["kind"] == "array"],
    }
    for r in grid["pe"] + grid["array"]:
        r.pop("key", None)
        r.pop("cached", None)
    report.write(grid, args.out)
    print(f"grid: {len(ordered)} configurations ({grid['run']['cached']} cached) in {seconds:.0f} s "
          f"({cpu_seconds:.0f} s CPU); wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
