/*
 * Copyright (C) Tollgate developers
 *
 * L1 (the storage cluster) and L2 (the application).  The rules are
 * written out in docs/quota-rules.md; the Redis scripts follow the same
 * text, so a change here is a change there.
 */


#include "tg_internal.h"


typedef struct {
    uint64_t              from_guaranteed;
    uint64_t              from_burst;
    uint64_t              borrowed;
} tg_plan_t;


static tg_mtok_t tg_cluster_cap_mtok(const tg_cluster_conf_t *cc);
static tg_mtok_t tg_cluster_reserve_mtok(const tg_cluster_conf_t *cc);
static tg_msec_t tg_cluster_window_ms(const tg_cluster_conf_t *cc);
static tg_msec_t tg_cluster_ttl_ms(const tg_cluster_conf_t *cc);
static void tg_cluster_refill(tg_cluster_t *c, const tg_cluster_conf_t *cc,
    tg_msec_t now_ms);
static int64_t tg_usage_epoch(const tg_cluster_conf_t *cc, tg_msec_t now_ms);
static void tg_usage_add(tg_cluster_t *c, const tg_cluster_conf_t *cc,
    tg_mtok_t used_mtok, tg_msec_t now_ms);
static uint64_t tg_usage_sum(tg_cluster_t *c, const tg_cluster_conf_t *cc,
    tg_msec_t now_ms);
static uint32_t tg_usage_permille(uint64_t used_mtok,
    const tg_cluster_conf_t *cc);
static int tg_usage_at_least(uint64_t used_mtok, const tg_cluster_conf_t *cc,
    uint32_t permille);
static uint64_t tg_usage_mtok(const tg_cluster_t *c,
    const tg_cluster_conf_t *cc, tg_msec_t now_ms);
static uint64_t tg_app_burst_tps(const tg_app_conf_t *ac);
static tg_mtok_t tg_app_cap_mtok(const tg_app_conf_t *ac, uint64_t rate_tps);
static uint64_t tg_app_borrow_unit_mtok(const tg_app_conf_t *ac);
static uint64_t tg_app_debt_room(const tg_app_t *a, const tg_app_conf_t *ac);
static void tg_acquire_refuse(const tg_cluster_t *c,
    const tg_cluster_conf_t *cc, const tg_app_t *a, const tg_app_conf_t *ac,
    uint64_t want_tokens, uint64_t min_tokens, int burst_ok, int borrow_ok,
    tg_grant_t *g);
static void tg_acquire_apply(tg_cluster_t *c, const tg_cluster_conf_t *cc,
    tg_app_t *a, const tg_app_conf_t *ac, const tg_plan_t *plan,
    tg_msec_t now_ms, tg_grant_t *g);
static tg_msec_t tg_retry_ms(tg_mtok_t missing_mtok, uint64_t rate_tps);
static tg_msec_t tg_retry_clamp(tg_msec_t from_ms, tg_msec_t to_ms,
    tg_msec_t max_ms);


static const char  *tg_layer_names[] = {
    "none",
    "cluster",
    "guaranteed",
    "burst",
    "debt",
    "local"
};


/* L1: the storage cluster */

void
tg_cluster_conf_default(tg_cluster_conf_t *cc)
{
    cc->capacity_tps = 0;
    cc->reserved_permille = 200;
    cc->window_ms = TG_WINDOW_MS_DEFAULT;
    cc->emergency_permille = TG_EMERGENCY_PERMILLE_DEFAULT;
    cc->emergency_ttl_ms = TG_EMERGENCY_TTL_MS_DEFAULT;
}


void
tg_cluster_init(tg_cluster_t *c, const tg_cluster_conf_t *cc,
    tg_msec_t now_ms)
{
    int64_t  epoch;
    size_t   i;

    tg_bucket_init(&c->pool, tg_cluster_cap_mtok(cc), now_ms);

    /* slots stamped with a period already out of the window count 0 */
    epoch = tg_usage_epoch(cc, now_ms);

    for (i = 0; i < TG_USAGE_SLOTS; i++) {
        c->slot_mtok[i] = 0;
        c->slot_epoch[i] = epoch - TG_USAGE_SLOTS;
    }

    c->emergency = TG_EMERGENCY_OFF;
    c->emergency_until_ms = now_ms;
    c->auto_hold_until_ms = TG_MSEC_NEVER;

    c->usage_epoch = epoch;
    c->usage_mtok = 0;
}


