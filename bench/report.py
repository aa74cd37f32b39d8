#!/usr/bin/python3
"""Turns the raw output of bench/run.sh into bench/results/*.json and
regenerates docs/benchmarks.md from bench/benchmarks.md.in.

Usage:
  report.py RAW_DIR RESULTS_DIR DOC   raw files -> JSON results -> doc
  report.py --doc RESULTS_DIR DOC     the doc again from the JSON alone

The run's parameters come from the BENCH_* variables bench/run.sh exports.
"""

import collections
import datetime
import json
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = os.path.join(HERE, "benchmarks.md.in")
NGINX = "/usr/sbin/nginx"


def command_output(argv):
    """First line a version command prints, on stdout or stderr."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True)
    except OSError as e:
        return "unavailable (%s)" % e.strerror
    text = (p.stdout + p.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def load_average(path="/proc/loadavg"):
    with open(path) as f:
        return " ".join(f.read().split()[:3])


def machine_info(raw_dir):
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc)
                    .strftime("%Y-%m-%d %H:%M"),
        "commit": os.environ["BENCH_COMMIT"],
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "kernel": os.uname().release,
        "nginx": command_output([NGINX, "-v"]),
        "wrk": command_output(["wrk", "-v"]),
        "valgrind": command_output(["valgrind", "--version"]),
        "load_average_before": load_average(
            os.path.join(raw_dir, "loadavg-before")),
        "load_average_after": load_average(),
    }


def params():
    env = os.environ
    return {
        "variants": env["BENCH_VARIANTS"].split(),
        "duration_s": int(env["BENCH_DURATION"]),
        "runs": int(env["BENCH_RUNS"]),
        "connections": int(env["BENCH_CONNECTIONS"]),
        "threads": int(env["BENCH_THREADS"]),
        "requests": int(env["BENCH_REQUESTS"]),
        "repeats": int(env["BENCH_REPEATS"]),
    }


def wrk_result(path):
    """The JSON line bench/wrk.lua printed, with requests/s added."""
    with open(path) as f:
        for line in f:
            if line.startswith("RESULT "):
                r = json.loads(line[len("RESULT "):])
                break
        else:
            sys.exit("report.py: no RESULT line in %s" % path)

    if r["errors"]["status"] or r["errors"]["connect"]:
        sys.exit("report.py: %s: failed requests %s; the variant limited "
                 "or refused traffic it should admit" % (path, r["errors"]))
    r["requests_per_s"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def metric_sum(text, name):
    """Sum of every sample of a Prometheus counter, whatever its labels."""
    total = 0
    for m in re.finditer(r"^%s(?:\{[^}]*\})? (\d+)$" % re.escape(name),
                         text, re.M):
        total += int(m.group(1))
    return total


def lease_counters(path):
    """Tollgate's counters after one wrk run (warm-up included)."""
    with open(path) as f:
        text = f.read()
    requests = metric_sum(text, "tollgate_requests_total")
    hits = metric_sum(text, "tollgate_l3_hits_total")
    misses = metric_sum(text, "tollgate_l3_misses_total")
    calls = metric_sum(text, "tollgate_redis_calls_total")
    return {
        "requests": requests,
        "l3_hits": hits,
        "l3_misses": misses,
        "redis_calls": calls,
        "l3_hit_rate": hits / (hits + misses) if hits + misses else None,
        "redis_calls_per_1000_requests":
            calls * 1000 / requests if requests else None,
    }


def throughput(raw_dir, p):
    out = {}
    for v in p["variants"]:
        runs = [wrk_result(os.path.join(raw_dir, "wrk-%s-%d.txt" % (v, n)))
                for n in range(1, p["runs"] + 1)]
        out[v] = {
            "runs": runs,
            "median_requests_per_s":
                statistics.median(r["requests_per_s"] for r in runs),
            "median_p50_us":
                statistics.median(r["latency_us"]["p50"] for r in runs),
            "median_p99_us":
                statistics.median(r["latency_us"]["p99"] for r in runs),
        }
        paths = [os.path.join(raw_dir, "metrics-%s-%d.txt" % (v, n))
                 for n in range(1, p["runs"] + 1)]
        if all(os.path.exists(x) for x in paths):
            out[v]["counters"] = [lease_counters(x) for x in paths]
    return out


