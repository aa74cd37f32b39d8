-- admin_del_app.lua: removes one application's configuration.  Its
-- runtime state (tg:{C}:state:A) belongs to the scripts and expires there.
--
-- KEYS[1]  tg:{C}:app:A      the application hash
-- KEYS[2]  tg:{C}:apps       the cluster's set of application ids
-- KEYS[3]  tg:{C}:version    the cluster's configuration version
-- ARGV     app_id, cluster_id
-- Returns  1 when something was removed, 0 when it was already gone.

local removed = redis.call('DEL', KEYS[1]) + redis.call('SREM', KEYS[2], ARGV[1])
if removed == 0 then
    return 0
end

redis.call('INCR', KEYS[3])
redis.call('PUBLISH', 'tg:config', ARGV[2])
return 1
