-- emergency.lua: an operator turns a cluster's emergency mode on or off,
-- or gives it back to the usage trigger (tg_cluster_emergency_set).
--   on    manual emergency until now + ttl_ms
--   off   no emergency, and the usage trigger held off for 5 minutes so
--         that the operator's "off" is not undone a moment later
--   auto  releases that hold, and ends a manual emergency; an automatic
--         one goes on until it expires
--
-- KEYS[1]  tg:{C}:cluster     cluster configuration
-- KEYS[2]  tg:{C}:emergency   emergency state
-- KEYS[3]  tg:{C}:events      stream: one "emergency" event
-- ARGV[1]  action             on | off | auto
-- ARGV[2]  reason             free text, kept in the state and the event
-- ARGV[3]  ttl_ms             for "on"; 0 or "" for 300000
-- ARGV[4]  who                the operator
-- ARGV[5]  now_ms             Unix ms; "" for the Redis server's clock
--
-- Reply    {code, active, mode, until_ms}
--          code 0 ok, 2 unknown cluster.  active 1 while an emergency is
--          on and not expired; mode off | auto | manual (off when not
--          active); until_ms the end of an active one, else 0.

local action = ARGV[1]
local reason = ARGV[2] or ''
local ttl = arg_int(ARGV[3], 'ttl_ms', 0)
local who = ARGV[4] or ''
local now = now_ms(ARGV[5])

if action ~= 'on' and action ~= 'off' and action ~= 'auto' then
    fail('action must be on, off or auto, not "' .. tostring(action) .. '"')
end

if ttl < 0 then
    fail('ttl_ms is negative')
end

if cluster_conf(KEYS[1]) == nil then
    return {CODE_UNKNOWN_CLUSTER, 0, 'off', 0}
end

local e = emergency_load(KEYS[2])
local before = emergency_text(e)

if action == 'auto' then
    e.hold_until_ms = nil

    if e.mode == 'manual' then
        e.mode = 'off'
    end

elseif action == 'on' then
    e.mode = 'manual'
    e.until_ms = now + (ttl > 0 and ttl or EMERGENCY_TTL_MS)

else
    e.mode = 'off'
    e.until_ms = now
    e.hold_until_ms = now + EMERGENCY_TTL_MS
end

e.reason = reason
e.set_by = who
emergency_save(KEYS[2], e)

event(KEYS[3], now, 'emergency', 'action', action, 'who', who,
      'reason', reason, 'before', before, 'after', emergency_text(e))

if e.mode ~= 'off' and now < e.until_ms then
    return {CODE_OK, 1, e.mode, e.until_ms}
end

return {CODE_OK, 0, 'off', 0}
