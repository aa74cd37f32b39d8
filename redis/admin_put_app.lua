-- admin_put_app.lua: writes one application's configuration, unless
-- Redis already holds the same or a newer version of it.
--
-- KEYS[1]  tg:{C}:app:A      the application hash
-- KEYS[2]  tg:{C}:apps       the cluster's set of application ids
-- KEYS[3]  tg:{C}:version    the cluster's configuration version
-- ARGV     version, app_id, cluster_id, guaranteed_quota, burst_quota,
--          priority, max_borrow, cost_profile
-- Returns  1 when written, 0 when a newer version was already there.

local stored = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if stored >= tonumber(ARGV[1]) then
    return 0
end

redis.call('HSET', KEYS[1],
    'version', ARGV[1], 'app_id', ARGV[2], 'cluster_id', ARGV[3],
    'guaranteed_quota', ARGV[4], 'burst_quota', ARGV[5],
    'priority', ARGV[6], 'max_borrow', ARGV[7], 'cost_profile', ARGV[8])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('INCR', KEYS[3])
redis.call('PUBLISH', 'tg:config', ARGV[3])
return 1