uint32_t
tg_cluster_usage_permille(const tg_cluster_t *c, const tg_cluster_conf_t *cc,
    tg_msec_t now_ms)
{
    return tg_usage_permille(tg_usage_mtok(c, cc, now_ms), cc);
}


/*
 * tg_usage_permille(used) >= permille, without its two divisions:
 * floor(used * 1000 / window) >= p is used * 1000 >= p * window for
 * integers, when neither product can wrap; otherwise it divides.
 */

static int
tg_usage_at_least(uint64_t used_mtok, const tg_cluster_conf_t *cc,
    uint32_t permille)
{
    uint64_t  capacity_tps, window_mtok;

    capacity_tps = tg_tokens_clamp(cc->capacity_tps);

    /* capacity < 2^26 and window <= a day < 2^27: window below 2^53 */

    if (capacity_tps > 0 && capacity_tps < ((uint64_t) 1 << 26)
        && used_mtok < ((uint64_t) 1 << 53) && permille <= 1000)
    {
        window_mtok = capacity_tps * (uint64_t) tg_cluster_window_ms(cc);

        return used_mtok * 1000 >= (uint64_t) permille * window_mtok;
    }

    return tg_usage_permille(used_mtok, cc) >= permille;
}


static uint32_t
tg_usage_permille(uint64_t used_mtok, const tg_cluster_conf_t *cc)
{
    uint64_t  capacity_tps, window_mtok, whole, rest;

    capacity_tps = tg_tokens_clamp(cc->capacity_tps);

    if (capacity_tps == 0) {
        return used_mtok > 0 ? 1000 : 0;
    }

    /*
     * tokens/s times ms is mtok.  used * 1000 / window could overflow,
     * so the quotient and the remainder are scaled apart; the result
     * is the same floor.
     */
    window_mtok = tg_mul_sat(capacity_tps, (uint64_t) tg_cluster_window_ms(cc),
                             UINT64_MAX / 1000);

    whole = used_mtok / window_mtok;
    rest = used_mtok % window_mtok;

    if (whole >= UINT32_MAX / 1000) {
        return UINT32_MAX;
    }

    return (uint32_t) (whole * 1000 + rest * 1000 / window_mtok);
}


int
tg_cluster_emergency_active(tg_cluster_t *c, const tg_cluster_conf_t *cc,
    tg_msec_t now_ms)
{
    if (c->emergency != TG_EMERGENCY_OFF && now_ms >= c->emergency_until_ms) {
        c->emergency = TG_EMERGENCY_OFF;
    }

    /* an operator's emergency is neither shortened nor taken over */
    if (c->emergency == TG_EMERGENCY_MANUAL
        || cc->emergency_permille == 0
        || now_ms < c->auto_hold_until_ms)
    {
        return c->emergency != TG_EMERGENCY_OFF;
    }

    if (tg_usage_at_least(tg_usage_sum(c, cc, now_ms), cc,
                          cc->emergency_permille))
    {
        c->emergency = TG_EMERGENCY_AUTO;
        c->emergency_until_ms = tg_msec_after(now_ms, tg_cluster_ttl_ms(cc));
    }

    return c->emergency != TG_EMERGENCY_OFF;
}


void
tg_cluster_emergency_set(tg_cluster_t *c, const tg_cluster_conf_t *cc,
    tg_emergency_e mode, int on, tg_msec_t ttl_ms, tg_msec_t now_ms)
{
    if (mode == TG_EMERGENCY_AUTO) {
        c->auto_hold_until_ms = TG_MSEC_NEVER;

        if (c->emergency == TG_EMERGENCY_MANUAL) {
            c->emergency = TG_EMERGENCY_OFF;
        }

        return;
    }

    if (on) {
        c->emergency = TG_EMERGENCY_MANUAL;
        c->emergency_until_ms = tg_msec_after(now_ms,
                                       ttl_ms > 0 ? ttl_ms
                                                  : tg_cluster_ttl_ms(cc));
        return;
    }

    c->emergency = TG_EMERGENCY_OFF;
    c->emergency_until_ms = now_ms;
    c->auto_hold_until_ms = tg_msec_after(now_ms, tg_cluster_ttl_ms(cc));
}


