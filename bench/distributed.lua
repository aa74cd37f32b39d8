-- wrk script of bench/distributed.py: one application at a steady rate.
-- All connections of a thread take their turns from one schedule, a
-- request every 1000 / RATE ms (RATE, the first script argument, is per
-- wrk thread), so the rate holds whatever the reply time, as long as
-- the connections are enough to carry it.  A schedule more than 100 ms
-- behind starts again from now rather than firing the backlog at once.
-- The summary is one JSON line prefixed "RESULT ".

local ffi = require("ffi")

ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } tg_timespec_t;
int clock_gettime(int clock_id, tg_timespec_t *tp);
]]

local CLOCK_MONOTONIC = 1
local ts = ffi.new("tg_timespec_t")
local interval_ms = 1
local next_ms = nil

local function now_ms()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

function init(args)
    interval_ms = 1000 / (tonumber(args[1]) or 1000)
end

wrk.headers["X-App-Id"] = "bench"

function delay()
    local now = now_ms()

    if next_ms == nil or next_ms < now - 100 then
        next_ms = now
    end

    next_ms = next_ms + interval_ms

    -- wrk waits whole milliseconds: the schedule itself stays exact
    return math.max(0, math.floor(next_ms - now))
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
