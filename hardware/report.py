"""Writes docs/hardware/ from the synthesis grid: pe-grid.json, README.md (tables, ratios) and SVG plots.

`write(grid, out_dir)` takes the dict that hardware/grid.py builds (tools, run, pe, array) and replaces the files
in `out_dir`; each file is written to a temporary name first, so an interrupted run leaves the old file whole.
"""
import json
import os

import svgplot

MODES = ("wrap", "saturate", "exact")
# Transistors of one $_DFF_P_ in Yosys's CMOS cost model (kernel/cost.h), for the flip-flop share of the array.
DFF_TRANSISTORS = 16


def atomic_write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def index(records):
    """(parallel, weights, mode, acc_bits) -> record; exact is stored under acc_bits 32."""
    return {(r["config"]["parallel"], r["config"]["weights"], r["config"]["acc_mode"], r["config"]["acc_bits"]): r
            for r in records}


METRICS = (  # (column title, function of a record, number format)
    ("transistors", lambda r: r["generic"]["transistors"], "{:,}"),
    ("cells", lambda r: r["generic"]["cells"], "{:,}"),
    ("iCE40 LUT4", lambda r: r["ice40"]["lut4"], "{:,}"),
    ("iCE40 carry", lambda r: r["ice40"]["carry"], "{:,}"),
    ("iCE40 FF", lambda r: r["ice40"]["ff"], "{:,}"),
    ("fmax MHz", lambda r: r["fmax_mhz"], "{:.1f}"),
    ("Xilinx LUT", lambda r: r["xilinx"]["lut"], "{:,}"),
    ("Xilinx CARRY4", lambda r: r["xilinx"]["carry4"], "{:,}"),
    ("Xilinx FF", lambda r: r["xilinx"]["ff"], "{:,}"),
)


def fmt(value, pattern):
    return "—" if value is None else pattern.format(value)


def ratio(num, den):
    return "—" if num is None or den in (None, 0) else f"{num / den:.2f}"


def parameters(records):
    """The (parallel, weights) pairs and accumulator widths of the grid, in order."""
    pairs, widths = [], []
    for r in records:
        pair = (r["config"]["parallel"], r["config"]["weights"])
        if pair not in pairs:
            pairs.append(pair)
        if r["config"]["acc_mode"] != "exact" and r["config"]["acc_bits"] not in widths:
            widths.append(r["config"]["acc_bits"])
    return pairs, sorted(widths)


def pe_table(table, p, weights, widths):
    """Markdown table for one (P, weights): a row per b with 'wrap / saturate' cells, then the exact row."""
    head = "| b | " + " | ".join(f"{title} wrap / sat" for title, _, _ in METRICS) + " |"
    lines = [head, "|" + "---:|" * (len(METRICS) + 1)]
    for b in widths:
        cells = []
        for _, get, pattern in METRICS:
            pair = [table.get((p, weights, mode, b)) for mode in ("wrap", "saturate")]
            cells.append(" / ".join(fmt(get(r), pattern) if r else "—" for r in pair))
        lines.append(f"| {b} | " + " | ".join(cells) + " |")
    exact = table.get((p, weights, "exact", 32))
    if exact:
        lines.append("| exact (32) | " + " | ".join(fmt(get(exact), pattern) for _, get, pattern in METRICS) + " |")
    return "\n".join(lines)


HEADLINE = (  # (title, function of a record)
    ("transistors", lambda r: r["generic"]["transistors"]),
    ("iCE40 LUT4", lambda r: r["ice40"]["lut4"]),
    ("iCE40 LUT4+carry+FF", lambda r: r["ice40"]["lut4"] + r["ice40"]["carry"] + r["ice40"]["ff"]),
    ("Xilinx LUT", lambda r: r["xilinx"]["lut"]),
    ("fmax", lambda r: r["fmax_mhz"]),
)


def headline_ratios(table, pairs):
    """Per (P, weights): exact 32-bit over wrap 8-bit and saturate 8-bit over wrap 8-bit, for each HEADLINE metric."""
    rows = []
    for p, weights in pairs:
        wrap, sat, exact = (table.get((p, weights, m, b)) for m, b in (("wrap", 8), ("saturate", 8), ("exact", 32)))
        if not (wrap and sat and exact):
            continue
        row = {"parallel": p, "weights": weights}
        for title, get in HEADLINE:
            row[title] = {"exact32_over_wrap8": None if get(exact) is None or not get(wrap) else
                          round(get(exact) / get(wrap), 3),
                          "saturate8_over_wrap8": None if get(sat) is None or not get(wrap) else
                          round(get(sat) / get(wrap), 3)}
        rows.append(row)
    return rows