static tg_mtok_t
tg_cluster_cap_mtok(const tg_cluster_conf_t *cc)
{
    return tg_mtok(tg_tokens_clamp(cc->capacity_tps));
}


static tg_mtok_t
tg_cluster_reserve_mtok(const tg_cluster_conf_t *cc)
{
    uint64_t  permille;

    permille = cc->reserved_permille < 1000 ? cc->reserved_permille : 1000;

    /* the cap is below 2^53, so times 1000 stays below 2^63 */
    return (tg_mtok_t) ((uint64_t) tg_cluster_cap_mtok(cc) * permille / 1000);
}


static tg_msec_t
tg_cluster_window_ms(const tg_cluster_conf_t *cc)
{
    if (cc->window_ms <= 0) {
        return TG_WINDOW_MS_DEFAULT;
    }

    /* each slot at least 1 ms long */
    return tg_clamp_i64(cc->window_ms, TG_USAGE_SLOTS, TG_ELAPSED_MAX_MS);
}


static tg_msec_t
tg_cluster_ttl_ms(const tg_cluster_conf_t *cc)
{
    return cc->emergency_ttl_ms > 0 ? cc->emergency_ttl_ms
                                    : TG_EMERGENCY_TTL_MS_DEFAULT;
}


static void
tg_cluster_refill(tg_cluster_t *c, const tg_cluster_conf_t *cc,
    tg_msec_t now_ms)
{
    (void) tg_bucket_refill(&c->pool, cc->capacity_tps,
                            tg_cluster_cap_mtok(cc), now_ms);
}


/* the number of the slot period now_ms falls in */

static int64_t
tg_usage_epoch(const tg_cluster_conf_t *cc, tg_msec_t now_ms)
{
    tg_msec_t  slot_ms;
    int64_t    epoch;

    slot_ms = tg_cluster_window_ms(cc) / TG_USAGE_SLOTS;
    epoch = now_ms / slot_ms;

    /* floor, not truncation, for a clock whose origin makes it negative */
    if (now_ms % slot_ms < 0) {
        epoch--;
    }

    return epoch;
}


static void
tg_usage_add(tg_cluster_t *c, const tg_cluster_conf_t *cc,
    tg_mtok_t used_mtok, tg_msec_t now_ms)
{
    int64_t  epoch, i;

    epoch = tg_usage_epoch(cc, now_ms);

    i = epoch % TG_USAGE_SLOTS;
    if (i < 0) {
        i += TG_USAGE_SLOTS;
    }

    /* the slot still holds a period that left the window: reuse it */
    if (c->slot_epoch[i] != epoch) {
        c->slot_epoch[i] = epoch;
        c->slot_mtok[i] = 0;
    }

    c->slot_mtok[i] = tg_mtok_add(c->slot_mtok[i], used_mtok);

    if (c->usage_epoch == epoch && used_mtok > 0) {
        c->usage_mtok += (uint64_t) used_mtok;
    }
}


/*
 * The same sum as tg_usage_mtok(), walked only when the slot period
 * changed since the last walk; tg_usage_add() keeps it current between.
 */

static uint64_t
tg_usage_sum(tg_cluster_t *c, const tg_cluster_conf_t *cc, tg_msec_t now_ms)
{
    int64_t  epoch;

    epoch = tg_usage_epoch(cc, now_ms);

    if (c->usage_epoch != epoch) {
        c->usage_mtok = tg_usage_mtok(c, cc, now_ms);
        c->usage_epoch = epoch;
    }

    return c->usage_mtok;
}


static uint64_t
tg_usage_mtok(const tg_cluster_t *c, const tg_cluster_conf_t *cc,
    tg_msec_t now_ms)
{
    int64_t   epoch;
    uint64_t  sum_mtok;
    size_t    i;

    epoch = tg_usage_epoch(cc, now_ms);
    sum_mtok = 0;

    /*
     * A slot counts when its period is the current one or one of the
     * SLOTS - 1 before it.  One stamped in the future (the clock went
     * back) counts 0 until it is reused.
     */
    for (i = 0; i < TG_USAGE_SLOTS; i++) {
        if (c->slot_epoch[i] <= epoch
            && (uint64_t) epoch - (uint64_t) c->slot_epoch[i] < TG_USAGE_SLOTS
            && c->slot_mtok[i] > 0)
        {
            sum_mtok += (uint64_t) c->slot_mtok[i];
        }
    }

    return sum_mtok;
}


