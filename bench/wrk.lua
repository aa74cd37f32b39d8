-- wrk script of bench/run.sh: every variant gets the same request, with
-- the application id that only Tollgate reads, and the summary is printed
-- as one JSON line (prefixed "RESULT ") for the report to parse.

wrk.headers["X-App-Id"] = "bench"

function done(summary, latency, requests)
    local e = summary.errors

    io.write(string.format(
        'RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
        '"errors": {"connect": %d, "read": %d, "write": %d, ' ..
        '"status": %d, "timeout": %d}, ' ..
        '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, ' ..
        '"p99": %d, "max": %d}}\n',
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency.mean, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency.max))
end
