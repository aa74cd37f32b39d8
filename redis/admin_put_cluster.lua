-- admin_put_cluster.lua: writes a storage cluster's capacity, unless
-- Redis already holds the same or a newer version of it.
--
-- KEYS[1]  tg:{C}:cluster    the cluster hash
-- KEYS[2]  tg:{C}:version    the cluster's configuration version
-- ARGV     version, capacity, reserved_ratio (decimal text), cluster_id
-- Returns  1 when written, 0 when a newer version was already there.

local stored = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if stored >= tonumber(ARGV[1]) then
    return 0
end

redis.call('HSET', KEYS[1],
    'version', ARGV[1], 'capacity', ARGV[2], 'reserved_ratio', ARGV[3])
redis.call('INCR', KEYS[2])
redis.call('PUBLISH', 'tg:config', ARGV[4])
return 1