/* L2: the application */

void
tg_app_conf_default(tg_app_conf_t *ac)
{
    ac->guaranteed_tps = 0;
    ac->burst_tps = 0;
    ac->max_borrow_tokens = 0;
    ac->priority = 1;
    ac->interest_permille = TG_INTEREST_PERMILLE_DEFAULT;
    ac->bucket_ms = TG_BUCKET_MS_DEFAULT;
}


void
tg_app_init(tg_app_t *a, const tg_app_conf_t *ac, tg_msec_t now_ms)
{
    uint64_t  guaranteed_tps;

    guaranteed_tps = tg_tokens_clamp(ac->guaranteed_tps);

    tg_bucket_init(&a->guaranteed, tg_app_cap_mtok(ac, guaranteed_tps),
                   now_ms);
    tg_bucket_init(&a->burst, tg_app_cap_mtok(ac, tg_app_burst_tps(ac)),
                   now_ms);
    a->debt_mtok = 0;
}


void
tg_app_refill(tg_app_t *a, const tg_app_conf_t *ac, tg_msec_t now_ms)
{
    uint64_t   guaranteed_tps, burst_tps;
    tg_mtok_t  produced_mtok, paid_mtok;

    guaranteed_tps = tg_tokens_clamp(ac->guaranteed_tps);
    burst_tps = tg_app_burst_tps(ac);

    /* what the guaranteed rate produced pays the debt before the bucket */
    produced_mtok = tg_bucket_accrue(&a->guaranteed, guaranteed_tps, now_ms);
    paid_mtok = produced_mtok < a->debt_mtok ? produced_mtok : a->debt_mtok;

    a->debt_mtok -= paid_mtok;
    (void) tg_bucket_fill(&a->guaranteed, produced_mtok - paid_mtok,
                          tg_app_cap_mtok(ac, guaranteed_tps));

    (void) tg_bucket_refill(&a->burst, burst_tps,
                            tg_app_cap_mtok(ac, burst_tps), now_ms);
}


const char *
tg_layer_name(tg_layer_e layer)
{
    if ((size_t) layer >= sizeof(tg_layer_names) / sizeof(tg_layer_names[0]))
    {
        return "none";
    }

    return tg_layer_names[layer];
}


int
tg_acquire(tg_cluster_t *c, const tg_cluster_conf_t *cc, tg_app_t *a,
    const tg_app_conf_t *ac, uint64_t want_tokens, uint64_t min_tokens,
    tg_msec_t now_ms, tg_grant_t *g)
{
    int         emergency, burst_ok, borrow_ok;
    uint32_t    priority;
    uint64_t    got_tokens;
    tg_mtok_t   pool_mtok, reserve_mtok;
    tg_plan_t   plan;

    if (min_tokens == 0 || min_tokens > want_tokens) {
        return TG_ERROR;
    }

    want_tokens = tg_tokens_clamp(want_tokens);
    min_tokens = tg_tokens_clamp(min_tokens);
    priority = ac->priority < TG_PRIORITY_MAX ? ac->priority
                                              : TG_PRIORITY_MAX;

    g->granted_tokens = 0;
    g->from_guaranteed = 0;
    g->from_burst = 0;
    g->borrowed = 0;
    g->layer = TG_LAYER_NONE;
    g->retry_after_ms = 0;

    tg_cluster_refill(c, cc, now_ms);
    tg_app_refill(a, ac, now_ms);

    emergency = tg_cluster_emergency_active(c, cc, now_ms);
    g->emergency = emergency;

    if (emergency && priority >= 2) {
        g->layer = TG_LAYER_CLUSTER;
        g->retry_after_ms = tg_retry_clamp(now_ms, c->emergency_until_ms,
                                           TG_RETRY_EMERGENCY_MS);
        return TG_OK;
    }

    burst_ok = !(emergency && priority >= 1);
    borrow_ok = !emergency && ac->max_borrow_tokens > 0;
    reserve_mtok = tg_cluster_reserve_mtok(cc);

    /* guaranteed tokens may take the pool down to zero */
    plan.from_guaranteed = tg_min_u64(want_tokens,
                               tg_min_u64(tg_offer(a->guaranteed.level_mtok),
                                          tg_offer(c->pool.level_mtok)));
    pool_mtok = c->pool.level_mtok - tg_mtok(plan.from_guaranteed);

    /* everything else only from above the reserve */
    plan.from_burst = 0;

    if (burst_ok) {
        plan.from_burst = tg_min_u64(want_tokens - plan.from_guaranteed,
                              tg_min_u64(tg_offer(a->burst.level_mtok),
                                         tg_offer_above(pool_mtok,
                                                        reserve_mtok)));
        pool_mtok -= tg_mtok(plan.from_burst);
    }

    got_tokens = plan.from_guaranteed + plan.from_burst;
    plan.borrowed = 0;

    if (borrow_ok && got_tokens < min_tokens) {
        plan.borrowed = tg_min_u64(min_tokens - got_tokens,
                            tg_min_u64(tg_app_debt_room(a, ac),
                                       tg_offer_above(pool_mtok,
                                                      reserve_mtok)));
        got_tokens += plan.borrowed;
    }

    if (got_tokens < min_tokens) {
        tg_acquire_refuse(c, cc, a, ac, want_tokens, min_tokens, burst_ok,
                          borrow_ok, g);
        return TG_OK;
    }

    tg_acquire_apply(c, cc, a, ac, &plan, now_ms, g);

    return TG_OK;
}