def headline_table(rows):
    head = "| P | weights | " + " | ".join(f"{t} exact32/wrap8 | {t} sat8/wrap8" for t, _ in HEADLINE) + " |"
    lines = [head, "|---:|---|" + "---:|" * (2 * len(HEADLINE))]
    for row in rows:
        cells = []
        for title, _ in HEADLINE:
            for key in ("exact32_over_wrap8", "saturate8_over_wrap8"):
                value = row[title][key]
                cells.append("—" if value is None else f"{value:.2f}")
        lines.append(f"| {row['parallel']} | {row['weights']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def array_rows(records):
    """Per array mode: totals and the share of the PEs and of their accumulator flip-flops in the transistors."""
    rows = []
    for r in records:
        modules = r["generic"]["per_module"]
        top = modules[r["top"]]
        pe_total, acc_flops = 0, 0
        for name, n in top["instances"].items():
            pe_total += n * modules[name]["own_transistors"]
            acc_flops += n * modules[name]["flops"]
        total = r["generic"]["transistors"]
        rows.append({"mode": r["config"]["acc_mode"], "acc_bits": r["config"]["acc_bits"],
                     "transistors": total, "pe_share": round(pe_total / total, 3),
                     "acc_flop_share": round(acc_flops * DFF_TRANSISTORS / total, 3),
                     "acc_bits_total": acc_flops, "cells": r["generic"]["cells"],
                     "ice40_lut4": r["ice40"]["lut4"], "ice40_carry": r["ice40"]["carry"], "ice40_ff": r["ice40"]["ff"],
                     "xilinx_lut": r["xilinx"]["lut"], "xilinx_ff": r["xilinx"]["ff"]})
    return rows


def array_table(rows):
    wrap = next((r for r in rows if r["mode"] == "wrap"), None)
    lines = ["| mode | b | transistors | vs wrap | PEs' share | accumulator FF share | accumulator bits | cells | "
             "iCE40 LUT4 | iCE40 carry | iCE40 FF | Xilinx LUT | Xilinx FF |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['acc_bits']} | {r['transistors']:,} | "
                     f"{ratio(r['transistors'], wrap['transistors'] if wrap else None)} | "
                     f"{100 * r['pe_share']:.0f}% | {100 * r['acc_flop_share']:.0f}% | {r['acc_bits_total']:,} | "
                     f"{r['cells']:,} | {r['ice40_lut4']:,} | {r['ice40_carry']:,} | {r['ice40_ff']:,} | "
                     f"{r['xilinx_lut']:,} | {r['xilinx_ff']:,} |")
    return "\n".join(lines)


def plots(table, pairs, widths, out_dir):
    """One SVG per (metric, P) for ternary weights; returns the file names written."""
    names = []
    for key, title, get in (("transistors", "CMOS transistors", lambda r: r["generic"]["transistors"]),
                            ("ice40-lut4", "iCE40 LUT4", lambda r: r["ice40"]["lut4"])):
        for p, weights in pairs:
            if weights != "ternary":
                continue
            series = []
            for mode in ("wrap", "saturate"):
                points = [(b, get(table[(p, weights, mode, b)])) for b in widths if (p, weights, mode, b) in table]
                series.append(svgplot.Series(mode, points))
            exact = table.get((p, weights, "exact", 32))
            if exact:
                series.append(svgplot.Series("exact (32-bit)", [(widths[0], get(exact)), (widths[-1], get(exact))],
                                             dashed=True))
            name = f"pe-{key}-p{p}.svg"
            svg = svgplot.line_plot(f"{title} vs accumulator bits b (ternary PE, P = {p})",
                                    "accumulator bits b", title, series, x_ticks=[0, 4, 8, 12, 16, 20, 24, 28, 32])
            atomic_write(os.path.join(out_dir, name), svg)
            names.append(name)
    return names


def same_circuit_check(table, pairs):
    """Markdown lines comparing wrap at b = 32 with exact: with every tree level at the width it needs, both are
    one circuit, so equal areas confirm that the exact baseline's tree is not wider than needed, and their fmax
    difference shows the placement noise of one nextpnr seed."""
    equal, total, spread = 0, 0, 0.0
    for p, weights in pairs:
        wrap, exact = table.get((p, weights, "wrap", 32)), table.get((p, weights, "exact", 32))
        if not (wrap and exact):
            continue
        total += 1
        equal += wrap["generic"]["transistors"] == exact["generic"]["transistors"]
        if wrap["fmax_mhz"] and exact["fmax_mhz"]:
            spread = max(spread, abs(wrap["fmax_mhz"] / exact["fmax_mhz"] - 1))
    if not total:
        return []
    return ["## Check: wrap at b = 32 against exact", "",
            "Both keep every tree level at the width it needs and a 32-bit register, so they are one circuit: equal "
            f"CMOS transistor counts in {equal} of {total} (P, weights) pairs. Their fmax differ by up to "
            f"{100 * spread:.0f}%: the placement noise of a single nextpnr seed, so fmax ratios closer to 1 than "
            "that are not differences.", ""]


def readme(grid, table, pairs, widths, ratios, arrays, plot_names):
    run = grid["run"]
    nextpnr = grid["nextpnr"]
    fmax_note = {"all": "every PE", "subset": "the PEs of the headline ratios (b = 8 and exact; `--fmax all` places every PE)",
                 "none": "no PE (skipped)"}[grid["fmax_policy"]]
    parts = [
        "# Hardware: WrapNet processing elements synthesized",
        "",
        "Generated by `python3 hardware/grid.py` from the Verilog of `wrapnet rtl --pe` and `wrapnet rtl --array`; "
        "all numbers are in [pe-grid.json](pe-grid.json). The same command (`bash hardware/run.sh`) also writes "
        "[simulation.md](simulation.md) (every generated layer of trained models against the integer engine on real "
        "MNIST images, and the energy proxy) and [cost.md](cost.md) (whole models: MACs, PE area per MAC, "
        "accumulator bits). What the generator builds and how it is checked: [docs/HARDWARE.md](../HARDWARE.md).",
        "",
        f"Tools: {grid['tools']['yosys']}; {grid['tools']['nextpnr-ice40']}. This run: {run['configs']} "
        f"configurations ({run['cached']} from the cache) in {run['wall_seconds']:.0f} s wall with {run['jobs']} "
        f"jobs on {run['cpus']} CPUs, {run['cpu_seconds']:.0f} s of CPU time. Results are cached per configuration "
        "in runs/hw-cache/; delete it to time a run from scratch.",
        "",
        "## What is measured",
        "",
        f"- PE: P products per cycle ({grid['act_bits']}-bit unsigned activations times binary or ternary weights), "
        "the adder tree and the accumulator register, with no input registers. Modes: `wrap` (b-bit, tree truncated "
        "to b bits), `saturate` (b-bit, one clamp per cycle after the tree's exact sum), `exact` (32-bit accumulator, "
        "tree at the width each level needs).",
        "- **transistors**: Yosys `synth` with every flip-flop legalized to a plain D flip-flop (reset and enable as "
        "gates) before its `abc -fast` step, then `stat -tech cmos` (Yosys's CMOS cost per gate; an estimate, not a "
        "layout). **cells**: the cell count of plain Yosys `synth` (a flip-flop with enable and reset is one cell).",
        "- **iCE40 LUT4 / carry / FF**: `synth_ice40` of the PE alone.",
        f"- **fmax**: the PE between registers: post-route maximum frequency from nextpnr-ice40 ({nextpnr['device']}, "
        f"target {nextpnr['target_mhz']:.0f} MHz, seed {nextpnr['seed']}) of the PE inside a timing wrapper that "
        "registers every input (a shift register fed from one pin) and every output (XOR-reduced to one pin through "
        f"a pipelined tree). Measured for {fmax_note}.",
        "- **Xilinx LUT / CARRY4 / FF**: `synth_xilinx -family xc7 -nodsp -noiopad` (LUT1..LUT6, INV counted as a "
        "LUT1; no DSP48, so no accumulator hides in a DSP).",
        "",
        "## Headline ratios",
        "",
        "Exact 32-bit over WrapNet wrap 8-bit, and saturate 8-bit over wrap 8-bit (for fmax a ratio below 1 means "
        "slower than wrap 8-bit).",
        "",
        headline_table(ratios),
        "",
    ]
    parts += same_circuit_check(table, pairs)
    if plot_names:
        parts += ["## Plots (ternary weights)", ""]
        parts += [f"![{name}]({name})" for name in plot_names]
        parts.append("")
    parts += ["## PE tables", "",
              "Each cell shows wrap / saturate at that b; the last row is the exact PE (32-bit accumulator).", ""]
    for p, weights in pairs:
        parts += [f"### P = {p}, {weights} weights", "", pe_table(table, p, weights, widths), ""]
    if arrays:
        config = grid["array"][0]["config"]
        parts += [
            f"## Output-stationary array ({config['rows']}×{config['cols']} PEs, P = 1, {config['weights']} weights)",
            "",
            "Each PE holds its own accumulator; activations move right and weights move down through registers. "
            "PEs' share: transistors inside the PEs (product, accumulate adder or clamp, accumulator register) over "
            f"the array's total; accumulator FF share: the accumulator flip-flops alone ({DFF_TRANSISTORS} transistors "
            "each in Yosys's CMOS model). The rest is the pipeline registers that pass activations and weights on.",
            "",
            array_table(arrays),
            "",
        ]
    return "\n".join(parts)


def write(grid, out_dir):
    """Writes pe-grid.json, README.md and the plots of `grid` into `out_dir`."""
    os.makedirs(out_dir, exist_ok=True)
    table = index(grid["pe"])
    pairs, widths = parameters(grid["pe"])
    grid["headline_ratios"] = headline_ratios(table, pairs)
    grid["array_summary"] = array_rows(grid["array"])
    plot_names = plots(table, pairs, widths, out_dir)
    atomic_write(os.path.join(out_dir, "pe-grid.json"), json.dumps(grid, indent=1) + "\n")
    atomic_write(os.path.join(out_dir, "README.md"),
                 readme(grid, table, pairs, widths, grid["headline_ratios"], grid["array_summary"], plot_names))
