"""Smoke test of the benchmark harness (`make bench-smoke`): bench/run.sh
runs the hit scenario once, briefly, for plain nginx, limit_req and
Tollgate, into a temporary directory, and what it writes is checked.
Not part of `make test`: it measures nothing worth keeping."""

import json
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ["plain", "limit_req", "tollgate"]
OTHER_SECTION = ("<!-- bench/other.py: begin -->\n## Kept\n\nfigures of "
                 "another generator\n<!-- bench/other.py: end -->\n")


def run_harness(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# old\n\n" + OTHER_SECTION)
    env = dict(os.environ,
               BENCH_SCENARIOS="hit", BENCH_VARIANTS=" ".join(VARIANTS),
               BENCH_RUNS="1", BENCH_DURATION="1", BENCH_REPEATS="1",
               BENCH_REQUESTS="300", BENCH_RESULTS=str(tmp_path / "results"),
               BENCH_DOC=str(doc), BENCH_IMG=str(tmp_path / "img"))
    done = subprocess.run([str(ROOT / "bench/run.sh")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return doc


def test_hit_scenario_writes_figures_doc_and_plots(tmp_path):
    doc = run_harness(tmp_path)
    hit = json.loads((tmp_path / "results/hit.json").read_text())

    assert hit["variants"] == VARIANTS
    for v in VARIANTS:
        t = hit["throughput"][v]
        assert len(t["runs"]) == 1
        assert t["median_requests_per_s"] > 100
        assert 0 < t["median_p50_us"] <= t["median_p99_us"]
        # nginx served every request: it cannot have spent no CPU, nor
        # more than the run's wall time on each of the two cores
        cpu = t["runs"][0]["server_cpu_us_per_request"]
        assert set(cpu) == {"nginx"}
        assert 0 < cpu["nginx"] < 2e6 / t["median_requests_per_s"]
        ins = hit["instructions"][v]
        assert ins["median_ir_per_request"] > 1000

    # a limiter costs instructions; plain is the floor they are added to
    assert hit["instructions"]["plain"]["added_ir_per_request"] == 0
    assert hit["instructions"]["tollgate"]["added_ir_per_request"] > 0
    entries = hit["instructions"]["tollgate"]["breakdown"]["entry_points"]
    assert "ngx_http_tollgate_handler" in entries

    text = doc.read_text()
    assert not re.search(r"@[A-Z_]+@", text)
    for v in VARIANTS:
        assert "| `%s` |" % v in text
    assert "![hit](img/bench-hit.png)" in text
    assert text.rstrip().endswith(OTHER_SECTION.rstrip())
    for png in ("bench-hit.png", "bench-instructions.png"):
        assert (tmp_path / "img" / png).read_bytes()[:4] == b"\x89PNG"

    history = json.loads((tmp_path / "results/history.json").read_text())
    assert history[-1]["commit"] == hit["commit"]