/*
 * Names the layer that stopped a request and when the missing amount
 * will have accrued.  Nothing is changed: a refusal only refilled.
 */

static void
tg_acquire_refuse(const tg_cluster_t *c, const tg_cluster_conf_t *cc,
    const tg_app_t *a, const tg_app_conf_t *ac, uint64_t want_tokens,
    uint64_t min_tokens, int burst_ok, int borrow_ok, tg_grant_t *g)
{
    uint64_t   app_g, app_b, app_borrow, rate_tps, short_tokens;
    tg_mtok_t  need_mtok, have_mtok;

    /* what the application alone could have given, pool aside */
    app_g = tg_min_u64(want_tokens, tg_offer(a->guaranteed.level_mtok));
    app_b = burst_ok ? tg_min_u64(want_tokens - app_g,
                                  tg_offer(a->burst.level_mtok))
                     : 0;
    app_borrow = 0;

    if (borrow_ok && app_g + app_b < min_tokens) {
        app_borrow = tg_min_u64(min_tokens - app_g - app_b,
                                tg_app_debt_room(a, ac));
    }

    if (app_g + app_b + app_borrow >= min_tokens) {
        /* guaranteed tokens need the pool above 0, the rest above reserve */
        need_mtok = tg_mtok(min_tokens);
        if (min_tokens > app_g) {
            need_mtok = tg_mtok_add(need_mtok, tg_cluster_reserve_mtok(cc));
        }

        g->layer = TG_LAYER_CLUSTER;
        g->retry_after_ms = tg_retry_ms(need_mtok - c->pool.level_mtok,
                                        tg_tokens_clamp(cc->capacity_tps));
        return;
    }

    if (borrow_ok) {
        /* refill pays the debt down at the guaranteed rate */
        short_tokens = min_tokens - app_g - app_b - app_borrow;

        g->layer = TG_LAYER_DEBT;
        g->retry_after_ms = tg_retry_ms(
                                (tg_mtok_t) tg_mul_sat(short_tokens,
                                           tg_app_borrow_unit_mtok(ac),
                                           (uint64_t) TG_MTOK_MAX),
                                tg_tokens_clamp(ac->guaranteed_tps));
        return;
    }

    /* the refill pays the debt first, so the debt counts as missing */
    need_mtok = tg_mtok_add(tg_mtok(min_tokens), a->debt_mtok);
    have_mtok = a->guaranteed.level_mtok > 0 ? a->guaranteed.level_mtok : 0;

    if (burst_ok && tg_app_burst_tps(ac) > 0) {
        if (a->burst.level_mtok > 0) {
            have_mtok += a->burst.level_mtok;
        }

        rate_tps = tg_tokens_clamp(ac->burst_tps);
        g->layer = TG_LAYER_BURST;

    } else {
        rate_tps = tg_tokens_clamp(ac->guaranteed_tps);
        g->layer = TG_LAYER_GUARANTEED;
    }

    g->retry_after_ms = tg_retry_ms(need_mtok - have_mtok, rate_tps);
}


