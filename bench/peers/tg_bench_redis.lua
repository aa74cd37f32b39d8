-- Benchmark peer, not product code: the naive distributed limiter, one
-- EVALSHA per request to a Redis that every gateway shares.  Debian has
-- no Redis client for ngx_lua, so the request is written in RESP here
-- over a cosocket kept alive in nginx's connection pool.  The script is
-- a token bucket keyed by application; Redis's clock, so that gateways
-- agree on time.

local M = {}

local RATE_TPS = 1000000

local SCRIPT = [[
local rate_tps = tonumber(ARGV[2])
local t = redis.call('TIME')
local now_ms = t[1] * 1000 + math.floor(t[2] / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ms')
local tokens = tonumber(b[1]) or rate_tps
local last_ms = tonumber(b[2]) or now_ms
tokens = math.min(rate_tps, tokens + (now_ms - last_ms) * rate_tps / 1000)
local ok = 0
if tokens >= tonumber(ARGV[1]) then
    tokens = tokens - tonumber(ARGV[1])
    ok = 1
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ms', now_ms)
redis.call('PEXPIRE', KEYS[1], 60000)
return ok
]]

local host, port
local sha = ngx.sha1_bin(SCRIPT):gsub(".", function(c)
    return string.format("%02x", c:byte())
end)
local tcp = ngx.socket.tcp
local concat = table.concat
local request = require("tg_bench_cost").request


local function bulk(s)
    return "$" .. #s .. "\r\n" .. s .. "\r\n"
end


function M.init(redis_host, redis_port)
    host, port = redis_host, redis_port
end


-- one round trip; the reply's first line ("-NOSCRIPT ...", ":1")
local function call(sock, verb, body, key, cost)
    local ok, err = sock:send(concat({"*6\r\n", bulk(verb), bulk(body),
                                      "$1\r\n1\r\n", bulk(key), bulk(cost),
                                      bulk(tostring(RATE_TPS))}))
    if not ok then
        return nil, err
    end
    return sock:receive("*l")
end


function M.access()
    local app, cost = request()
    if not app then
        return ngx.exit(400)
    end

    local sock = tcp()
    sock:settimeouts(1000, 1000, 5000)
    local ok, err = sock:connect(host, port)
    if not ok then
        ngx.log(ngx.ERR, "bench redis limiter: connect: ", err)
        return ngx.exit(500)
    end

    local key = "bench:{" .. app .. "}"
    local reply
    reply, err = call(sock, "EVALSHA", sha, key, tostring(cost))
    if reply and reply:sub(1, 9) == "-NOSCRIPT" then
        reply, err = call(sock, "EVAL", SCRIPT, key, tostring(cost))
    end
    if not reply then
        ngx.log(ngx.ERR, "bench redis limiter: ", err)
        return ngx.exit(500)
    end

    sock:setkeepalive(60000, 256)

    if reply ~= ":1" then
        if reply:sub(1, 1) == "-" then
            ngx.log(ngx.ERR, "bench redis limiter: redis said ", reply)
            return ngx.exit(500)
        end
        ngx.header["Retry-After"] = 1
        return ngx.exit(429)
    end
end


return M
