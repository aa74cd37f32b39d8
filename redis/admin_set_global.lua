-- admin_set_global.lua: sets or removes one field of a global hash,
-- tg:profiles or tg:degradation, and tells the gateways.
--
-- KEYS[1]  tg:profiles or tg:degradation
-- ARGV     field, value ("" removes the field)
-- Returns  the previous value, or false when there was none.

local before = redis.call('HGET', KEYS[1], ARGV[1])

if ARGV[2] == '' then
    redis.call('HDEL', KEYS[1], ARGV[1])
else
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end

redis.call('PUBLISH', 'tg:config', '*')
return before
