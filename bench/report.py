#!/usr/bin/python3
"""Turns the raw output of bench/run.sh into bench/results/*.json, plots
docs/img/bench-*.png and regenerates docs/benchmarks.md from
bench/benchmarks.md.in.

Usage:
  report.py RAW_DIR RESULTS_DIR DOC IMG_DIR   raw files -> JSON -> doc
  report.py --doc RESULTS_DIR DOC IMG_DIR     the doc and plots again
                                              from the JSON alone

The run's parameters come from the BENCH_* variables bench/run.sh
exports; BENCH_MEASURED lists the scenarios it measured.  The JSON of a
scenario not measured this time is kept, and reported with its own date.
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
SCENARIOS = ["hit", "apps", "uploads", "gateways", "far"]
CALLGRIND_SCENARIOS = ("hit", "apps", "uploads")
DISTRIBUTED_JSON = os.path.join(HERE, "distributed.json")


def command_output(argv):
    """First line a version command prints, on stdout or stderr."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True)
    except OSError as e:
        return "unavailable (%s)" % e.strerror
    text = (p.stdout + p.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def package_version(name):
    p = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name],
                       capture_output=True, text=True)
    return p.stdout.strip() or "not installed"


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def l3_cache():
    path = "/sys/devices/system/cpu/cpu0/cache/index3/size"
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "not reported"


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
        "l3_cache": l3_cache(),
        "kernel": os.uname().release,
        "nginx": command_output([NGINX, "-v"]),
        "lua_module": "libnginx-mod-http-lua "
                      + package_version("libnginx-mod-http-lua"),
        "redis": command_output(["redis-server", "--version"]),
        "wrk": command_output(["wrk", "-v"]),
        "valgrind": command_output(["valgrind", "--version"]),
        "load_average_before": load_average(
            os.path.join(raw_dir, "loadavg-before")),
        "load_average_after": load_average(),
    }


def params():
    env = os.environ
    return {name.lower(): (int(env["BENCH_" + name])
                           if env["BENCH_" + name].isdigit()
                           else env["BENCH_" + name])
            for name in ("DURATION", "RUNS", "RUNS_GATEWAYS", "CONNECTIONS",
                         "THREADS", "REQUESTS", "REPEATS", "REPEATS_LONG",
                         "APPS", "APPS_ZONE", "APPS_WARM", "UPLOAD_BYTES",
                         "UPLOAD_REQUESTS", "GATEWAYS", "FAR_MS")}


def size_bytes(text):
    """An nginx size ("4m", "512k", "1024") in bytes."""
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", str(text))
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(m.group(1)) * scale[m.group(2).lower()]


# raw files -------------------------------------------------------------

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
    """Sum of every sample of a Prometheus metric, whatever its labels."""
    total = 0
    for m in re.finditer(r"^%s(?:\{[^}]*\})? (\d+)$" % re.escape(name),
                         text, re.M):
        total += int(m.group(1))
    return total


def script_calls(path):
    """Script calls Redis ran (EVALSHA and EVAL in INFO commandstats)."""
    with open(path) as f:
        text = f.read()
    return sum(int(m.group(1)) for m in re.finditer(
        r"^cmdstat_(?:evalsha|eval|evalsha_ro|eval_ro):calls=(\d+)",
        text, re.M))


