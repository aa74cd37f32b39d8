-- Benchmark peer, not product code: the OpenResty way of limiting a
-- tenant on one gateway, a token bucket per application in a
-- lua_shared_dict, run by access_by_lua.  It charges what Tollgate
-- charges (2 tokens, plus 1 per started 64 KiB of a declared body) so
-- that both do the same work per request.
--
-- The bucket is kept as one number (the tokens) with the time of its
-- last refill in the entry's flags, read and written without a lock:
-- exact with one worker, as in bench/run.sh; several workers could lose
-- an update, which resty.limit.req accepts in the same way.

local M = {}

local RATE_TPS = 1000000     -- tokens per second, and the bucket's size

local dict = ngx.shared.tg_bench_buckets
local now = ngx.now
local request = require("tg_bench_cost").request
local ceil = math.ceil
local min = math.min

-- the flags hold milliseconds since this offset: they are 32 bits
local epoch_ms = now() * 1000


function M.access()
    local app, cost = request()
    if not app then
        return ngx.exit(400)
    end

    local now_ms = ceil(now() * 1000 - epoch_ms)
    local tokens, last_ms = dict:get(app)

    if tokens == nil then
        tokens = RATE_TPS
    else
        tokens = min(RATE_TPS, tokens + (now_ms - last_ms) * RATE_TPS / 1000)
    end

    if tokens < cost then
        dict:set(app, tokens, 0, now_ms)
        ngx.header["Retry-After"] = 1
        return ngx.exit(429)
    end

    dict:set(app, tokens - cost, 0, now_ms)
end


return M
