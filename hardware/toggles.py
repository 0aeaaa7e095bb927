#!/usr/bin/env python3
"""Bit toggles per signal group in a VCD file: the switching-activity proxy for dynamic energy.

A toggle is one bit that changes between 0 and 1 from one value of a signal to its next value (the Hamming
distance between successive values). The first value of each signal only sets its state. Changes into or out of
x/z are not toggles; they are counted separately as `xz_changes`.

Signals are selected by full hierarchical name (scopes joined by '.', e.g. `tb.dut.acc_r`, a bit-select as
`tb.dut.x[3]`). A pattern is a name prefix, or a shell-style glob when it holds one of * ? [ (matched against the
whole name). Identifier codes shared by several variables (aliases of one net) count once per group.

Usage:
  python3 hardware/toggles.py run.vcd --group acc='*.acc_r' --group tree='*.s[0-9]*_*' --macs 64000
  python3 hardware/toggles.py run.vcd tb.dut.        # one group per pattern, named by the pattern
  python3 hardware/toggles.py run.vcd --scope tb.dut --list
Prints JSON: for each group the signals and bits it holds, its toggles, x/z changes and, with --macs N, toggles
per MAC (toggles / N). --per-signal adds the toggles of every selected signal.
"""
import argparse
import fnmatch
import json
import sys


class VCDError(ValueError):
    """The file is not a VCD this parser understands; the message says where."""


class Var:
    """One $var: its full name, width and identifier code."""

    def __init__(self, name, width, code):
        self.name, self.width, self.code = name, width, code


def parse_header(lines):
    """Reads declarations up to $enddefinitions; returns the list of Var.

    `lines` is an iterator over the file's lines; it is left just after $enddefinitions.
    """
    scopes, variables, tokens = [], [], []
    for line_number, line in enumerate(lines, 1):
        tokens += line.split()
        # Declarations run from a $keyword to its $end and may span lines.
        while "$end" in tokens:
            end = tokens.index("$end")
            command, tokens = tokens[:end], tokens[end + 1:]
            if not command:
                continue
            keyword = command[0]
            if keyword == "$scope":
                if len(command) < 3:
                    raise VCDError(f"line {line_number}: $scope without a name: {' '.join(command)}")
                scopes.append(command[2])
            elif keyword == "$upscope":
                if not scopes:
                    raise VCDError(f"line {line_number}: $upscope outside any scope")
                scopes.pop()
            elif keyword == "$var":
                # $var type width code reference [bit-range] $end
                if len(command) < 5:
                    raise VCDError(f"line {line_number}: malformed $var: {' '.join(command)}")
                width, code = int(command[2]), command[3]
                reference = "".join(command[4:])
                # A vector's range ([7:0]) is dropped, a bit-select ([3]) kept: `acc_r[7:0]` is named `acc_r`.
                if reference.endswith("]") and ":" in reference[reference.rfind("["):]:
                    reference = reference[:reference.rfind("[")]
                variables.append(Var(".".join(scopes + [reference]), width, code))
            elif keyword == "$enddefinitions":
                return variables
    raise VCDError("no $enddefinitions: the file ends inside its header")


def matches(name, pattern):
    """Whether a full signal name is selected by a prefix or glob pattern."""
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return name.startswith(pattern)


def extend(value, width):
    """A VCD vector value left-extended to `width` characters (0 and 1 extend with 0, x and z with themselves)."""
    value = value.lower()
    if len(value) >= width:
        return value[-width:]
    fill = value[0] if value[0] in "xz" else "0"
    return fill * (width - len(value)) + value


def difference(old, new):
    """(toggles, x/z changes) between two values of equal width, as strings of 0 1 x z."""
    if "x" not in old and "z" not in old and "x" not in new and "z" not in new:
        return (int(old, 2) ^ int(new, 2)).bit_count(), 0
    toggles = xz = 0
    for a, b in zip(old, new):
        if a != b:
            if a in "01" and b in "01":
                toggles += 1
            else:
                xz += 1
    return toggles, xz