def counters(raw, v, run, instances, wrk_requests, zone_bytes):
    """Over the life of one set of gateways (warm-up included): requests,
    lease hits and misses, Redis calls, and how full the zone got."""
    metrics = [os.path.join(raw, "metrics-%s-%d-%d.txt" % (v, run, i))
               for i in range(1, instances + 1)]
    redis = os.path.join(raw, "redis-%s-%d.txt" % (v, run))
    c = {}

    if all(os.path.exists(x) for x in metrics):
        texts = []
        for x in metrics:
            with open(x) as f:
                texts.append(f.read())

        def s(name):
            return sum(metric_sum(t, name) for t in texts)

        # decisions timed: tollgate_requests_total has series only for
        # the applications still in the zone, which undercounts once it
        # has evicted
        c["requests"] = (s("tollgate_check_duration_seconds_count")
                         or s("tollgate_requests_total"))
        c["l3_hits"] = s("tollgate_l3_hits_total")
        c["l3_misses"] = s("tollgate_l3_misses_total")
        if v.endswith("_redis"):
            c["redis_calls"] = s("tollgate_redis_calls_total")
        c["zone_apps"] = s("tollgate_zone_apps")
        c["zone_evictions"] = s("tollgate_zone_evictions_total")
        c["fail_open"] = s("tollgate_fail_open_total")
        # full: it evicted, or it had to admit without a decision
        if (c["zone_evictions"] or c["fail_open"]) and c["zone_apps"]:
            c["zone_bytes_per_app"] = round(zone_bytes
                                            / (c["zone_apps"] / instances))
        looked = c["l3_hits"] + c["l3_misses"]
        if v.endswith("_redis"):
            c["l3_hit_rate"] = c["l3_hits"] / looked if looked else None
    elif os.path.exists(redis):
        c["requests"] = wrk_requests
        c["redis_calls"] = script_calls(redis)

    if c.get("redis_calls") is not None and c.get("requests"):
        c["redis_calls_per_1000_requests"] = round(
            c["redis_calls"] * 1000 / c["requests"], 3)
    return c


def server_cpu(raw, v, run, requests):
    """Microseconds of CPU the gateways' nginx and Redis spent per request
    of the measured run, wrk aside; None for a run recorded without."""
    path = os.path.join(raw, "cpu-%s-%d.txt" % (v, run))
    if not os.path.exists(path) or not requests:
        return None
    ns = {}
    with open(path) as f:
        for line in f:
            name, value = line.split()
            ns[name] = int(value)
    return {name: value / 1000 / requests for name, value in ns.items()}


def throughput(raw, v, run_count, instances, zone_bytes):
    runs = []
    for n in range(1, run_count + 1):
        parts = [wrk_result(os.path.join(raw, "wrkrun-%s-%d-%d.txt"
                                         % (v, n, i)))
                 for i in range(1, instances + 1)]
        warm = [wrk_result(os.path.join(raw, "wrkwarm-%s-%d-%d.txt"
                                        % (v, n, i)))
                for i in range(1, instances + 1)]
        run = {
            "requests_per_s": sum(x["requests_per_s"] for x in parts),
            # with several gateways, the slowest one's latency
            "p50_us": max(x["latency_us"]["p50"] for x in parts),
            "p99_us": max(x["latency_us"]["p99"] for x in parts),
            "wrk": parts,
        }
        c = counters(raw, v, n, instances,
                     sum(x["requests"] for x in parts + warm), zone_bytes)
        if c:
            run["counters"] = c
        cpu = server_cpu(raw, v, n, sum(x["requests"] for x in parts))
        if cpu:
            run["server_cpu_us_per_request"] = cpu
        runs.append(run)

    out = {
        "runs": runs,
        "median_requests_per_s":
            statistics.median(r["requests_per_s"] for r in runs),
        "min_requests_per_s": min(r["requests_per_s"] for r in runs),
        "max_requests_per_s": max(r["requests_per_s"] for r in runs),
        "median_p50_us": statistics.median(r["p50_us"] for r in runs),
        "median_p99_us": statistics.median(r["p99_us"] for r in runs),
    }
    cpu = [r["server_cpu_us_per_request"] for r in runs
           if "server_cpu_us_per_request" in r]
    if cpu:
        out["median_server_cpu_us_per_request"] = statistics.median(
            sum(x.values()) for x in cpu)
        out["median_redis_cpu_us_per_request"] = statistics.median(
            x.get("redis", 0) for x in cpu)
    for key in ("redis_calls_per_1000_requests", "l3_hit_rate",
                "zone_bytes_per_app"):
        values = [r["counters"][key] for r in runs
                  if r.get("counters", {}).get(key) is not None]
        if values:
            out["median_" + key] = statistics.median(values)
    return out


