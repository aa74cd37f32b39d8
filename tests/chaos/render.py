#!/usr/bin/python3
"""Renders the figures of a chaos run (the JSON files the tests write,
build/chaos/*.json) as the table of docs/reliability.md.

    render.py [--results DIR] [--write FILE]

Without --write the table is printed; with it, the part of FILE between
the two marker lines is replaced, the rest kept.
"""

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BEGIN = "<!-- chaos-table: begin (tests/chaos/render.py) -->"
END = "<!-- chaos-table: end -->"

# the order of the table; a scenario not run shows as such
ORDER = ("redis_killed", "redis_frozen", "redis_partitioned", "redis_slow",
         "cluster_failover", "gateway_killed", "override")


def seconds(value):
    return "—" if value is None else f"{value:.2f} s"


def over_admission(data):
    over = data.get("over_admission_tokens")
    if over is None:
        return "—"
    allowance = data.get("allowance_tokens")
    return f"{over:+d} tokens (of {allowance})"


def table(results):
    rows = ["| scenario | outcome | time to detect | time to recover | "
            "requests answered | 5xx | over-admission |",
            "|---|---|---|---|---|---|---|"]
    notes = []
    for name in ORDER:
        data = results.get(name)
        if data is None:
            rows.append(f"| {name} | not run | | | | | |")
            continue
        rows.append(
            f"| {data['scenario']} | {data['outcome']} | "
            f"{seconds(data.get('detect_s'))} | "
            f"{seconds(data.get('recover_s'))} | "
            f"{data.get('answered', '—')} | "
            f"{data.get('errors_5xx', '—')} | {over_admission(data)} |")
        for note in data.get("notes", []):
            notes.append(f"- {data['scenario']}: {note}.")

    ran = [results[n] for n in ORDER if n in results]
    commits = sorted({d.get("commit", "?") for d in ran})
    cpus = sorted({str(d.get("cpus", "?")) for d in ran})
    loads = ", ".join(f"{d['load_1m']:.1f}" for d in ran if "load_1m" in d)
    footer = ["", f"Commit {', '.join(commits)}, {'/'.join(cpus)} CPUs; "
              f"1-minute load average after each scenario: {loads}."]
    return "\n".join(rows + footer + [""] + notes) + "\n"


def load(results_dir):
    found = {}
    for path in sorted(results_dir.glob("*.json")):
        found[path.stem] = json.loads(path.read_text())
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=REPO / "build/chaos")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()

    results = load(args.results)
    if not results:
        print(f"render.py: no results in {args.results}", file=sys.stderr)
        return 1
    text = table(results)

    if args.write is None:
        sys.stdout.write(text)
        return 0

    doc = args.write.read_text()
    head, sep, rest = doc.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        print(f"render.py: {args.write} lacks the marker lines",
              file=sys.stderr)
        return 1
    args.write.write_text(f"{head}{BEGIN}\n{text}{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
