-- seed.lua: configuration as code.  A gateway writes the cluster and
-- application its nginx.conf declares, but only where Redis has none:
-- once a hash exists, changes made through Redis (the admin) win.
--
-- KEYS[1]  tg:{C}:cluster     cluster configuration
-- KEYS[2]  tg:{C}:app:A       application configuration, or "" to seed
--                             the cluster only (in Redis Cluster pass
--                             any key of the {C} slot with ARGV[5] "")
-- KEYS[3]  tg:{C}:apps        set of application ids
-- KEYS[4]  tg:{C}:version     configuration version
-- ARGV[1]  capacity           tokens/s
-- ARGV[2]  reserved_ratio     decimal text, "0.2"
-- ARGV[3]  window_ms          "" to leave it out (10000)
-- ARGV[4]  version            of the cluster hash; seeds pass 0 so that
--                             any write by the admin replaces them
-- ARGV[5]  app_id             "" to seed the cluster only
-- ARGV[6]  cluster_id
-- ARGV[7]  guaranteed_quota   tokens/s
-- ARGV[8]  burst_quota        tokens/s
-- ARGV[9]  priority           0 .. 2
-- ARGV[10] max_borrow         tokens
-- ARGV[11] cost_profile
-- ARGV[12] version            of the application hash
--
-- Reply    {created_cluster, created_app}, each 0 or 1; the version key
--          is INCRed when either was created.

local created_cluster, created_app = 0, 0

if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('HSET', KEYS[1], 'capacity', ARGV[1],
               'reserved_ratio', ARGV[2], 'version', ARGV[4])

    if ARGV[3] ~= nil and ARGV[3] ~= '' then
        redis.call('HSET', KEYS[1], 'window_ms', ARGV[3])
    end

    created_cluster = 1
end

if KEYS[2] ~= '' and ARGV[5] ~= nil and ARGV[5] ~= ''
   and redis.call('EXISTS', KEYS[2]) == 0
then
    redis.call('HSET', KEYS[2], 'app_id', ARGV[5], 'cluster_id', ARGV[6],
               'guaranteed_quota', ARGV[7], 'burst_quota', ARGV[8],
               'priority', ARGV[9], 'max_borrow', ARGV[10],
               'cost_profile', ARGV[11], 'version', ARGV[12])
    redis.call('SADD', KEYS[3], ARGV[5])
    created_app = 1
end

if created_cluster + created_app > 0 then
    redis.call('INCR', KEYS[4])
end

return {created_cluster, created_app}