def callgrind_total_ir(path):
    """Instructions executed in the whole run: callgrind's totals line."""
    with open(path) as f:
        for line in f:
            m = re.match(r"(?:totals|summary):\s+(\d+)", line)
            if m:
                return int(m.group(1))
    sys.exit("report.py: no totals in %s" % path)


_COSTS = {}


def callgrind_costs(path):
    """callgrind_parse(path), read once per profile (the apps scenario's
    are large); each caller gets copies it may change."""
    if path not in _COSTS:
        _COSTS[path] = callgrind_parse(path)
    self_ir, call_ir = _COSTS[path]
    return collections.Counter(self_ir), collections.Counter(call_ir)


def callgrind_parse(path):
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


# glibc's allocator, by the names callgrind gives its functions
MALLOC_FUNCTIONS = re.compile(
    r"^(?:_int_|__libc_|_mid_)?(?:malloc|free|calloc|realloc|memalign)\b"
    r"|^(?:unlink_chunk|malloc_consolidate|alloc_perturb|free_perturb"
    r"|tcache_|sysmalloc|systrim)")


def malloc_ir(path):
    """Instructions run inside malloc and free (and their kin): how many
    a request costs there depends on where earlier allocations left free
    chunks, not only on the code measured."""
    self_ir, _ = callgrind_costs(path)
    return sum(ir for fn, ir in self_ir.items() if MALLOC_FUNCTIONS.match(fn))


def tollgate_breakdown(base_path, loaded_path, requests):
    """Where Tollgate's instructions go, per request: each module function
    nginx calls (inclusive), and the callees of the costliest one.  The
    base profile is subtracted, as for the totals, so start-up work does
    not show as a fraction of an instruction per request."""
    self_ir, call_ir = callgrind_costs(loaded_path)
    base_self_ir, base_call_ir = callgrind_costs(base_path)
    self_ir.subtract(base_self_ir)
    call_ir.subtract(base_call_ir)
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


def instructions(raw, v, repeats, base, counted):
    reps = []
    for n in range(1, repeats + 1):
        paths = [os.path.join(raw, "callgrind-%s-%d-%d.out" % (v, c, n))
                 for c in (base, base + counted)]
        rep = {
            "base_ir": callgrind_total_ir(paths[0]),
            "loaded_ir": callgrind_total_ir(paths[1]),
        }
        rep["ir_per_request"] = round(
            (rep["loaded_ir"] - rep["base_ir"]) / counted, 1)
        rep["malloc_ir_per_request"] = round(
            (malloc_ir(paths[1]) - malloc_ir(paths[0])) / counted, 1)
        if os.path.exists(paths[1] + ".redis"):
            rep["redis_ir_per_request"] = round(
                (callgrind_total_ir(paths[1] + ".redis")
                 - callgrind_total_ir(paths[0] + ".redis")) / counted, 1)
        reps.append(rep)

    per_request = [r["ir_per_request"] for r in reps]
    out = {
        "repeats": reps,
        "median_ir_per_request": statistics.median(per_request),
        "median_malloc_ir_per_request": statistics.median(
            r["malloc_ir_per_request"] for r in reps),
        "min_ir_per_request": min(per_request),
        "max_ir_per_request": max(per_request),
    }
    if "redis_ir_per_request" in reps[0]:
        out["median_redis_ir_per_request"] = statistics.median(
            r["redis_ir_per_request"] for r in reps)
    if v.startswith("tollgate"):
        out["breakdown"] = tollgate_breakdown(
            os.path.join(raw, "callgrind-%s-%d-1.out" % (v, base)),
            os.path.join(raw, "callgrind-%s-%d-1.out" % (v, base + counted)),
            counted)
    return out