static void
tg_acquire_apply(tg_cluster_t *c, const tg_cluster_conf_t *cc, tg_app_t *a,
    const tg_app_conf_t *ac, const tg_plan_t *plan, tg_msec_t now_ms,
    tg_grant_t *g)
{
    uint64_t   total_tokens;
    tg_mtok_t  interest_mtok;

    total_tokens = plan->from_guaranteed + plan->from_burst + plan->borrowed;
    interest_mtok = (tg_mtok_t) tg_mul_sat(plan->borrowed,
                                           tg_app_borrow_unit_mtok(ac),
                                           (uint64_t) TG_MTOK_MAX);

    a->guaranteed.level_mtok -= tg_mtok(plan->from_guaranteed);
    a->burst.level_mtok -= tg_mtok(plan->from_burst);
    a->debt_mtok = tg_mtok_add(a->debt_mtok, interest_mtok);

    c->pool.level_mtok -= tg_mtok(total_tokens);
    tg_usage_add(c, cc, tg_mtok(total_tokens), now_ms);

    g->granted_tokens = total_tokens;
    g->from_guaranteed = plan->from_guaranteed;
    g->from_burst = plan->from_burst;
    g->borrowed = plan->borrowed;

    if (plan->borrowed > 0) {
        g->layer = TG_LAYER_DEBT;

    } else if (plan->from_burst > 0) {
        g->layer = TG_LAYER_BURST;

    } else {
        g->layer = TG_LAYER_GUARANTEED;
    }
}


void
tg_settle(tg_cluster_t *c, const tg_cluster_conf_t *cc, tg_app_t *a,
    const tg_app_conf_t *ac, int64_t delta_tokens, tg_msec_t now_ms)
{
    uint64_t   tokens;
    tg_mtok_t  delta_mtok;

    tg_cluster_refill(c, cc, now_ms);
    tg_app_refill(a, ac, now_ms);

    if (delta_tokens == 0) {
        return;
    }

    /* unsigned negation is exact even for INT64_MIN */
    tokens = delta_tokens > 0 ? (uint64_t) delta_tokens
                              : -(uint64_t) delta_tokens;
    delta_mtok = tg_mtok(tg_tokens_clamp(tokens));

    if (delta_tokens > 0) {
        /* the cluster already served it: it was used, the app owes it */
        a->debt_mtok = tg_mtok_add(a->debt_mtok, delta_mtok);
        c->pool.level_mtok = tg_mtok_add(c->pool.level_mtok, -delta_mtok);
        tg_usage_add(c, cc, delta_mtok, now_ms);
        return;
    }

    (void) tg_bucket_fill(&a->guaranteed, delta_mtok,
                          tg_app_cap_mtok(ac,
                              tg_tokens_clamp(ac->guaranteed_tps)));
    (void) tg_bucket_fill(&c->pool, delta_mtok, tg_cluster_cap_mtok(cc));
}


uint64_t
tg_borrow(tg_cluster_t *c, const tg_cluster_conf_t *cc, tg_app_t *a,
    const tg_app_conf_t *ac, uint64_t tokens, tg_msec_t now_ms)
{
    uint64_t   lent_tokens;

    tg_cluster_refill(c, cc, now_ms);
    tg_app_refill(a, ac, now_ms);

    lent_tokens = tg_min_u64(tg_tokens_clamp(tokens),
                      tg_min_u64(tg_app_debt_room(a, ac),
                                 tg_offer_above(c->pool.level_mtok,
                                                tg_cluster_reserve_mtok(cc))));

    a->guaranteed.level_mtok = tg_mtok_add(a->guaranteed.level_mtok,
                                           tg_mtok(lent_tokens));
    a->debt_mtok = tg_mtok_add(a->debt_mtok,
                               (tg_mtok_t) tg_mul_sat(lent_tokens,
                                           tg_app_borrow_unit_mtok(ac),
                                           (uint64_t) TG_MTOK_MAX));

    return lent_tokens;
}


