#!/usr/bin/env python3
"""Synthesize one Verilog design and report its area and speed.

For a Verilog file and its top module this runs:

  generic  Yosys `synth -top M`: cell count (a flip-flop with its enable and reset is one cell) and a CMOS
           transistor estimate (`stat -tech cmos`, after every flip-flop is legalized to a plain $_DFF_P_ with its
           reset and enable as gates, so that every cell has a CMOS cost).
  xilinx   Yosys `synth_xilinx -family xc7 -nodsp -noiopad -top M`: LUT1..LUT6 (INV counted as LUT1), CARRY4,
           flip-flops (FD*) and MUXF7/MUXF8. `-nodsp` keeps everything in the fabric, so a 32-bit accumulator
           cannot hide in a DSP48.
  ice40    Yosys `synth_ice40`: SB_LUT4, SB_CARRY and SB_DFF* counts of the design alone.
  fmax     The design inside a generated timing wrapper (every input driven by a flip-flop of a shift register
           fed from one pin, every output registered and XOR-reduced to one pin through a pipelined tree), placed
           and routed by nextpnr-ice40 on an HX8K (ct256). The post-route "Max frequency" of the clock is the
           design between registers: the wrapper adds a register before every input and after every output and
           no logic on those paths. The wrapper is synthesized with `-noflatten`, so the design stays its own
           module and its iCE40 counts above come from that same netlist.

Usage:
  python3 hardware/synth.py DESIGN.v --top pe_ternary_a2_b8_wrap_p16 --work runs/hw-work/x [--no-fmax]

prints the result as JSON (see `synthesize` for the fields). The grid driver (hardware/grid.py) imports this file.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

# Target clock for nextpnr. Only the achieved frequency is reported; the target steers the timing-driven placer.
DEFAULT_FREQ_MHZ = 250.0
NEXTPNR_SEED = 1


class ToolError(RuntimeError):
    """A synthesis tool is missing or failed; the message says which and what to do."""


def require_tool(name):
    """Returns the path of `name`, or raises ToolError naming the package to install."""
    path = shutil.which(name)
    if path is None:
        raise ToolError(f"{name} not found: run scripts/setup.sh "
                        f"(or apt-get install -y yosys nextpnr-ice40 fpga-icestorm iverilog verilator)")
    return path


def run_tool(argv, log_path, cwd):
    """Runs a tool with its output going to `log_path`; raises ToolError with the log's tail on failure."""
    with open(log_path, "w") as log:
        proc = subprocess.run(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        with open(log_path) as log:
            tail = "".join(log.readlines()[-15:])
        raise ToolError(f"{argv[0]} failed (exit {proc.returncode}); log {log_path}:\n{tail}")


def read_stat(path):
    """Parses a `stat -json` file: the whole design's totals and the per-module numbers."""
    with open(path) as f:
        stat = json.load(f)
    design = stat["design"]
    modules = {name.lstrip("\\"): m for name, m in stat.get("modules", {}).items()}
    return design, modules


def transistors(entry, submodules=()):
    """The `estimated_num_transistors` of a stat entry as an int.

    Yosys appends '+' when some cells have no CMOS cost. In a module that instantiates `submodules` this is
    expected (their cost is in their own entries); anywhere else it is an error.
    """
    value = str(entry.get("estimated_num_transistors", ""))
    has_submodules = any(kind.lstrip("\\") in submodules for kind in entry["num_cells_by_type"])
    if not value.rstrip("+").isdigit() or (value.endswith("+") and not has_submodules):
        raise ToolError(f"transistor estimate '{value}' is incomplete: a cell type has no CMOS cost "
                        f"(cells: {sorted(entry['num_cells_by_type'])})")
    return int(value.rstrip("+"))


def count(cells, prefixes):
    """Sum of the counts of the cell types that start with one of `prefixes`."""
    return sum(n for kind, n in cells.items() if kind.startswith(prefixes))


def yosys_script(verilog, top, ice40):
    """One Yosys run: ports, generic synthesis, Xilinx mapping and, when `ice40`, iCE40 mapping of the design alone,
    each from the same elaborated source."""
    lines = [
        f"read_verilog {verilog}",
        f"hierarchy -check -top {top}",
        "proc",
        "design -save src",
        "write_json ports.json",
        f"synth -top {top} -run :fine",
        "design -save coarse",
        f"synth -top {top} -run fine:",
        "tee -q -o generic.json stat -json",
        # Yosys's `fine` steps again, with every flip-flop legalized to a plain $_DFF_P_ (which has a CMOS cost)
        # before `abc`, so that reset and enable are gates optimized with the rest. opt_dff (in `opt`) would fold
        # them back into $_SDFFE_ cells, so only opt_clean follows.
        "design -load coarse",
        "opt -fast -full",
        "memory_map",
        "opt -full",
        "techmap",
        "opt -fast",
        "dfflegalize -cell $_DFF_P_ x",
        "abc -fast",
        "opt_clean",
        "tee -q -o cmos.json stat -json -tech cmos",
        "design -load src",
        f"synth_xilinx -family xc7 -nodsp -noiopad -top {top}",
        "tee -q -o xilinx.json stat -json",
    ]
    if ice40:
        lines += ["design -load src", f"synth_ice40 -top {top}", "tee -q -o ice40.json stat -json"]
    return "\n".join(lines) + "\n"


def read_ports(path, top):
    """Port name -> (direction, width) of `top` from a Yosys JSON netlist."""
    with open(path) as f:
        netlist = json.load(f)
    module = netlist["modules"].get(top)
    if module is None:
        raise ToolError(f"module {top} not found in {path}; found {sorted(netlist['modules'])}")
    return {name: (p["direction"], len(p["bits"])) for name, p in module["ports"].items()}


def timing_wrapper(top, ports):
    """Verilog of a wrapper with pins clk, sin, rst_in, dout around `top` (see the module docstring).

    Every input but clk and rst is a slice of one shift register `sr` fed by `sin`; rst comes from a flip-flop;
    all outputs are registered and XOR-reduced four bits per level with a register after each level.
    """
    if ports.get("clk", ("", 0))[0] != "input":
        raise ToolError(f"{top} has no input port clk; the timing wrapper needs it (ports: {sorted(ports)})")
    ins = [(n, w) for n, (d, w) in ports.items() if d == "input" and n not in ("clk", "rst")]
    outs = [(n, w) for n, (d, w) in ports.items() if d == "output"]
    if not ins or not outs:
        raise ToolError(f"{top} needs data inputs and outputs for the timing wrapper (ports: {sorted(ports)})")
    n_in = sum(w for _, w in ins)
    n_out = sum(w for _, w in outs)
    lines = [
        "module timing_wrapper (input clk, input sin, input rst_in, output dout);",
        f"  reg [{n_in}:0] sr;",
        f"  always @(posedge clk) sr <= {{sr[{n_in - 1}:0], sin ^ sr[{n_in}]}};",
        "  reg rst_q;",
        "  always @(posedge clk) rst_q <= rst_in;",
    ]
    connections = [".clk(clk)"]
    if "rst" in ports:
        connections.append(".rst(rst_q)")
    lo = 0
    for name, width in ins:
        connections.append(f".{name}(sr[{lo + width - 1}:{lo}])")
        lo += width
    lo = 0
    lines.append(f"  wire [{n_out - 1}:0] y;")
    for name, width in outs:
        connections.append(f".{name}(y[{lo + width - 1}:{lo}])")
        lo += width
    lines.append(f"  {top} dut ({', '.join(connections)});")
    lines.append(f"  reg [{n_out - 1}:0] l0;")
    lines.append("  always @(posedge clk) l0 <= y;")
    level, width = 0, n_out
    while width > 1:
        nxt = (width + 3) // 4
        lines.append(f"  reg [{nxt - 1}:0] l{level + 1};")
        for i in range(nxt):
            hi = min(width, 4 * i + 4) - 1
            lines.append(f"  always @(posedge clk) l{level + 1}[{i}] <= ^l{level}[{hi}:{4 * i}];")
        level, width = level + 1, nxt
    lines.append(f"  assign dout = l{level}[0];")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


WRAPPER_SCRIPT = ("read_verilog {verilog}\nread_verilog timing_wrapper.v\n"
                  "synth_ice40 -noflatten -top timing_wrapper -json wrapper.json\n"
                  "tee -q -o ice40.json stat -json\n")


def nextpnr_arguments(freq_mhz):
    """nextpnr-ice40's arguments for the wrapper netlist (one thread: the grid runs jobs side by side)."""
    return ["--hx8k", "--package", "ct256", "--json", "wrapper.json", "--pcf-allow-unconstrained",
            "--freq", str(freq_mhz), "--timing-allow-fail", "--seed", str(NEXTPNR_SEED), "--threads", "1",
            "--report", "nextpnr.json"]


def flow_signature(freq_mhz=DEFAULT_FREQ_MHZ):
    """SHA-256 of everything that decides the numbers: the Yosys scripts, the timing wrapper of a sample design and
    nextpnr's arguments. Cached results are reused only under the same signature."""
    sample = {"clk": ("input", 1), "rst": ("input", 1), "x": ("input", 3), "acc": ("output", 5)}
    text = "\n".join([yosys_script("DESIGN.v", "TOP", ice40=True), yosys_script("DESIGN.v", "TOP", ice40=False),
                      WRAPPER_SCRIPT, timing_wrapper("TOP", sample), " ".join(nextpnr_arguments(freq_mhz))])
    return hashlib.sha256(text.encode()).hexdigest()


def ice40_in_wrapper(verilog, top, ports, work, freq_mhz):
    """iCE40 mapping of `top` inside the timing wrapper, kept as its own module (`-noflatten`), so that its cell
    counts are the design alone; then place and route of the whole wrapper.

    Returns (cells by type of `top`, post-route fmax in MHz of the clock).
    """
    with open(os.path.join(work, "timing_wrapper.v"), "w") as f:
        f.write(timing_wrapper(top, ports))
    script = WRAPPER_SCRIPT.format(verilog=verilog)
    with open(os.path.join(work, "wrapper.ys"), "w") as f:
        f.write(script)
    run_tool([require_tool("yosys"), "-q", "-s", "wrapper.ys"], os.path.join(work, "wrapper.log"), work)
    _, modules = read_stat(os.path.join(work, "ice40.json"))
    if top not in modules:
        raise ToolError(f"module {top} missing from {work}/ice40.json (found {sorted(modules)})")
    run_tool([require_tool("nextpnr-ice40")] + nextpnr_arguments(freq_mhz), os.path.join(work, "nextpnr.log"), work)
    with open(os.path.join(work, "nextpnr.json")) as f:
        report = json.load(f)
    clocks = report.get("fmax", {})
    if len(clocks) != 1:
        raise ToolError(f"expected one clock in {work}/nextpnr.json, found {sorted(clocks)}")
    (entry,) = clocks.values()
    return modules[top]["num_cells_by_type"], round(float(entry["achieved"]), 2)


def synthesize(verilog, top, work, fmax=True, freq_mhz=DEFAULT_FREQ_MHZ):
    """Synthesizes `top` from `verilog` in the folder `work`; returns a dict:

    generic: cells, flops, transistors, cells_by_type, per_module (transistors and flops of each module and
             how often the top instantiates it, for hierarchical designs)
    ice40:   lut4, carry, ff, cells_by_type
    xilinx:  lut (LUT1..LUT6 plus INV), lut_by_size, carry4, ff, muxf7, muxf8, cells_by_type
    fmax_mhz: post-route iCE40 HX8K fmax of the design between registers, or None when not asked for
    seconds: wall time of the main Yosys run and of the iCE40 wrapper synthesis with place and route
    """
    yosys = require_tool("yosys")
    if fmax:
        require_tool("nextpnr-ice40")
    verilog = os.path.abspath(verilog)
    if not os.path.isfile(verilog):
        raise ToolError(f"Verilog file {verilog} not found")
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "synth.ys"), "w") as f:
        f.write(yosys_script(verilog, top, ice40=not fmax))
    start = time.monotonic()
    run_tool([yosys, "-q", "-s", "synth.ys"], os.path.join(work, "synth.log"), work)
    seconds = {"yosys": round(time.monotonic() - start, 2)}
    ports = read_ports(os.path.join(work, "ports.json"), top)
    fmax_mhz = None
    if fmax:
        start = time.monotonic()
        i_cells, fmax_mhz = ice40_in_wrapper(verilog, top, ports, work, freq_mhz)
        seconds["ice40_fmax"] = round(time.monotonic() - start, 2)
    else:
        i_cells = read_stat(os.path.join(work, "ice40.json"))[0]["num_cells_by_type"]

    generic, _ = read_stat(os.path.join(work, "generic.json"))
    cmos, cmos_modules = read_stat(os.path.join(work, "cmos.json"))
    xilinx, _ = read_stat(os.path.join(work, "xilinx.json"))
    g_cells = generic["num_cells_by_type"]
    x_cells = xilinx["num_cells_by_type"]
    lut_by_size = {f"LUT{k}": x_cells.get(f"LUT{k}", 0) for k in range(1, 7)}
    lut_by_size["LUT1"] += x_cells.get("INV", 0)

    result = {
        "top": top,
        "ports": {name: {"direction": d, "width": w} for name, (d, w) in ports.items()},
        "generic": {
            "cells": generic["num_cells"],
            "flops": count(g_cells, ("$_DFF", "$_SDFF", "$_DFFE", "$_SDFFE", "$_SDFFCE", "$_ALDFF", "$_DLATCH")),
            "transistors": transistors(cmos),
            "cells_by_type": g_cells,
            "per_module": {name: {"own_transistors": transistors(m, cmos_modules),
                                  "flops": m["num_cells_by_type"].get("$_DFF_P_", 0),
                                  "instances": {k.lstrip("\\"): v for k, v in m["num_cells_by_type"].items()
                                                if k.lstrip("\\") in cmos_modules}}
                           for name, m in cmos_modules.items()},
        },
        "ice40": {
            "lut4": i_cells.get("SB_LUT4", 0),
            "carry": i_cells.get("SB_CARRY", 0),
            "ff": count(i_cells, ("SB_DFF",)),
            "cells_by_type": i_cells,
        },
        "xilinx": {
            "lut": sum(lut_by_size.values()),
            "lut_by_size": lut_by_size,
            "carry4": x_cells.get("CARRY4", 0),
            "ff": count(x_cells, ("FD",)),
            "muxf7": x_cells.get("MUXF7", 0),
            "muxf8": x_cells.get("MUXF8", 0),
            "cells_by_type": x_cells,
        },
        "fmax_mhz": fmax_mhz,
        "seconds": seconds,
    }
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("verilog", help="Verilog file with the design")
    parser.add_argument("--top", required=True, help="top module name")
    parser.add_argument("--work", required=True, help="folder for the tools' scripts, netlists and logs")
    parser.add_argument("--no-fmax", action="store_true", help="skip the nextpnr place and route")
    parser.add_argument("--freq", type=float, default=DEFAULT_FREQ_MHZ, help="nextpnr target clock in MHz")
    args = parser.parse_args()
    try:
        result = synthesize(args.verilog, args.top, args.work, fmax=not args.no_fmax, freq_mhz=args.freq)
    except ToolError as error:
        sys.exit(f"synth: {error}")
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
