-- acquire.lua: grants an application between min_tokens and want_tokens
-- now, or nothing, by the rules of tg_acquire(): guaranteed bucket first,
-- then burst while the cluster pool stays above its reserve, then
-- borrowing to reach min_tokens.  Also turns the cluster's emergency
-- mode on at 95 % usage, renews it while usage stays high and expires it.
--
-- KEYS[1]  tg:{C}:cluster     cluster configuration
-- KEYS[2]  tg:{C}:app:A       application configuration
-- KEYS[3]  tg:{C}:pool        L1 runtime state, created full when absent
-- KEYS[4]  tg:{C}:state:A     L2 runtime state, created full when absent
-- KEYS[5]  tg:{C}:emergency   emergency state
-- KEYS[6]  tg:{C}:events      stream: emergency turning on or off
-- ARGV[1]  want_tokens        > 0
-- ARGV[2]  min_tokens         1 .. want_tokens
-- ARGV[3]  now_ms             Unix ms; "" for the Redis server's clock
-- ARGV[4]  gateway id         who asked, for events
--
-- The gateway's heartbeat may ride along (heartbeat.lua's job, saving a
-- call while the gateway acquires anyway), with three more keys:
-- KEYS[7]  tg:{C}:gateways    KEYS[8] tg:{C}:gw:G    KEYS[9] tg:{C}:version
-- ARGV[5]  level              ARGV[6] hit_rate_permille
-- ARGV[7]  requests           ARGV[8] rejected
-- ARGV[9]  ttl_ms             "" for 10000
--
-- Reply    {code, granted, layer, retry_after_ms, remaining_tokens,
--           emergency, guaranteed_quota, burst_quota, priority,
--           max_borrow, cost_profile, app_version}
--          code 0 ok, 1 unknown application, 2 unknown cluster (every
--          other field 0 or "").  layer: 0 none, 1 cluster,
--          2 guaranteed, 3 burst, 4 debt.  retry_after_ms is set when
--          granted is 0.  remaining_tokens: what the application's
--          buckets still offer after this grant.  With the heartbeat,
--          followed by heartbeat.lua's reply: live_gateways,
--          config_version, emergency_active, whatever the code.

local want = arg_tokens(ARGV[1], 'want_tokens')
local min = arg_tokens(ARGV[2], 'min_tokens')
local now = now_ms(ARGV[3])
local gateway = ARGV[4] or ''
local beat_ttl = #KEYS >= 9 and gateway_ttl(ARGV[9]) or nil

-- compared before saturation, as the core does
if min == 0 or tonumber(ARGV[2]) > tonumber(ARGV[1]) then
    fail('min_tokens must be from 1 to want_tokens')
end


