-- repay.lua: an operator pays an application's debt down from its
-- guaranteed balance (tg_repay), at most the debt rounded up to a whole
-- token and at most what the balance offers.
--
-- KEYS[1]  tg:{C}:app:A       application configuration
-- KEYS[2]  tg:{C}:state:A     L2 runtime state
-- KEYS[3]  tg:{C}:events      stream: one "repay" event
-- ARGV[1]  tokens             offered
-- ARGV[2]  now_ms             Unix ms; "" for the Redis server's clock
-- ARGV[3]  who                the operator, for the event
--
-- Reply    {code, repaid, debt_tokens}
--          code 0 ok, 1 unknown application; debt_tokens rounded up.

local tokens, now, who = operator_args()

local ac = app_conf(KEYS[1])
if ac == nil then
    return {CODE_UNKNOWN_APP, 0, 0}
end

local a = app_load(KEYS[2], ac, now)
local repaid, repaid_mtok

app_refill(a, ac, now)

repaid = math.min(tokens, app_debt_tokens(a), offer(a.g.level_mtok))
repaid_mtok = mtok(repaid)

a.g.level_mtok = a.g.level_mtok - repaid_mtok
a.debt_mtok = a.debt_mtok - math.min(repaid_mtok, a.debt_mtok)

app_save(KEYS[2], a)

return operator_done(KEYS[3], KEYS[1], now, 'repay', who, tokens, 'repaid',
                     repaid, a)