def read_words(raw, name, default):
    path = os.path.join(raw, name)
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return f.read().split()


def read_int(raw, name, default):
    return int(read_words(raw, name, [default])[0])


def scenario_result(raw_dir, scenario, p):
    raw = os.path.join(raw_dir, scenario)
    variants = read_words(raw, "variants", [])
    instances = p["gateways"] if scenario == "gateways" else 1
    zone_bytes = size_bytes(p["apps_zone"] if scenario == "apps" else "1m")
    runs = read_int(raw, "runs", p["runs"])
    out = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc)
                    .strftime("%Y-%m-%d %H:%M"),
        "commit": os.environ["BENCH_COMMIT"],
        "variants": variants,
        "instances": instances,
        "zone_bytes": zone_bytes,
        "runs": runs,
        "throughput": {v: throughput(raw, v, runs, instances, zone_bytes)
                       for v in variants},
    }

    if scenario in CALLGRIND_SCENARIOS:
        base = read_int(raw, "callgrind-base",
                        p["apps_warm"] if scenario == "apps" else 0)
        counted = (p["upload_requests"] if scenario == "uploads"
                   else p["requests"])
        out["callgrind_base_requests"] = base
        out["callgrind_requests"] = counted
        ins = {v: instructions(raw, v, read_int(raw, "callgrind-repeats",
                                                p["repeats"]), base, counted)
               for v in read_words(raw, "callgrind-variants", variants)}
        if "plain" in ins:
            floor = ins["plain"]["median_ir_per_request"]
            floor_malloc = ins["plain"]["median_malloc_ir_per_request"]
            for r in ins.values():
                r["added_ir_per_request"] = round(
                    r["median_ir_per_request"] - floor, 1)
                # the same with each side's malloc and free left out
                r["added_aside_malloc_ir_per_request"] = round(
                    r["added_ir_per_request"]
                    - (r["median_malloc_ir_per_request"] - floor_malloc), 1)
        out["instructions"] = ins
    return out


# JSON ------------------------------------------------------------------

def write_json(results_dir, name, data):
    with open(os.path.join(results_dir, name + ".json"), "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def read_json(results_dir, name):
    path = os.path.join(results_dir, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def record_history(results_dir, hit):
    """Keeps one line per commit measured of what Tollgate adds on the hit
    path, so that a change to it is seen before and after."""
    ins = hit.get("instructions", {})
    if not {"plain", "tollgate"} <= set(ins):
        return
    history = read_json(results_dir, "history") or []
    entry = {
        "commit": hit["commit"],
        "date_utc": hit["date_utc"],
        "added_ir_per_request": {
            v: ins[v]["added_ir_per_request"] for v in ins},
        "added_aside_malloc_ir_per_request": {
            v: ins[v].get("added_aside_malloc_ir_per_request") for v in ins},
        "handler_ir_per_request": {
            v: ins[v]["breakdown"]["entry_points"].get(
                "ngx_http_tollgate_handler")
            for v in ins if ins[v].get("breakdown")},
    }
    history = [h for h in history if h["commit"] != entry["commit"]]
    history.append(entry)
    write_json(results_dir, "history", history)


# the doc ---------------------------------------------------------------

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
        ("L3 cache (cpu0)", m.get("l3_cache", "not recorded")),
        ("kernel", m["kernel"]),
        ("nginx -v", m["nginx"]),
        ("Lua module", m.get("lua_module", "not recorded")),
        ("redis-server", m.get("redis", "not recorded")),
        ("wrk -v", m["wrk"]),
        ("valgrind", m["valgrind"]),
        ("load average before / after", "%s / %s" % (
            m["load_average_before"], m["load_average_after"])),
    ])


def fmt(value, spec="{:,.0f}"):
    return "n/a" if value is None else spec.format(value)


