-- lib/tollgate.lua: the quota rules of core/tg_bucket.c and
-- core/tg_quota.c, for the scripts of redis/.  A script is loaded as this
-- file followed by the script's own file (docs/redis-scripts.md), so
-- everything here is local: Redis refuses global variables.
--
-- Every quantity is an integer held in a Lua number, a double, which is
-- exact below 2^53: the bound the C core saturates milli-tokens at.  The
-- two places where C computes past it in 64 bits (the usage window and
-- the retry time) split their numbers below so the integer comes out
-- the same.  Names and units follow the C: *_mtok milli-tokens, *_ms
-- milliseconds, *_tps tokens per second.

local MTOK_PER_TOKEN = 1000
local TOKENS_MAX = 2 ^ 40
local MTOK_MAX = 2 ^ 53
local PRIORITY_MAX = 2
local ELAPSED_MAX_MS = 86400000
local USAGE_SLOTS = 10

-- the pool's fields for usage slot i: S_FIELD[i], E_FIELD[i].  Written
-- out, since 's' .. i formats i as a float ("%.14g"), some 2 000
-- instructions each, 40 times an acquire.
local S_FIELD = {[0] = 's0', 's1', 's2', 's3', 's4', 's5', 's6', 's7', 's8',
                 's9'}
local E_FIELD = {[0] = 'e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7', 'e8',
                 'e9'}
local WINDOW_MS_DEFAULT = 10000
local RESERVED_PERMILLE_DEFAULT = 200
local EMERGENCY_PERMILLE = 950
local EMERGENCY_TTL_MS = 300000
local INTEREST_PERMILLE = 100
local BUCKET_MS = 1000
local RETRY_MIN_MS = 1000
local RETRY_MAX_MS = 3600000
local RETRY_NO_RATE_MS = 60000
local RETRY_EMERGENCY_MS = 60000
local EVENTS_MAXLEN = 10000

local LAYER_NONE, LAYER_CLUSTER, LAYER_GUARANTEED, LAYER_BURST,
      LAYER_DEBT = 0, 1, 2, 3, 4

local CODE_OK, CODE_UNKNOWN_APP, CODE_UNKNOWN_CLUSTER = 0, 1, 2


-- arithmetic ------------------------------------------------------------

-- floor(a / b) for integers with |a| <= 2^53 and b > 0; the quotient of
-- doubles may round up to the next integer, the check puts it back
local function idiv(a, b)
    local q = math.floor(a / b)

    if q * b > a then
        q = q - 1
    elseif (q + 1) * b <= a then
        q = q + 1
    end

    return q
end

local function clamp(v, lo, hi)
    if v < lo then
        return lo
    end

    if v > hi then
        return hi
    end

    return v
end

-- a * b, or max: exact, since a product at most max (2^53) is exact
local function mul_sat(a, b, max)
    local p = a * b

    if p > max then
        return max
    end

    return p
end

local function mtok_add(a, b)
    return clamp(a + b, -MTOK_MAX, MTOK_MAX)
end

local function mtok(tokens)
    return mul_sat(tokens, MTOK_PER_TOKEN, MTOK_MAX)
end

local function offer(level_mtok)
    if level_mtok > 0 then
        return idiv(level_mtok, MTOK_PER_TOKEN)
    end

    return 0
end

local function offer_above(level_mtok, floor_mtok)
    if level_mtok > floor_mtok then
        return offer(level_mtok - floor_mtok)
    end

    return 0
end

-- ceil((x - y) / rate) for x, y within +-2^53, where the difference may
-- not be exact as a double: each term is divided on its own
local function ceil_div_diff(x, y, rate)
    local qx, qy, rest

    qx = idiv(x, rate)
    qy = idiv(-y, rate)
    rest = (x - qx * rate) + (-y - qy * rate) + rate - 1

    return qx + qy + idiv(rest, rate)
end


-- integers above 2^53: three limbs of 24 bits, least significant first;
-- only what the usage check needs (sum, product by a small factor,
-- comparison)

local LIMB = 2 ^ 24

local function big(n)
    local b = {}

    for i = 1, 3 do
        b[i] = n % LIMB
        n = (n - b[i]) / LIMB
    end

    return b
end

-- a * k + b, k below 2^28 so that a limb times k stays exact
local function big_muladd(a, k, b)
    local r, carry = {}, 0

    for i = 1, 3 do
        local v = a[i] * k + b[i] + carry

        r[i] = v % LIMB
        carry = (v - r[i]) / LIMB
    end

    return r
end

local BIG_ZERO = big(0)

