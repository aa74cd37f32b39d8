-- report.lua: a gateway's usage report for one application, applied at
-- most once: idle tokens it returns, tokens used beyond what it was
-- granted (debt), and tokens used, under a sequence number per gateway
-- and application so that a report retried after a timeout counts once.
--
-- KEYS[1]  tg:{C}:cluster     cluster configuration
-- KEYS[2]  tg:{C}:app:A       application configuration
-- KEYS[3]  tg:{C}:pool        L1 runtime state
-- KEYS[4]  tg:{C}:state:A     L2 runtime state
-- KEYS[5]  tg:{C}:rep:G       A -> last sequence applied for gateway G
-- ARGV[1]  gateway id
-- ARGV[2]  seq                grows with every report of G for A
-- ARGV[3]  used_tokens        added to used_total
-- ARGV[4]  returned_tokens    tg_settle() with -returned_tokens
-- ARGV[5]  debt_tokens        then tg_settle() with +debt_tokens
-- ARGV[6]  now_ms             Unix ms; "" for the Redis server's clock
--
-- Reply    {applied, remaining_tokens, code}
--          applied 0 when seq is not above the last one applied: then
--          nothing changes.  remaining_tokens: what the application's
--          buckets offer now.  code 0 ok, 1 unknown application,
--          2 unknown cluster (then applied 0, nothing changes).

local seq = arg_int(ARGV[2], 'seq')
local used = arg_tokens(ARGV[3], 'used_tokens')
local returned = arg_tokens(ARGV[4], 'returned_tokens')
local debt = arg_tokens(ARGV[5], 'debt_tokens')
local now = now_ms(ARGV[6])

-- application ids hold no ":", so the id is what follows the last one
local app_id = string.match(KEYS[2], '([^:]*)$')

local cc = cluster_conf(KEYS[1])
if cc == nil then
    return {0, 0, CODE_UNKNOWN_CLUSTER}
end

local ac = app_conf(KEYS[2])
if ac == nil then
    return {0, 0, CODE_UNKNOWN_APP}
end

local c = pool_load(KEYS[3], cc, now)
local a = app_load(KEYS[4], ac, now)
local last_seq = tonumber(redis.call('HGET', KEYS[5], app_id))

cluster_refill(c, cc, now)
app_refill(a, ac, now)

-- a repeated report: the refill above is only for the reply
if last_seq ~= nil and seq <= last_seq then
    return {0, app_remaining(a), CODE_OK}
end

settle(c, cc, a, ac, -returned, now)
settle(c, cc, a, ac, debt, now)

c.granted_total = c.granted_total + debt
a.granted_total = a.granted_total + debt
c.returned_total = c.returned_total + returned
a.returned_total = a.returned_total + returned
a.used_total = a.used_total + used

pool_save(KEYS[3], c)
app_save(KEYS[4], a)

redis.call('HSET', KEYS[5], app_id, seq)
redis.call('PEXPIRE', KEYS[5], 3600000)

return {1, app_remaining(a), CODE_OK}