-- the reply, with the heartbeat's after it when one rides along; run
-- last, so that it reports the emergency as this call left it
local function answer(reply)
    local beat

    if beat_ttl ~= nil then
        beat = gateway_beat({KEYS[7], KEYS[8], KEYS[9], KEYS[5]},
                            {gateway, ARGV[5], ARGV[6], ARGV[7], ARGV[8]},
                            now, beat_ttl)

        for i = 1, #beat do
            reply[#reply + 1] = beat[i]
        end
    end

    return reply
end


local cc = cluster_conf(KEYS[1])
if cc == nil then
    return answer({CODE_UNKNOWN_CLUSTER, 0, 0, 0, 0, 0, 0, 0, 0, 0, '', 0})
end

local ac = app_conf(KEYS[2])
if ac == nil then
    return answer({CODE_UNKNOWN_APP, 0, 0, 0, 0, 0, 0, 0, 0, 0, '', 0})
end

local c = pool_load(KEYS[3], cc, now)
local a = app_load(KEYS[4], ac, now)
local e = emergency_load(KEYS[5])
local e_before = emergency_copy(e)

cluster_refill(c, cc, now)
app_refill(a, ac, now)

local emergency = emergency_evaluate(e, c, cc, now)
local granted, layer, retry = 0, LAYER_NONE, 0


-- what the application alone could give, pool aside, and the layer
-- that refuses: the cluster when it is the pool that lacks
local function refuse(burst_ok, borrow_ok)
    local app_g, app_b, app_borrow, need_mtok, have_mtok, rate_tps

    app_g = math.min(want, offer(a.g.level_mtok))
    app_b = 0
    if burst_ok then
        app_b = math.min(want - app_g, offer(a.b.level_mtok))
    end

    app_borrow = 0
    if borrow_ok and app_g + app_b < min then
        app_borrow = math.min(min - app_g - app_b, app_debt_room(a, ac))
    end

    if app_g + app_b + app_borrow >= min then
        -- guaranteed tokens need the pool above 0, the rest above reserve
        need_mtok = mtok(min)
        if min > app_g then
            need_mtok = mtok_add(need_mtok, cc.reserve_mtok)
        end

        return LAYER_CLUSTER, retry_ms(need_mtok, c.bucket.level_mtok,
                                       cc.capacity_tps)
    end

    if borrow_ok then
        -- refill pays the debt down at the guaranteed rate
        need_mtok = mul_sat(min - app_g - app_b - app_borrow,
                            ac.borrow_unit_mtok, MTOK_MAX)

        return LAYER_DEBT, retry_ms(need_mtok, 0, ac.guaranteed_tps)
    end

    -- the refill pays the debt first, so the debt counts as missing
    need_mtok = mtok_add(mtok(min), a.debt_mtok)
    have_mtok = math.max(a.g.level_mtok, 0)

    if burst_ok and ac.extra_tps > 0 then
        have_mtok = have_mtok + math.max(a.b.level_mtok, 0)
        rate_tps = ac.burst_tps

        return LAYER_BURST, retry_ms(need_mtok, have_mtok, rate_tps)
    end

    return LAYER_GUARANTEED, retry_ms(need_mtok, have_mtok,
                                      ac.guaranteed_tps)
end


if emergency and ac.priority >= 2 then
    layer = LAYER_CLUSTER
    retry = retry_clamp(now, e.until_ms, RETRY_EMERGENCY_MS)

else
    local burst_ok = not (emergency and ac.priority >= 1)
    local borrow_ok = not emergency and ac.max_borrow_tokens > 0
    local from_g, from_b, borrowed, pool_mtok

    -- guaranteed tokens may take the pool down to zero
    from_g = math.min(want, offer(a.g.level_mtok),
                      offer(c.bucket.level_mtok))
    pool_mtok = c.bucket.level_mtok - mtok(from_g)

    -- everything else only from above the reserve
    from_b = 0
    if burst_ok then
        from_b = math.min(want - from_g, offer(a.b.level_mtok),
                          offer_above(pool_mtok, cc.reserve_mtok))
        pool_mtok = pool_mtok - mtok(from_b)
    end

    borrowed = 0
    if borrow_ok and from_g + from_b < min then
        borrowed = math.min(min - from_g - from_b, app_debt_room(a, ac),
                            offer_above(pool_mtok, cc.reserve_mtok))
    end

    granted = from_g + from_b + borrowed

    if granted < min then
        granted = 0
        layer, retry = refuse(burst_ok, borrow_ok)

    else
        a.g.level_mtok = a.g.level_mtok - mtok(from_g)
        a.b.level_mtok = a.b.level_mtok - mtok(from_b)
        a.debt_mtok = mtok_add(a.debt_mtok,
                               mul_sat(borrowed, ac.borrow_unit_mtok,
                                       MTOK_MAX))

        c.bucket.level_mtok = c.bucket.level_mtok - mtok(granted)
        usage_add(c, cc, mtok(granted), now)

        c.granted_total = c.granted_total + granted
        a.granted_total = a.granted_total + granted

        if borrowed > 0 then
            layer = LAYER_DEBT
        elseif from_b > 0 then
            layer = LAYER_BURST
        else
            layer = LAYER_GUARANTEED
        end
    end
end

pool_save(KEYS[3], c)
app_save(KEYS[4], a)

if not emergency_same(e, e_before) then
    if e.mode ~= 'off' and e_before.mode == 'off' then
        e.set_by = gateway
    end

    emergency_save(KEYS[5], e)

    if (e.mode == 'off') ~= (e_before.mode == 'off') then
        event(KEYS[6], now, e.mode == 'off' and 'emergency_off'
                                            or 'emergency_on',
              'who', gateway, 'reason', e.reason,
              'before', emergency_text(e_before),
              'after', emergency_text(e))
    end
end

return answer({CODE_OK, granted, layer, retry, app_remaining(a),
               emergency and 1 or 0, ac.guaranteed_tps, ac.burst_tps,
               ac.priority, ac.max_borrow_tokens, ac.cost_profile,
               ac.version})
