-- borrow.lua: an operator lends an application tokens now, against its
-- future guaranteed refill (tg_borrow): they go into the guaranteed
-- bucket and the debt grows by them plus 10 % interest, within
-- max_borrow and what the pool holds above its reserve.  The pool is
-- charged when the tokens are granted, not here.
--
-- KEYS[1]  tg:{C}:cluster     cluster configuration
-- KEYS[2]  tg:{C}:app:A       application configuration
-- KEYS[3]  tg:{C}:pool        L1 runtime state
-- KEYS[4]  tg:{C}:state:A     L2 runtime state
-- KEYS[5]  tg:{C}:events      stream: one "borrow" event
-- ARGV[1]  tokens             asked for
-- ARGV[2]  now_ms             Unix ms; "" for the Redis server's clock
-- ARGV[3]  who                the operator, for the event
--
-- Reply    {code, lent, debt_tokens}
--          code 0 ok, 1 unknown application, 2 unknown cluster;
--          debt_tokens rounded up to a whole token.

local tokens, now, who = operator_args()

local cc = cluster_conf(KEYS[1])
if cc == nil then
    return {CODE_UNKNOWN_CLUSTER, 0, 0}
end

local ac = app_conf(KEYS[2])
if ac == nil then
    return {CODE_UNKNOWN_APP, 0, 0}
end

local c = pool_load(KEYS[3], cc, now)
local a = app_load(KEYS[4], ac, now)
local lent

cluster_refill(c, cc, now)
app_refill(a, ac, now)

lent = math.min(tokens, app_debt_room(a, ac),
                offer_above(c.bucket.level_mtok, cc.reserve_mtok))

a.g.level_mtok = mtok_add(a.g.level_mtok, mtok(lent))
a.debt_mtok = mtok_add(a.debt_mtok,
                       mul_sat(lent, ac.borrow_unit_mtok, MTOK_MAX))

pool_save(KEYS[3], c)
app_save(KEYS[4], a)

return operator_done(KEYS[5], KEYS[2], now, 'borrow', who, tokens, 'lent',
                     lent, a)