def count_toggles(lines, codes, widths, start=None, stop=None):
    """Toggles and x/z changes per identifier code in `codes`, from the value-change section of a VCD.

    `widths` gives each code's width; only changes at times in [start, stop] count (a change before `start` still
    sets the state).
    """
    state = {}
    toggles = dict.fromkeys(codes, 0)
    xz = dict.fromkeys(codes, 0)
    time = 0
    counting = start is None
    in_comment = False
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if in_comment or line.startswith("$comment"):
            in_comment = not line.endswith("$end")
            continue
        head = line[0]
        if head == "#":
            time = int(line[1:])
            if stop is not None and time > stop:
                break
            counting = start is None or time >= start
            continue
        if head in "bB":
            value, _, code = line[1:].partition(" ")
            code = code.strip()
        elif head in "01xXzZ":
            value, code = head, line[1:].strip()
        elif head in "rR":
            continue  # real variables have no bits
        elif head == "$":
            continue  # $dumpvars, $dumpall, $dumpon, $dumpoff, $end: the values between them are ordinary lines
        else:
            raise VCDError(f"unexpected value-change line: {line[:60]}")
        if code not in toggles:
            continue
        value = extend(value, widths[code])
        old = state.get(code)
        state[code] = value
        if old is None or not counting:
            continue
        t, x = difference(old, value)
        toggles[code] += t
        xz[code] += x
    return toggles, xz


def summarize(path, groups, scope=None, macs=None, start=None, stop=None, per_signal=False):
    """Reads the VCD at `path`; returns a dict with one entry per group (name -> list of patterns)."""
    with open(path, errors="replace") as f:
        variables = parse_header(f)
        if scope:
            variables = [v for v in variables if v.name.startswith(scope.rstrip(".") + ".")]
        selected = {}
        for group, patterns in groups.items():
            chosen = [v for v in variables if any(matches(v.name, p) for p in patterns)]
            if not chosen:
                raise VCDError(f"group {group}: no signal matches {patterns} (try --list)")
            selected[group] = chosen
        widths = {}
        for chosen in selected.values():
            for v in chosen:
                widths[v.code] = max(widths.get(v.code, 0), v.width)
        toggles, xz = count_toggles(f, set(widths), widths, start, stop)
    result = {"vcd": path, "groups": {}}
    if macs:
        result["macs"] = macs
    for group, chosen in selected.items():
        codes = sorted({v.code for v in chosen})
        entry = {"patterns": groups[group], "signals": len(chosen), "bits": sum(widths[c] for c in codes),
                 "toggles": sum(toggles[c] for c in codes), "xz_changes": sum(xz[c] for c in codes)}
        if macs:
            entry["toggles_per_mac"] = round(entry["toggles"] / macs, 4)
        if per_signal:
            entry["per_signal"] = {v.name: toggles[v.code] for v in chosen}
        result["groups"][group] = entry
    return result


def parse_groups(args):
    """Group name -> patterns from --group NAME=PATTERN[,PATTERN...] options and positional patterns."""
    groups = {}
    for spec in args.group:
        name, sep, patterns = spec.partition("=")
        if not sep or not name or not patterns:
            raise VCDError(f"--group expects NAME=PATTERN[,PATTERN...], got '{spec}'")
        groups.setdefault(name, []).extend(p for p in patterns.split(",") if p)
    for pattern in args.patterns:
        groups.setdefault(pattern, []).append(pattern)
    return groups


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("vcd", help="value change dump file")
    parser.add_argument("patterns", nargs="*", help="signal name prefixes or globs, one group each")
    parser.add_argument("--group", action="append", default=[], metavar="NAME=PATTERN[,PATTERN...]",
                        help="a named group of patterns (repeatable)")
    parser.add_argument("--scope", help="only signals under this scope (e.g. tb.dut); without patterns: one group")
    parser.add_argument("--macs", type=int, help="multiply-accumulates in the dump, for toggles per MAC")
    parser.add_argument("--start", type=int, help="count changes from this time on (VCD time units)")
    parser.add_argument("--stop", type=int, help="count changes up to this time")
    parser.add_argument("--per-signal", action="store_true", help="also list the toggles of every signal")
    parser.add_argument("--list", action="store_true", help="list the signals (name, width, code) and exit")
    args = parser.parse_intermixed_args()
    try:
        if args.list:
            with open(args.vcd, errors="replace") as f:
                for v in parse_header(f):
                    if not args.scope or v.name.startswith(args.scope.rstrip(".") + "."):
                        print(f"{v.name}\t{v.width}\t{v.code}")
            return
        groups = parse_groups(args)
        if not groups:
            if not args.scope:
                parser.error("give signal patterns, --group or --scope")
            groups = {args.scope: [args.scope.rstrip(".") + "."]}
        result = summarize(args.vcd, groups, args.scope, args.macs, args.start, args.stop, args.per_signal)
    except (OSError, VCDError) as error:
        sys.exit(f"toggles: {error}")
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