def callgrind_total_ir(path):
    """Instructions executed in the whole run: callgrind's totals line."""
    with open(path) as f:
        for line in f:
            m = re.match(r"(?:totals|summary):\s+(\d+)", line)
            if m:
                return int(m.group(1))
    sys.exit("report.py: no totals in %s" % path)


def callgrind_costs(path):
    """Self Ir per function and inclusive Ir per (caller, callee) pair,
    by function name, from a callgrind profile.

    Only what this report needs of the format: "fn=" and "cfn=" set the
    current function and callee (names may be compressed to "(id)"), a
    cost line right after "calls=" is the inclusive cost of that call, and
    any other cost line is the current function's own.
    """
    names = {}
    self_ir = collections.Counter()
    call_ir = collections.Counter()
    fn = callee = None
    in_call = False

    def name(spec):
        m = re.match(r"\((\d+)\)(?: (.*))?$", spec.strip())
        if not m:
            return spec.strip()
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names[m.group(1)]

    with open(path) as f:
        for line in f:
            if line.startswith("fn="):
                fn = name(line[3:])
            elif line.startswith("cfn="):
                callee = name(line[4:])
            elif line.startswith("calls="):
                in_call = True
            elif line[:1] in "0123456789+-*":
                fields = line.split()
                ir = int(fields[1]) if len(fields) > 1 else 0
                if in_call:
                    call_ir[(fn, callee)] += ir
                    in_call = False
                else:
                    self_ir[fn] += ir
    return self_ir, call_ir


def tollgate_breakdown(idle_path, loaded_path, requests):
    """Where Tollgate's instructions go, per request: each module function
    nginx calls (inclusive), and the callees of the costliest one.  The
    idle profile is subtracted, as for the totals, so start-up work does
    not show as a fraction of an instruction per request."""
    self_ir, call_ir = callgrind_costs(loaded_path)
    idle_self_ir, idle_call_ir = callgrind_costs(idle_path)
    self_ir.subtract(idle_self_ir)
    call_ir.subtract(idle_call_ir)
    ours = ("ngx_http_tollgate_", "tg_")

    entries = collections.Counter()
    for (caller, callee), ir in call_ir.items():
        if callee.startswith(ours[0]) and not caller.startswith(ours):
            entries[callee] += ir
    entries = {fn: round(ir / requests, 1)
               for fn, ir in entries.most_common() if ir / requests >= 1}
    if not entries:
        return None

    top = next(iter(entries))
    callees = {callee: round(ir / requests, 1)
               for (caller, callee), ir in call_ir.most_common()
               if caller == top and ir / requests >= 1}
    callees["(its own code)"] = round(self_ir[top] / requests, 1)
    return {"entry_points": entries, "top": top, "top_callees": callees}


def instructions(raw_dir, p):
    out = {}
    for v in p["variants"]:
        reps = []
        for n in range(1, p["repeats"] + 1):
            idle = callgrind_total_ir(os.path.join(
                raw_dir, "callgrind-%s-0-%d.out" % (v, n)))
            loaded = callgrind_total_ir(os.path.join(
                raw_dir, "callgrind-%s-%d-%d.out" % (v, p["requests"], n)))
            reps.append({
                "idle_ir": idle,
                "loaded_ir": loaded,
                "ir_per_request": round((loaded - idle) / p["requests"], 1),
            })
        per_request = [r["ir_per_request"] for r in reps]
        out[v] = {
            "repeats": reps,
            "median_ir_per_request": statistics.median(per_request),
            "min_ir_per_request": min(per_request),
            "max_ir_per_request": max(per_request),
        }

    if "plain" in out:
        base = out["plain"]["median_ir_per_request"]
        for v in out:
            out[v]["added_ir_per_request"] = (
                out[v]["median_ir_per_request"] - base)
    for v in out:
        if v.startswith("tollgate"):
            out[v]["breakdown"] = tollgate_breakdown(
                os.path.join(raw_dir, "callgrind-%s-0-1.out" % v),
                os.path.join(raw_dir, "callgrind-%s-%d-1.out"
                             % (v, p["requests"])),
                p["requests"])
    return out