def throughput_table(res):
    t = res["throughput"]
    base = t.get("plain", {}).get("median_requests_per_s")
    rows = []
    for v, r in t.items():
        rps = r["median_requests_per_s"]
        rows.append((
            "`%s`" % v,
            fmt(rps),
            ", ".join(fmt(x["requests_per_s"]) for x in r["runs"]),
            "%.2f" % (r["median_p50_us"] / 1000),
            "%.2f" % (r["median_p99_us"] / 1000),
            "%.1f %%" % (rps / base * 100) if base else "n/a",
            fmt(r.get("median_redis_calls_per_1000_requests"), "{:,.2f}"),
            fmt(r.get("median_l3_hit_rate"), "{:.2%}"),
            fmt(r.get("median_server_cpu_us_per_request"), "{:,.1f}"),
        ))
    return table(["variant", "requests/s (median)", "each run",
                  "p50 (ms)", "p99 (ms)", "of plain", "Redis calls per "
                  "1000 requests", "L3 hit rate", "server CPU per request "
                  "(µs)"], rows)


def spread_note(res):
    """How far apart the runs of one variant were: the noise floor."""
    spreads = []
    for r in res["throughput"].values():
        spreads.append(r["max_requests_per_s"] / r["min_requests_per_s"] - 1)
    return ("The fastest and slowest runs of one variant were up to "
            "{:.0f} % apart.".format(max(spreads) * 100))


def instructions_table(res):
    rows = []
    for v in res["variants"]:
        r = res["instructions"].get(v)
        if r is None:
            rows.append(("`%s`" % v, "not measured", "", "", ""))
            continue
        added = r.get("added_ir_per_request")
        aside = r.get("added_aside_malloc_ir_per_request")
        rows.append((
            "`%s`" % v,
            fmt(r["median_ir_per_request"]),
            "{:,.0f} to {:,.0f}".format(r["min_ir_per_request"],
                                        r["max_ir_per_request"]),
            "{:+,.0f}".format(added) if added is not None else "n/a",
            fmt(r.get("median_malloc_ir_per_request")),
            "{:+,.0f}".format(aside) if aside is not None else "n/a",
            fmt(r.get("median_redis_ir_per_request")),
        ))
    return table(["variant", "nginx instructions/request (median)",
                  "range over repeats", "added over plain",
                  "of the request's, in malloc and free",
                  "added, malloc and free aside",
                  "Redis instructions/request"], rows)


def zone_table(res):
    rows = []
    for v, r in res["throughput"].items():
        c = r["runs"][-1].get("counters", {})
        if "zone_apps" not in c:
            continue
        rows.append(("`%s`" % v, fmt(c["zone_apps"]),
                     fmt(c["zone_evictions"]), fmt(c.get("fail_open")),
                     fmt(r.get("median_zone_bytes_per_app"))))
    if not rows:
        return "Tollgate was not measured in this scenario."
    return table(["variant", "applications in the zone at the end",
                  "evictions", "admitted without a decision (zone full)",
                  "zone bytes per application held"], rows)


def breakdown_text(res):
    parts = []
    for v, r in res.get("instructions", {}).items():
        b = r.get("breakdown")
        if not b:
            continue
        parts.append("`%s`:" % v)
        parts.append(table(["module function called by nginx",
                            "instructions/request (inclusive)"],
                           [("`%s`" % fn, fmt(ir))
                            for fn, ir in b["entry_points"].items()]))
        parts.append(table(["called by `%s`" % b["top"],
                            "instructions/request"],
                           [("`%s`" % fn if not fn.startswith("(") else fn,
                             fmt(ir))
                            for fn, ir in b["top_callees"].items()]))
    return "\n\n".join(parts)