local function big_cmp(a, b)
    for i = 3, 1, -1 do
        if a[i] ~= b[i] then
            return a[i] < b[i] and -1 or 1
        end
    end

    return 0
end

-- UINT64_MAX / 1000, where the C saturates capacity * window
local BIG_WINDOW_MAX = big_muladd(big(18446744073709), 1000, big(551))


-- arguments and configuration -------------------------------------------

local function fail(message)
    error({err = 'ERR tollgate: ' .. message})
end

-- an integer argument; "" and nil give the default when there is one
local function arg_int(v, name, default)
    local n

    if (v == nil or v == '') and default ~= nil then
        return default
    end

    n = tonumber(v)

    if n == nil or n ~= math.floor(n) or n < -MTOK_MAX or n > MTOK_MAX then
        if n ~= nil and n > MTOK_MAX and n < math.huge then
            return MTOK_MAX
        end

        fail('"' .. name .. '" is not an integer: "' .. tostring(v) .. '"')
    end

    return n
end

-- a count of tokens: saturated like the core saturates its inputs
local function arg_tokens(v, name)
    local n = arg_int(v, name)

    if n < 0 then
        fail('"' .. name .. '" is negative: "' .. v .. '"')
    end

    return math.min(n, TOKENS_MAX)
end

local function now_ms(v)
    local t

    if v ~= nil and v ~= '' then
        return arg_int(v, 'now_ms')
    end

    t = redis.call('TIME')

    return tonumber(t[1]) * 1000 + idiv(tonumber(t[2]), 1000)
end

local function hash(key)
    local flat, h = redis.call('HGETALL', key), {}

    for i = 1, #flat, 2 do
        h[flat[i]] = flat[i + 1]
    end

    return h
end

-- a configured quantity: what is not a number counts as the default,
-- a negative one as 0, and a huge one saturates as in the core
local function conf_num(v, default, max)
    local n = tonumber(v)

    if n == nil or n ~= n then
        return default
    end

    return clamp(math.floor(n), 0, max)
end

-- "0.2", "1", "0.1000": per mille, decimals past the third dropped
local function ratio_permille(text)
    local whole, frac = string.match(text or '', '^%s*(%d*)%.?(%d*)%s*$')

    if whole == nil or whole .. frac == '' then
        return RESERVED_PERMILLE_DEFAULT
    end

    frac = string.sub(frac .. '000', 1, 3)

    return math.min((tonumber('0' .. whole) or MTOK_MAX) * 1000
                    + tonumber(frac), 1000)
end

-- the cluster configuration, or nil when its hash is absent
local function cluster_conf(key)
    local h, cc = hash(key), {}

    if next(h) == nil then
        return nil
    end

    cc.capacity_tps = conf_num(h.capacity, 0, TOKENS_MAX)
    cc.reserved_permille = ratio_permille(h.reserved_ratio)
    cc.window_ms = conf_num(h.window_ms, 0, ELAPSED_MAX_MS)

    if cc.window_ms == 0 then
        cc.window_ms = WINDOW_MS_DEFAULT
    end

    -- each slot at least 1 ms long
    cc.window_ms = math.max(cc.window_ms, USAGE_SLOTS)

    cc.cap_mtok = mtok(cc.capacity_tps)

    -- capacity * 1000 * permille / 1000, without leaving 2^53
    cc.reserve_mtok = cc.capacity_tps * cc.reserved_permille

    return cc
end

-- the application configuration, or nil when its hash is absent
local function app_conf(key)
    local h, ac = hash(key), {}

    if next(h) == nil then
        return nil
    end

    ac.guaranteed_tps = conf_num(h.guaranteed_quota, 0, TOKENS_MAX)
    ac.burst_tps = conf_num(h.burst_quota, 0, TOKENS_MAX)
    ac.max_borrow_tokens = conf_num(h.max_borrow, 0, TOKENS_MAX)
    ac.priority = conf_num(h.priority, 1, PRIORITY_MAX)
    ac.cost_profile = h.cost_profile or ''
    ac.version = conf_num(h.version, 0, MTOK_MAX)

    -- the burst bucket holds what burst adds above guaranteed
    ac.extra_tps = math.max(ac.burst_tps - ac.guaranteed_tps, 0)

    ac.g_cap_mtok = mul_sat(ac.guaranteed_tps, BUCKET_MS, MTOK_MAX)
    ac.b_cap_mtok = mul_sat(ac.extra_tps, BUCKET_MS, MTOK_MAX)

    -- the debt one borrowed token costs, interest included
    ac.borrow_unit_mtok = MTOK_PER_TOKEN + INTEREST_PERMILLE

    return ac