uint64_t
tg_repay(tg_app_t *a, const tg_app_conf_t *ac, uint64_t tokens,
    tg_msec_t now_ms)
{
    uint64_t   owed_tokens, repaid_tokens;
    tg_mtok_t  repaid_mtok;

    tg_app_refill(a, ac, now_ms);

    /* a part of a token of debt takes a whole token to clear */
    owed_tokens = ((uint64_t) a->debt_mtok + TG_MTOK_PER_TOKEN - 1)
                  / TG_MTOK_PER_TOKEN;

    repaid_tokens = tg_min_u64(tokens,
                        tg_min_u64(owed_tokens,
                                   tg_offer(a->guaranteed.level_mtok)));
    repaid_mtok = tg_mtok(repaid_tokens);

    a->guaranteed.level_mtok -= repaid_mtok;
    a->debt_mtok -= repaid_mtok < a->debt_mtok ? repaid_mtok : a->debt_mtok;

    return repaid_tokens;
}


static uint64_t
tg_app_burst_tps(const tg_app_conf_t *ac)
{
    uint64_t  guaranteed_tps, burst_tps;

    guaranteed_tps = tg_tokens_clamp(ac->guaranteed_tps);
    burst_tps = tg_tokens_clamp(ac->burst_tps);

    return burst_tps > guaranteed_tps ? burst_tps - guaranteed_tps : 0;
}


/* a bucket holds bucket_ms of its rate: tokens/s times ms is mtok */

static tg_mtok_t
tg_app_cap_mtok(const tg_app_conf_t *ac, uint64_t rate_tps)
{
    tg_msec_t  bucket_ms;

    bucket_ms = ac->bucket_ms > 0 ? ac->bucket_ms : TG_BUCKET_MS_DEFAULT;
    if (bucket_ms > TG_ELAPSED_MAX_MS) {
        bucket_ms = TG_ELAPSED_MAX_MS;
    }

    return (tg_mtok_t) tg_mul_sat(rate_tps, (uint64_t) bucket_ms,
                                  (uint64_t) TG_MTOK_MAX);
}


/* the debt one borrowed token costs, interest included */

static uint64_t
tg_app_borrow_unit_mtok(const tg_app_conf_t *ac)
{
    return TG_MTOK_PER_TOKEN + (uint64_t) ac->interest_permille;
}


/* whole tokens the application may still borrow under max_borrow */

static uint64_t
tg_app_debt_room(const tg_app_t *a, const tg_app_conf_t *ac)
{
    tg_mtok_t  room_mtok;

    room_mtok = tg_mtok(tg_tokens_clamp(ac->max_borrow_tokens))
                - a->debt_mtok;

    if (room_mtok <= 0) {
        return 0;
    }

    return (uint64_t) room_mtok / tg_app_borrow_unit_mtok(ac);
}


static tg_msec_t
tg_retry_ms(tg_mtok_t missing_mtok, uint64_t rate_tps)
{
    uint64_t  wait_ms;

    if (rate_tps == 0) {
        return TG_RETRY_NO_RATE_MS;
    }

    if (missing_mtok <= 0) {
        return TG_RETRY_MIN_MS;
    }

    /* mtok divided by tokens/s is ms; rounded up, never too early */
    wait_ms = ((uint64_t) missing_mtok + rate_tps - 1) / rate_tps;

    return tg_retry_clamp(0, (tg_msec_t) tg_min_u64(wait_ms, TG_RETRY_MAX_MS),
                          TG_RETRY_MAX_MS);
}


/* to_ms - from_ms, clamped to [TG_RETRY_MIN_MS, max_ms] */

static tg_msec_t
tg_retry_clamp(tg_msec_t from_ms, tg_msec_t to_ms, tg_msec_t max_ms)
{
    uint64_t  wait_ms;

    if (to_ms <= from_ms) {
        return TG_RETRY_MIN_MS;
    }

    wait_ms = (uint64_t) to_ms - (uint64_t) from_ms;

    if (wait_ms > (uint64_t) max_ms) {
        return max_ms;
    }

    return wait_ms < TG_RETRY_MIN_MS ? TG_RETRY_MIN_MS : (tg_msec_t) wait_ms;
}