def history_table(results_dir):
    history = read_json(results_dir, "history") or []
    rows = []
    for h in history:
        a = h["added_ir_per_request"]
        aside = h.get("added_aside_malloc_ir_per_request", {})
        rows.append((h["commit"], h["date_utc"],
                     fmt(a.get("tollgate"), "{:+,.0f}"),
                     fmt(h["handler_ir_per_request"].get("tollgate")),
                     fmt(a.get("tollgate_redis"), "{:+,.0f}"),
                     fmt(aside.get("tollgate_redis"), "{:+,.0f}"),
                     fmt(a.get("limit_req"), "{:+,.0f}")))
    return table(["commit", "measured (UTC)", "`tollgate` added",
                  "its request handler (inclusive)", "`tollgate_redis` "
                  "added", "the same, malloc and free aside",
                  "`limit_req` added"], rows)


def ratio(res, a, b):
    t = res["throughput"] if res else {}
    if a not in t or b not in t:
        return None
    return t[a]["median_requests_per_s"] / t[b]["median_requests_per_s"]


def cpu_ratio(res, a, b):
    """How many times b's server CPU per request a's was, if measured."""
    t = res["throughput"] if res else {}
    key = "median_server_cpu_us_per_request"
    if key not in t.get(a, {}) or key not in t.get(b, {}):
        return None
    return t[a][key] / t[b][key]


def spread(res, *variants):
    """The widest spread between fastest and slowest run of variants."""
    t = res["throughput"]
    return max(t[v]["max_requests_per_s"] / t[v]["min_requests_per_s"] - 1
               for v in variants)


def met(ok):
    return "met" if ok else "**not met**"


def ratio_verdict(res, a, b, floor):
    """Whether a's throughput is at least floor times b's, and whether the
    margin either way is smaller than the noise between runs."""
    r = ratio(res, a, b)
    noise = spread(res, a, b)
    text = met(r >= floor)
    if abs(r - floor) / floor < noise:
        text += (" (the margin is within the runs' spread of {:.0f} %: "
                 "noise)".format(noise * 100))
    return r, text