end


-- token buckets -----------------------------------------------------------

local function bucket_accrue(b, rate_tps, now)
    local elapsed_ms

    -- a clock that went back restarts the bucket from now, adding none
    if now <= b.last_ms then
        b.last_ms = now
        return 0
    end

    elapsed_ms = math.min(now - b.last_ms, ELAPSED_MAX_MS)
    b.last_ms = now

    return mul_sat(rate_tps, elapsed_ms, MTOK_MAX)
end

-- a level above the cap (lowered cap, lent tokens) is kept, not cut
local function bucket_fill(b, add_mtok, cap_mtok)
    local room_mtok

    if add_mtok <= 0 or b.level_mtok >= cap_mtok then
        return 0
    end

    room_mtok = cap_mtok - b.level_mtok
    add_mtok = math.min(add_mtok, room_mtok)
    b.level_mtok = b.level_mtok + add_mtok

    return add_mtok
end

local function bucket_refill(b, rate_tps, cap_mtok, now)
    return bucket_fill(b, bucket_accrue(b, rate_tps, now), cap_mtok)
end


-- L1: the pool hash ---------------------------------------------------------

local function usage_epoch(cc, now)
    return idiv(now, idiv(cc.window_ms, USAGE_SLOTS))
end

-- the pool as stored, or a full one (tg_cluster_init) when absent
local function pool_load(key, cc, now)
    local h, c, epoch = hash(key), {}, usage_epoch(cc, now)

    c.bucket = {
        level_mtok = tonumber(h.level_mtok) or cc.cap_mtok,
        last_ms = tonumber(h.last_ms) or now
    }
    c.slot_mtok, c.slot_epoch = {}, {}

    -- slots stamped with a period already out of the window count 0
    for i = 0, USAGE_SLOTS - 1 do
        c.slot_mtok[i] = tonumber(h[S_FIELD[i]]) or 0
        c.slot_epoch[i] = tonumber(h[E_FIELD[i]]) or epoch - USAGE_SLOTS
    end

    c.granted_total = tonumber(h.granted_total) or 0
    c.returned_total = tonumber(h.returned_total) or 0

    return c
end

local function pool_save(key, c)
    local args = {
        'level_mtok', c.bucket.level_mtok, 'last_ms', c.bucket.last_ms,
        'granted_total', c.granted_total,
        'returned_total', c.returned_total
    }

    for i = 0, USAGE_SLOTS - 1 do
        table.insert(args, S_FIELD[i])
        table.insert(args, c.slot_mtok[i])
        table.insert(args, E_FIELD[i])
        table.insert(args, c.slot_epoch[i])
    end

    redis.call('HSET', key, unpack(args))
end

local function cluster_refill(c, cc, now)
    bucket_refill(c.bucket, cc.capacity_tps, cc.cap_mtok, now)
end

local function usage_add(c, cc, used_mtok, now)
    local epoch = usage_epoch(cc, now)
    local i = epoch % USAGE_SLOTS

    -- the slot still holds a period that left the window: reuse it
    if c.slot_epoch[i] ~= epoch then
        c.slot_epoch[i] = epoch
        c.slot_mtok[i] = 0
    end

    c.slot_mtok[i] = mtok_add(c.slot_mtok[i], used_mtok)
end

-- usage over the window >= permille of capacity over the window, that
-- is used * 1000 >= permille * capacity * window, compared exactly
local function usage_reaches(c, cc, permille, now)
    local epoch, used, window

    epoch = usage_epoch(cc, now)
    used = BIG_ZERO

    -- a slot stamped in the future (the clock went back) counts 0
    for i = 0, USAGE_SLOTS - 1 do
        if c.slot_epoch[i] <= epoch
           and epoch - c.slot_epoch[i] < USAGE_SLOTS
           and c.slot_mtok[i] > 0
        then
            used = big_muladd(used, 1, big(c.slot_mtok[i]))
        end
    end

    if cc.capacity_tps == 0 then
        return big_cmp(used, BIG_ZERO) > 0 and 1000 >= permille
    end

    window = big_muladd(big(cc.capacity_tps), cc.window_ms, BIG_ZERO)
    if big_cmp(window, BIG_WINDOW_MAX) > 0 then
        window = BIG_WINDOW_MAX
    end

    return big_cmp(big_muladd(used, 1000, BIG_ZERO),
                   big_muladd(window, permille, BIG_ZERO)) >= 0
end


