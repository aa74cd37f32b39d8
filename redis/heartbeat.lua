-- heartbeat.lua: a gateway says it is alive and what it sees, and learns
-- how many gateways share the cluster (for its fair share of leases),
-- whether the configuration changed and whether emergency mode is on.
-- A gateway that acquires from the cluster often enough lets those calls
-- carry all this instead (acquire.lua, KEYS[7..9]): this script is for
-- quiet gateways, and for when a change is announced.
--
-- KEYS[1]  tg:{C}:gateways    zset: gateway id -> last heartbeat ms
-- KEYS[2]  tg:{C}:gw:G        this gateway's figures
-- KEYS[3]  tg:{C}:version     configuration version
-- KEYS[4]  tg:{C}:emergency   emergency state
-- ARGV[1]  gateway id
-- ARGV[2]  level              degradation level 0 .. 3
-- ARGV[3]  hit_rate_permille  L3 hit rate, 0 .. 1000
-- ARGV[4]  requests           counter since the gateway started
-- ARGV[5]  rejected           counter since the gateway started
-- ARGV[6]  now_ms             Unix ms; "" for the Redis server's clock
-- ARGV[7]  ttl_ms             a gateway silent this long is dropped;
--                             "" for 10000
--
-- Reply    {live_gateways, config_version, emergency_active}
--          live_gateways counts this one; emergency_active 1 while an
--          emergency is on and not expired.

local now = now_ms(ARGV[6])
local ttl = gateway_ttl(ARGV[7])

return gateway_beat(KEYS, ARGV, now, ttl)
