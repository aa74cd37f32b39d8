-- reconcile.lua: puts the pool's granted_total back in line with the
-- applications' own counters.
--
-- Every script that charges tokens adds them to both counters at once
-- (acquire: tokens granted; report: debt settled), so they only part
-- when a state hash is lost or dropped while the pool keeps its count:
-- an application deleted (its id no longer passed here), a state key
-- removed by hand or evicted, or the pool itself lost and recreated
-- at 0.  Then the pool's counter is set to the sum of the applications'
-- counters passed in KEYS; nothing else changes (balances, usage window,
-- returned_total, the applications' own counters are left alone).
--
-- KEYS[1]  tg:{C}:pool        L1 runtime state
-- KEYS[2…] tg:{C}:state:A     of every application of the cluster
-- ARGV[1]  now_ms             Unix ms; "" for the Redis server's clock
--
-- Reply    {drift_tokens, corrected}
--          drift_tokens = pool granted_total - sum of the applications';
--          corrected 1 when |drift| exceeded one token and the pool's
--          counter was set to the sum (stamped reconciled_ms).  A pool
--          not created yet is left absent: corrected 0.

local now = now_ms(ARGV[1])
local sum, drift = 0, 0
local pool_total = redis.call('HMGET', KEYS[1], 'level_mtok', 'granted_total')

for i = 2, #KEYS do
    sum = sum + (tonumber(redis.call('HGET', KEYS[i], 'granted_total')) or 0)
end

drift = (tonumber(pool_total[2]) or 0) - sum

if pool_total[1] == false or math.abs(drift) <= 1 then
    return {drift, 0}
end

redis.call('HSET', KEYS[1], 'granted_total', sum, 'reconciled_ms', now)

return {drift, 1}