def write_json(results_dir, name, data):
    with open(os.path.join(results_dir, name + ".json"), "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def read_json(results_dir, name):
    with open(os.path.join(results_dir, name + ".json")) as f:
        return json.load(f)


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_table(m):
    return table(["what", "value"], [
        ("date (UTC)", m["date_utc"]),
        ("commit measured", m["commit"]),
        ("nproc", m["nproc"]),
        ("CPU model", m["cpu_model"]),
        ("kernel", m["kernel"]),
        ("nginx -v", m["nginx"]),
        ("wrk -v", m["wrk"]),
        ("valgrind", m["valgrind"]),
        ("load average before / after", "%s / %s" % (
            m["load_average_before"], m["load_average_after"])),
    ])


def throughput_table(t):
    base = t.get("plain", {}).get("median_requests_per_s")
    rows = []
    for v, r in t.items():
        rps = r["median_requests_per_s"]
        rows.append((
            "`%s`" % v,
            "{:,.0f}".format(rps),
            ", ".join("{:,.0f}".format(x["requests_per_s"])
                      for x in r["runs"]),
            "%.2f" % (r["median_p50_us"] / 1000),
            "%.2f" % (r["median_p99_us"] / 1000),
            "%+.1f %%" % ((rps / base - 1) * 100) if base else "n/a",
        ))
    return table(["variant", "requests/s (median)", "each run",
                  "p50 latency (ms)", "p99 latency (ms)", "vs plain"], rows)


def throughput_note(t):
    """How far apart the runs of one variant were: the noise floor."""
    spreads = []
    for r in t.values():
        rps = [x["requests_per_s"] for x in r["runs"]]
        spreads.append(max(rps) / min(rps) - 1)
    worst = max(spreads) * 100
    return ("In this run the fastest and slowest runs of one variant were "
            "up to {:.0f} % apart, so differences between variants smaller "
            "than that are noise.".format(worst))


def instructions_table(ins):
    rows = []
    for v, r in ins.items():
        added = r.get("added_ir_per_request")
        rows.append((
            "`%s`" % v,
            "{:,.0f}".format(r["median_ir_per_request"]),
            "{:,.0f} to {:,.0f}".format(r["min_ir_per_request"],
                                        r["max_ir_per_request"]),
            "{:+,.0f}".format(added) if added is not None else "n/a",
        ))
    return table(["variant", "instructions/request (median)",
                  "range over repeats", "added over plain"], rows)


def verdict(ins):
    """The target: Tollgate adds no more instructions than limit_req."""
    if not {"plain", "limit_req", "tollgate"} <= set(ins):
        return ("This run did not measure `plain`, `limit_req` and "
                "`tollgate` all three, so the target was not checked.")

    tg = ins["tollgate"]["added_ir_per_request"]
    lr = ins["limit_req"]["added_ir_per_request"]
    text = ("Tollgate adds **{:,.0f}** instructions per request over plain "
            "nginx; `limit_req` adds **{:,.0f}**. ".format(tg, lr))
    if tg <= lr:
        text += "The target (no more than `limit_req`) is **met**."
    else:
        text += ("The target (no more than `limit_req`) is **not met**: "
                 "Tollgate adds {:,.0f} more ({:.1f}x).".format(
                     tg - lr, tg / lr if lr > 0 else float("inf")))
    if "limit_req_app" in ins:
        text += (" Keyed by the same header as Tollgate, `limit_req` adds "
                 "{:,.0f}.".format(
                     ins["limit_req_app"]["added_ir_per_request"]))
    if "tollgate_redis" in ins:
        text += (" In distributed mode Tollgate adds {:,.0f} (see below for "
                 "what that figure includes).".format(
                     ins["tollgate_redis"]["added_ir_per_request"]))
    return text


def breakdown_text(ins):
    parts = []
    for v, r in ins.items():
        b = r.get("breakdown")
        if not b:
            continue
        parts.append("`%s`:" % v)
        parts.append(table(["module function called by nginx",
                            "instructions/request (inclusive)"],
                           [("`%s`" % fn, "{:,.0f}".format(ir))
                            for fn, ir in b["entry_points"].items()]))
        parts.append(table(["called by `%s`" % b["top"],
                            "instructions/request"],
                           [("`%s`" % fn if not fn.startswith("(") else fn,
                             "{:,.0f}".format(ir))
                            for fn, ir in b["top_callees"].items()]))
    if not parts:
        return "Tollgate was not measured in this run."
    return "\n\n".join(parts)


def lease_text(t):
    r = t.get("tollgate_redis")
    if not r or "counters" not in r:
        return "Distributed mode was not measured in this run."

    rows = []
    for n, c in enumerate(r["counters"], 1):
        rows.append((
            n,
            "{:,}".format(c["requests"]),
            "%.2f %%" % (c["l3_hit_rate"] * 100)
            if c["l3_hit_rate"] is not None else "n/a",
            "{:,} ({:.2f} per 1000 requests)".format(
                c["redis_calls"], c["redis_calls_per_1000_requests"])
            if c["redis_calls_per_1000_requests"] is not None else "n/a",
        ))
    return table(["wrk run", "requests decided", "L3 hit rate",
                  "Redis calls"], rows)


def render_doc(results_dir, doc):
    m = read_json(results_dir, "machine")
    p = read_json(results_dir, "params")
    t = read_json(results_dir, "throughput")
    ins = read_json(results_dir, "instructions")

    fill = {
        "MACHINE": machine_table(m),
        "THROUGHPUT": throughput_table(t),
        "THROUGHPUT_NOTE": throughput_note(t),
        "INSTRUCTIONS": instructions_table(ins),
        "VERDICT": verdict(ins),
        "BREAKDOWN": breakdown_text(ins),
        "LEASE": lease_text(t),
        "DURATION": p["duration_s"],
        "RUNS": p["runs"],
        "CONNECTIONS": p["connections"],
        "THREADS": p["threads"],
        "REQUESTS": p["requests"],
        "REPEATS": p["repeats"],
    }
    with open(TEMPLATE) as f:
        text = f.read()
    for name, value in fill.items():
        text = text.replace("@%s@" % name, str(value))

    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        sys.exit("report.py: unreplaced placeholders %s" % left)

    # Other generators own sections of the same page, between
    # "<!-- NAME: begin -->" and "<!-- NAME: end -->" (bench/distributed.py
    # does): they are carried over as they are, after ours.
    if os.path.exists(doc):
        with open(doc) as f:
            old = f.read()
        for m in re.finditer(r"<!-- ([^>]+?): begin -->.*?"
                             r"<!-- \1: end -->\n?", old, re.S):
            text = text.rstrip("\n") + "\n\n" + m.group(0)

    with open(doc, "w") as f:
        f.write(text)


def main(argv):
    if len(argv) == 4 and argv[1] == "--doc":
        render_doc(argv[2], argv[3])
        return 0
    if len(argv) != 4:
        sys.exit(__doc__)

    raw_dir, results_dir, doc = argv[1:]
    p = params()
    os.makedirs(results_dir, exist_ok=True)
    write_json(results_dir, "params", p)
    write_json(results_dir, "machine", machine_info(raw_dir))
    write_json(results_dir, "throughput", throughput(raw_dir, p))
    write_json(results_dir, "instructions", instructions(raw_dir, p))
    render_doc(results_dir, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
