-- admin_emergency.lua: an operator turns a cluster's emergency mode on
-- (until a deadline) or off.  Returns the previous state, so that the
-- admin can record it.
--
-- KEYS[1]  tg:{C}:emergency  the emergency hash
-- KEYS[2]  tg:{C}:version    the cluster's configuration version
-- ARGV     active (0|1), reason, until_ms, set_by, cluster_id
-- Returns  the previous hash as a flat array of fields and values.

local before = redis.call('HGETALL', KEYS[1])

redis.call('HSET', KEYS[1],
    'active', ARGV[1], 'mode', 'manual', 'reason', ARGV[2],
    'until_ms', ARGV[3], 'set_by', ARGV[4])
redis.call('INCR', KEYS[2])
redis.call('PUBLISH', 'tg:config', ARGV[5])
return before
