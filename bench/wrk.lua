-- wrk script of bench/run.sh: every variant gets the same request, with
-- the application id that only Tollgate and the Lua peers read, and the
-- summary is printed as one JSON line (prefixed "RESULT ") for the
-- report to parse.
--
-- Arguments after "--": none for a GET, or "upload BYTES" for a PUT of
-- BYTES bytes (its Content-Length is what Tollgate charges).

wrk.headers["X-App-Id"] = "bench"

function init(args)
    if args[1] == "upload" then
        wrk.method = "PUT"
        wrk.body = string.rep("x", tonumber(args[2]))
    end
end

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