-- L1: the emergency hash ----------------------------------------------------

-- off, auto or manual; the admin writes active 0 with mode manual for
-- "off", so active decides.  A hold absent is "never held".
local function emergency_load(key)
    local h, e = hash(key), {}

    e.mode = 'off'
    if h.active == '1' then
        e.mode = h.mode == 'auto' and 'auto' or 'manual'
    end

    e.until_ms = tonumber(h.until_ms) or 0
    e.hold_until_ms = tonumber(h.hold_until_ms)
    e.reason = h.reason or ''
    e.set_by = h.set_by or ''

    return e
end

local function emergency_save(key, e)
    redis.call('HSET', key,
               'active', e.mode == 'off' and 0 or 1, 'mode', e.mode,
               'until_ms', e.until_ms, 'reason', e.reason,
               'set_by', e.set_by)

    if e.hold_until_ms == nil then
        redis.call('HDEL', key, 'hold_until_ms')
    else
        redis.call('HSET', key, 'hold_until_ms', e.hold_until_ms)
    end
end

local function emergency_same(a, b)
    return a.mode == b.mode and a.until_ms == b.until_ms
           and a.hold_until_ms == b.hold_until_ms
end

local function emergency_copy(e)
    return {
        mode = e.mode, until_ms = e.until_ms,
        hold_until_ms = e.hold_until_ms, reason = e.reason,
        set_by = e.set_by
    }
end

-- "manual until 1700000300000", "off"
local function emergency_text(e)
    if e.mode == 'off' then
        return 'off'
    end

    return e.mode .. ' until ' .. string.format('%d', e.until_ms)
end

-- tg_cluster_emergency_active: expires, or turns on and renews the
-- automatic mode while usage is high
local function emergency_evaluate(e, c, cc, now)
    if e.mode ~= 'off' and now >= e.until_ms then
        e.mode = 'off'
        e.reason = 'expired'
    end

    -- an operator's emergency is neither shortened nor taken over
    if e.mode == 'manual'
       or (e.hold_until_ms ~= nil and now < e.hold_until_ms)
    then
        return e.mode ~= 'off'
    end

    if usage_reaches(c, cc, EMERGENCY_PERMILLE, now) then
        if e.mode == 'off' then
            e.reason = 'usage reached 95 %'
        end

        e.mode = 'auto'
        e.until_ms = now + EMERGENCY_TTL_MS
    end

    return e.mode ~= 'off'
end


-- L2: the state hash --------------------------------------------------------

-- the application's state as stored, or full buckets (tg_app_init)
local function app_load(key, ac, now)
    local h, a = hash(key), {}

    a.g = {
        level_mtok = tonumber(h.g_mtok) or ac.g_cap_mtok,
        last_ms = tonumber(h.g_last_ms) or now
    }
    a.b = {
        level_mtok = tonumber(h.b_mtok) or ac.b_cap_mtok,
        last_ms = tonumber(h.b_last_ms) or now
    }
    a.debt_mtok = tonumber(h.debt_mtok) or 0
    a.granted_total = tonumber(h.granted_total) or 0
    a.returned_total = tonumber(h.returned_total) or 0
    a.used_total = tonumber(h.used_total) or 0

    return a
end

local function app_save(key, a)
    redis.call('HSET', key,
               'g_mtok', a.g.level_mtok, 'g_last_ms', a.g.last_ms,
               'b_mtok', a.b.level_mtok, 'b_last_ms', a.b.last_ms,
               'debt_mtok', a.debt_mtok, 'granted_total', a.granted_total,
               'returned_total', a.returned_total,
               'used_total', a.used_total)
end

-- refill of the guaranteed bucket pays the debt first
local function app_refill(a, ac, now)
    local produced_mtok, paid_mtok

    produced_mtok = bucket_accrue(a.g, ac.guaranteed_tps, now)
    paid_mtok = math.min(produced_mtok, a.debt_mtok)

    a.debt_mtok = a.debt_mtok - paid_mtok
    bucket_fill(a.g, produced_mtok - paid_mtok, ac.g_cap_mtok)

    bucket_refill(a.b, ac.extra_tps, ac.b_cap_mtok, now)
end

-- whole tokens the application may still borrow under max_borrow
local function app_debt_room(a, ac)
    local room_mtok = mtok(ac.max_borrow_tokens) - a.debt_mtok

    if room_mtok <= 0 then
        return 0
    end

    return idiv(room_mtok, ac.borrow_unit_mtok)
end