def targets(results, steady):
    """One line per target of issue 7, from this run's figures."""
    rows = []
    hit = results.get("hit") or {}
    ins = hit.get("instructions", {})

    # met only if it holds both as measured and with malloc and free left
    # out: a request's allocator cost moves with the heap's layout, and a
    # layout that happens to favour one variant is no merit of its code
    def added(v):
        return max(ins[v]["added_ir_per_request"],
                   ins[v].get("added_aside_malloc_ir_per_request",
                              ins[v]["added_ir_per_request"]))

    def both(v):
        return "{:+,.0f} ({:+,.0f} malloc aside)".format(
            ins[v]["added_ir_per_request"],
            ins[v].get("added_aside_malloc_ir_per_request",
                       ins[v]["added_ir_per_request"]))

    if {"tollgate", "limit_req", "lua_dict"} <= set(ins):
        tg, lr = added("tollgate"), added("limit_req")
        text = "{} vs `limit_req` {} and Lua {:+,.0f}".format(
            both("tollgate"), both("limit_req"),
            ins["lua_dict"]["added_ir_per_request"])
        if tg > lr:
            text += " ({:,.0f} over)".format(tg - lr)
        rows.append(("instructions added per request (standalone) no more "
                     "than `limit_req`'s, well under the Lua limiter's",
                     text, met(tg <= lr)))
    if "tollgate_redis" in ins and "limit_req" in ins:
        tg, lr = added("tollgate_redis"), added("limit_req")
        text = "{} vs {}".format(both("tollgate_redis"), both("limit_req"))
        if tg > lr:
            text += " ({:,.0f} over)".format(tg - lr)
        rows.append(("the same in distributed mode", text, met(tg <= lr)))

    for v in ("tollgate", "tollgate_redis"):
        if ratio(hit, v, "plain") is not None:
            r, text = ratio_verdict(hit, v, "plain", 0.9)
            rows.append(("`%s` throughput at least 90 %% of plain on the "
                         "hit path" % v, "%.1f %%" % (r * 100), text))
    gateways = results.get("gateways")
    if ratio(gateways, "tollgate_redis", "lua_redis") is not None:
        r, text = ratio_verdict(gateways, "tollgate_redis", "lua_redis", 3)
        bound = ratio(gateways, "plain", "lua_redis")
        if bound is not None and bound < 3:
            # no limiter is faster than no limiter: plain is the ceiling
            text += ("; plain nginx itself reached %.2fx in this run, the "
                     "most any limiter can" % bound)
        cpu = cpu_ratio(gateways, "lua_redis", "tollgate_redis")
        if cpu is not None:
            # told apart from the verdict: it is not the target's measure
            text += ("; apart from wrk, the servers spent %.1fx as much "
                     "CPU per request on the per-request Redis design"
                     % cpu)
        rows.append(("at least 3 times the per-request Redis design, with "
                     "three gateways", "%.2fx" % r, text))

    for run in (steady or {}).get("runs", []):
        if run["target_rate"] != 5000:
            continue
        horizon = run.get("horizon", "200ms")
        rows.append(("at most 1 Redis call per 1000 requests at a steady "
                     "5000 requests/s, horizon %s" % horizon,
                     "%.2f" % run["calls_per_1000"],
                     met(run["calls_per_1000"] <= 1)))
        rows.append(("at least 99 %% L3 hits at steady load, horizon %s"
                     % horizon, "%.2f %%" % (100 * run["hit_rate"]),
                     met(run["hit_rate"] >= 0.99)))

    apps = (results.get("apps") or {}).get("throughput", {})
    for v in ("tollgate", "tollgate_redis"):
        b = apps.get(v, {}).get("median_zone_bytes_per_app")
        if b is not None:
            rows.append(("`%s`: at most 256 bytes of shared memory per "
                         "application" % v, "%d bytes" % b, met(b <= 256)))
    if not rows:
        return "This run measured none of the figures the targets need."
    return table(["target", "measured", "verdict"], rows)


