#!/usr/bin/env python3
"""Hardware cost of whole zoo models with 8-bit WrapNet, 8-bit saturating and 32-bit accumulators.

For each architecture (mlp, cnn, resnet20; binary low-bit weights, 2-bit activations; first and last layers int8
weights with 32-bit accumulators in every column, as the trainer builds them) this reads the dense layers from
`wrapnet rtl --plan`, synthesizes the P = 1 PE of every distinct layer configuration (hardware/synth.py, results
cached with the grid's), and writes docs/hardware/cost.{json,md}:

  MACs           multiply-accumulates per image (and the share in the low-bit layers)
  PE area / MAC  CMOS transistors of the P = 1 PEs, weighted by each layer's share of the MACs: the area that one
                 MAC per cycle of this model's mix costs
  acc. bits      accumulator bits to hold every output of every layer at once (one register per output value,
                 as an output-stationary mapping of each layer keeps them): sum over layers of outputs x width

Usage:
  python3 hardware/cost.py
The wrapnet binary is $WRAPNET, else .build/release/wrapnet.
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grid  # noqa: E402
import synth  # noqa: E402

ROOT = grid.ROOT
ARCHITECTURES = ("mlp", "cnn", "resnet20")
# column name -> (mode, bits) of the low-bit layers
COLUMNS = {"32-bit": ("exact", 32), "saturate 8-bit": ("saturate", 8), "WrapNet 8-bit": ("wrap", 8)}


def activation_bits(max_code):
    return max(1, max_code.bit_length())


def layer_config(layer, column):
    """The generator flags of the P = 1 PE that runs `layer` in `column`."""
    mode, bits = COLUMNS[column] if layer["low_bit"] else ("exact", 32)
    return {"kind": "pe", "weights": layer["weights"], "act_bits": activation_bits(layer["max_input_code"]),
            "acc_bits": bits, "acc_mode": mode, "parallel": 1}


def register_bits(config):
    return config["acc_bits"]  # wrap, saturate: b; exact: 32


def plan(wrapnet, architecture):
    proc = subprocess.run([wrapnet, "rtl", "--plan", architecture, "--weights", "binary", "--act-bits", "2"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"cost: wrapnet rtl --plan {architecture} failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


def markdown(rows):
    lines = ["# Hardware cost of whole models", "",
             "`python3 hardware/cost.py`: binary low-bit weights, 2-bit activations; first and last layers int8 with "
             "32-bit accumulators in every column. PE area per MAC: CMOS transistors (Yosys `stat -tech cmos`) of "
             "the P = 1 PE of each layer, weighted by the layer's share of the MACs. Accumulator bits: every output "
             "value of every layer held in its own register (output-stationary), outputs × register width.", "",
             "| model | MACs / image | low-bit share | accumulator | PE transistors per MAC/cycle | accumulator bits / image |",
             "|---|---:|---:|---|---:|---:|"]
    for r in rows:
        for i, column in enumerate(COLUMNS):
            c = r["columns"][column]
            first = i == 0
            share = "{:.1f} %".format(100 * r["low_bit_share"]) if first else ""
            name = r["architecture"] if first else ""
            macs = format(r["macs"], ",") if first else ""
            lines.append(f"| {name} | {macs} | {share} | {column} | "
                         f"{c['transistors_per_mac']:,.0f} | {c['accumulator_bits']:,} |")
    lines += ["", "Ratios, 32-bit over WrapNet 8-bit:", ""]
    for r in rows:
        a, w = r["columns"]["32-bit"], r["columns"]["WrapNet 8-bit"]
        lines.append(f"- {r['architecture']}: PE area per MAC {a['transistors_per_mac'] / w['transistors_per_mac']:.2f}×, "
                     f"accumulator bits {a['accumulator_bits'] / w['accumulator_bits']:.2f}×")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "hardware"), help="report folder")
    parser.add_argument("--cache", default=os.path.join(ROOT, "runs", "hw-cache"))
    parser.add_argument("--work", default=os.path.join(ROOT, "runs", "hw-work"))
    args = parser.parse_args()
    wrapnet = grid.wrapnet_binary(None)
    flow_hash = synth.flow_signature()
    rows = []
    area = {}
    try:
        for architecture in ARCHITECTURES:
            p = plan(wrapnet, architecture)
            macs = sum(l["macs"] for l in p["layers"])
            row = {"architecture": architecture, "macs": macs,
                   "low_bit_share": sum(l["macs"] for l in p["layers"] if l["low_bit"]) / macs, "columns": {}}
            for column in COLUMNS:
                weighted, bits = 0.0, 0
                for layer in p["layers"]:
                    config = layer_config(layer, column)
                    name = grid.config_id(config)
                    if name not in area:
                        result = grid.run_config(config, wrapnet, args.work, args.cache, "none", flow_hash)
                        area[name] = result["generic"]["transistors"]
                        print(f"cost: {name}: {area[name]} transistors", file=sys.stderr, flush=True)
                    weighted += area[name] * layer["macs"]
                    bits += layer["outputs"] * register_bits(config)
                row["columns"][column] = {"transistors_per_mac": weighted / macs, "accumulator_bits": bits}
            row["layers"] = p["layers"]
            rows.append(row)
    except synth.ToolError as error:
        sys.exit(f"cost: {error}")
    os.makedirs(args.out, exist_ok=True)
    for name, text in (("cost.json", json.dumps({"pe_transistors": area, "models": rows}, indent=1) + "\n"),
                       ("cost.md", markdown(rows))):
        tmp = os.path.join(args.out, f".{name}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(args.out, name))
    print(f"cost: wrote {args.out}/cost.md", file=sys.stderr)


if __name__ == "__main__":
    main()