-- debt in whole tokens: a part of a token takes a whole one to clear
local function app_debt_tokens(a)
    if a.debt_mtok <= 0 then
        return 0
    end

    return idiv(a.debt_mtok + MTOK_PER_TOKEN - 1, MTOK_PER_TOKEN)
end

-- what L2 could still grant: the offer of both buckets
local function app_remaining(a)
    return offer(a.g.level_mtok) + offer(a.b.level_mtok)
end


-- settling (tg_settle) ------------------------------------------------------

-- delta > 0: used beyond the grant, owed as debt; delta < 0: returned
-- to the guaranteed bucket and the pool.  Both refilled beforehand.
local function settle(c, cc, a, ac, delta_tokens, now)
    local delta_mtok = mtok(math.min(math.abs(delta_tokens), TOKENS_MAX))

    if delta_tokens > 0 then
        a.debt_mtok = mtok_add(a.debt_mtok, delta_mtok)
        c.bucket.level_mtok = mtok_add(c.bucket.level_mtok, -delta_mtok)
        usage_add(c, cc, delta_mtok, now)
        return
    end

    if delta_tokens < 0 then
        bucket_fill(a.g, delta_mtok, ac.g_cap_mtok)
        bucket_fill(c.bucket, delta_mtok, cc.cap_mtok)
    end
end


-- retry times ---------------------------------------------------------------

-- to - from within [RETRY_MIN_MS, max_ms]
local function retry_clamp(from_ms, to_ms, max_ms)
    if to_ms <= from_ms then
        return RETRY_MIN_MS
    end

    return clamp(to_ms - from_ms, RETRY_MIN_MS, max_ms)
end

-- when need - have milli-tokens will have accrued at rate_tps;
-- rounded up, never too early
local function retry_ms(need_mtok, have_mtok, rate_tps)
    if rate_tps == 0 then
        return RETRY_NO_RATE_MS
    end

    if need_mtok <= have_mtok then
        return RETRY_MIN_MS
    end

    return clamp(ceil_div_diff(need_mtok, have_mtok, rate_tps),
                 RETRY_MIN_MS, RETRY_MAX_MS)
end


-- events and operator actions ---------------------------------------------

local function event(key, now, kind, ...)
    redis.call('XADD', key, 'MAXLEN', '~', EVENTS_MAXLEN, '*',
               'type', kind, 'at_ms', string.format('%d', now), ...)
end


-- gateways ------------------------------------------------------------------

-- ttl_ms of a heartbeat: a gateway silent this long is dropped
local function gateway_ttl(v)
    local ttl = arg_int(v, 'ttl_ms', 10000)

    if ttl <= 0 then
        fail('ttl_ms must be positive')
    end

    return ttl
end

-- The heartbeat, sent alone (heartbeat.lua) or carried by an acquire
-- (acquire.lua) so that a busy gateway spends no call on it.  keys:
-- tg:{C}:gateways, tg:{C}:gw:G, tg:{C}:version, tg:{C}:emergency;
-- fig: gateway id, level, hit_rate_permille, requests, rejected, as
-- sent.  Returns {live_gateways, config_version, emergency_active},
-- the emergency as the hash holds it now.
local function gateway_beat(keys, fig, now, ttl)
    local e

    redis.call('ZADD', keys[1], now, fig[1])
    redis.call('ZREMRANGEBYSCORE', keys[1], '-inf', now - ttl)

    redis.call('HSET', keys[2], 'level', fig[2],
               'hit_rate_permille', fig[3], 'requests', fig[4],
               'rejected', fig[5], 'updated_ms', now)
    redis.call('PEXPIRE', keys[2], 3 * ttl)

    e = emergency_load(keys[4])

    return {redis.call('ZCARD', keys[1]),
            tonumber(redis.call('GET', keys[3]) or '0') or 0,
            (e.mode ~= 'off' and now < e.until_ms) and 1 or 0}
end


-- ARGV of borrow.lua and repay.lua: tokens, now_ms, who
local function operator_args()
    return arg_tokens(ARGV[1], 'tokens'), now_ms(ARGV[2]), ARGV[3] or ''
end

-- records an operator's borrow or repay and makes the reply
-- {code, done, debt_tokens}; done is "lent" or "repaid"
local function operator_done(events_key, app_key, now, kind, who, tokens,
                             done, done_tokens, a)
    event(events_key, now, kind, 'app', string.match(app_key, '([^:]*)$'),
          'who', who, 'tokens', tokens, done, done_tokens,
          'debt_tokens', app_debt_tokens(a))

    return {CODE_OK, done_tokens, app_debt_tokens(a)}
end
