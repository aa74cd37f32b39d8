-- admin_put_app.lua: writes one application's configuration, unless
-- Redis already holds the same or a newer version of it.
--
-- KEYS[1]  tg:{C}:app:A      the application hash
-- KEYS[2]  tg:{C}:apps       the cluster's set of application ids
-- KEYS[3]  tg:{C}:version    the cluster's configuration version
-- KEYS[4]  tg:{C}:state:A    optional: the runtime buckets, cut down at
--                            once to a lowered quota's one second
-- ARGV     version, app_id, cluster_id, guaranteed_quota, burst_quota,
--          priority, max_borrow, cost_profile
-- Returns  1 when written, 0 when a newer version was already there.

local stored = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if stored >= tonumber(ARGV[1]) then
    return 0
end

-- A lowered quota applies now: buckets filled at the old rates are cut
-- to one second of the new ones.  What lies above the old guaranteed
-- cap was lent by an operator, and stays.
if KEYS[4] and redis.call('EXISTS', KEYS[4]) == 1 then
    local old_g = tonumber(redis.call('HGET', KEYS[1], 'guaranteed_quota')
                           or '0')
    local old_b = tonumber(redis.call('HGET', KEYS[1], 'burst_quota') or '0')
    local new_g = tonumber(ARGV[4])
    local new_b = tonumber(ARGV[5])
    local g = tonumber(redis.call('HGET', KEYS[4], 'g_mtok') or '0')
    local b = tonumber(redis.call('HGET', KEYS[4], 'b_mtok') or '0')
    local lent = math.max(0, g - old_g * 1000)

    if new_g < old_g then
        redis.call('HSET', KEYS[4], 'g_mtok',
                   math.min(g - lent, new_g * 1000) + lent)
    end

    if new_b - new_g < old_b - old_g then
        redis.call('HSET', KEYS[4], 'b_mtok',
                   math.min(b, math.max(0, new_b - new_g) * 1000))
    end
end

redis.call('HSET', KEYS[1],
    'version', ARGV[1], 'app_id', ARGV[2], 'cluster_id', ARGV[3],
    'guaranteed_quota', ARGV[4], 'burst_quota', ARGV[5],
    'priority', ARGV[6], 'max_borrow', ARGV[7], 'cost_profile', ARGV[8])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('INCR', KEYS[3])
redis.call('PUBLISH', 'tg:config', ARGV[3])
return 1