def plot(results, img_dir):
    """One PNG per scenario (requests/s with the runs' range, p99), and
    one of the instructions added on the hit path.  Returns the names."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(img_dir, exist_ok=True)
    made = {}
    for s, res in results.items():
        t = res["throughput"]
        names = list(t)
        med = [t[v]["median_requests_per_s"] for v in names]
        low = [m - t[v]["min_requests_per_s"] for m, v in zip(med, names)]
        high = [t[v]["max_requests_per_s"] - m for m, v in zip(med, names)]
        p99 = [t[v]["median_p99_us"] / 1000 for v in names]

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
        ax1.bar(names, med, yerr=[low, high], capsize=4, color="#4878a8")
        ax1.set_ylabel("requests/s (median, range of runs)")
        ax2.bar(names, p99, color="#c07040")
        ax2.set_ylabel("p99 latency (ms, median of runs)")
        for ax in (ax1, ax2):
            ax.tick_params(axis="x", rotation=30, labelsize=8)
        fig.suptitle("scenario %s" % s)
        fig.tight_layout()
        name = "bench-%s.png" % s
        fig.savefig(os.path.join(img_dir, name), dpi=80)
        plt.close(fig)
        made[s] = name

    ins = (results.get("hit") or {}).get("instructions", {})
    added = {v: r["added_ir_per_request"] for v, r in ins.items()
             if r.get("added_ir_per_request") is not None and v != "plain"}
    if added:
        fig, ax = plt.subplots(figsize=(8, 3.6))
        ax.barh(list(added), list(added.values()), color="#4878a8")
        ax.set_xscale("log")
        ax.set_xlabel("instructions added per request over plain nginx "
                      "(callgrind, log scale)")
        fig.tight_layout()
        fig.savefig(os.path.join(img_dir, "bench-instructions.png"), dpi=80)
        plt.close(fig)
        made["instructions"] = "bench-instructions.png"
    return made


def redis_bound_text(res):
    """What one Redis core allows each Redis variant, whatever the number
    of gateways: the part of the server CPU that Redis spent."""
    lines = []
    for v, r in res["throughput"].items():
        us = r.get("median_redis_cpu_us_per_request")
        if not us:
            continue
        lines.append("- `%s`: Redis ran %s µs per request, so one Redis "
                     "core serves at most about %s requests/s in all, "
                     "however many gateways share it" % (
                         v, fmt(us, "{:,.2f}"),
                         fmt(float("%.2g" % (1e6 / us)), "{:,.0f}")))
    if not lines:
        return ""
    return ("Of the server CPU per request, Redis's own share (median of "
            "the runs):\n\n" + "\n".join(lines) + ".")


def scenario_text(s, res, images):
    if res is None:
        return "Not measured yet: `BENCH_SCENARIOS=%s make bench`." % s
    parts = ["Measured %s (UTC) at commit %s." % (res["date_utc"],
                                                  res["commit"]),
             throughput_table(res), spread_note(res)]
    if s in images:
        parts.append("![%s](img/%s)" % (s, images[s]))
    if res.get("instructions"):
        parts.append("Instructions per request under callgrind: %s "
                     "requests counted%s." % (
                         fmt(res["callgrind_requests"]),
                         ", after %s not counted" %
                         fmt(res["callgrind_base_requests"])
                         if res["callgrind_base_requests"] else ""))
        parts.append(instructions_table(res))
    if s == "apps":
        parts.append(zone_table(res))
    if s == "gateways" and redis_bound_text(res):
        parts.append(redis_bound_text(res))
    return "\n\n".join(parts)


def render_doc(results_dir, doc, img_dir):
    m = read_json(results_dir, "machine")
    p = read_json(results_dir, "params")
    results = {s: read_json(results_dir, s) for s in SCENARIOS}
    results = {s: r for s, r in results.items() if r is not None}
    steady = None
    if os.path.exists(DISTRIBUTED_JSON):
        with open(DISTRIBUTED_JSON) as f:
            steady = json.load(f)
    images = plot(results, img_dir)

    fill = {
        "MACHINE": machine_table(m),
        "TARGETS": targets(results, steady),
        "BREAKDOWN": breakdown_text(results.get("hit") or {})
                     or "Tollgate was not measured on the hit path.",
        "HISTORY": history_table(results_dir),
        "INSTRUCTIONS_PLOT": "![instructions](img/%s)"
                             % images["instructions"]
                             if "instructions" in images else "",
    }
    for s in SCENARIOS:
        fill["SCENARIO_" + s.upper()] = scenario_text(s, results.get(s),
                                                      images)
    for name, value in p.items():
        fill[name.upper()] = value
    # a scenario kept from an earlier run keeps the run count it had
    fill["RUNS_GATEWAYS"] = (results.get("gateways") or {}).get(
        "runs", p.get("runs_gateways", p["runs"]))

    with open(TEMPLATE) as f:
        text = f.read()
    for name, value in fill.items():
        text = text.replace("@%s@" % name, str(value))

    left = re.findall(r"@[A-Z_0-9]+@", text)
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
    if len(argv) == 5 and argv[1] == "--doc":
        render_doc(argv[2], argv[3], argv[4])
        return 0
    if len(argv) != 5:
        sys.exit(__doc__)

    raw_dir, results_dir, doc, img_dir = argv[1:]
    p = params()
    os.makedirs(results_dir, exist_ok=True)
    write_json(results_dir, "params", p)
    write_json(results_dir, "machine", machine_info(raw_dir))
    for s in os.environ["BENCH_MEASURED"].split():
        res = scenario_result(raw_dir, s, p)
        write_json(results_dir, s, res)
        if s == "hit":
            record_history(results_dir, res)
    render_doc(results_dir, doc, img_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
