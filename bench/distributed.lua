-- wrk script of bench/distributed.py: one application, a steady rate.
-- Each connection waits PAUSE_MS (the first script argument) between a
-- reply and its next request, so the rate is about connections x 1000 /
-- (PAUSE_MS + latency); the summary is one JSON line prefixed "RESULT ".

local pause_ms = 10

function init(args)
    pause_ms = tonumber(args[1]) or pause_ms
end

wrk.headers["X-App-Id"] = "bench"

function delay()
    return pause_ms
end

function done(summary, latency, requests)
    local e = summary.errors

    io.write(string.format(
        'RESULT {"requests": %d, "duration_us": %d, ' ..
        '"errors": %d, "non_2xx": %d, ' ..
        '"latency_us": {"p50": %d, "p99": %d, "max": %d}}\n',
        summary.requests, summary.duration,
        e.connect + e.read + e.write + e.timeout, e.status,
        latency:percentile(50), latency:percentile(99), latency.max))
end
