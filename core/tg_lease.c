/*
 * Copyright (C) Tollgate developers
 *
 * L3: the gateway's lease of one application's tokens.  The lease holds
 * about horizon_ms of the demand it has seen, so that most requests are
 * decided from it and Redis is asked rarely, in batches.  While demand
 * holds steady and L2 has far more left than the leases could take, the
 * horizon stretches (up to stretch_max times): refills then come a few
 * times a second whatever the rate, and the tokens this adds to the
 * leases stay a small share of what L2 has left (tg_core.h).
 */


#include "tg_internal.h"


static void tg_lease_sample(tg_lease_t *l, const tg_lease_conf_t *lc,
    tg_msec_t now_ms);
static uint64_t tg_lease_base(const tg_lease_t *l, const tg_lease_conf_t *lc);
static uint32_t tg_lease_stretch_max(const tg_lease_conf_t *lc);
static uint64_t tg_lease_target_clamp(const tg_lease_conf_t *lc,
    uint64_t tokens);


void
tg_lease_conf_default(tg_lease_conf_t *lc)
{
    lc->min_tokens = TG_LEASE_MIN_TOKENS_DEFAULT;
    lc->max_tokens = TG_LEASE_MAX_TOKENS_DEFAULT;
    lc->horizon_ms = TG_LEASE_HORIZON_MS_DEFAULT;
    lc->low_water_permille = TG_LEASE_LOW_PERMILLE_DEFAULT;
    lc->stretch_max = TG_LEASE_STRETCH_MAX_DEFAULT;
}


void
tg_lease_init(tg_lease_t *l, const tg_lease_conf_t *lc, tg_msec_t now_ms)
{
    l->balance_tokens = 0;
    l->target_tokens = tg_lease_target_clamp(lc, 0);
    l->demand_mtps = 0;
    l->epoch_ms = now_ms;
    l->epoch_tokens = 0;
    l->denied_until_ms = TG_MSEC_NEVER;
    l->refill_inflight = 0;
    l->steady_epochs = 0;
    l->l2_plenty = 0;
}


tg_lease_decision_e
tg_lease_take(tg_lease_t *l, const tg_lease_conf_t *lc, uint64_t cost_tokens,
    tg_msec_t now_ms)
{
    uint64_t  low_tokens;

    tg_lease_sample(l, lc, now_ms);

    if (now_ms < l->denied_until_ms) {
        return TG_LEASE_DENIED;
    }

    cost_tokens = tg_tokens_clamp(cost_tokens);
    l->epoch_tokens = tg_min_u64(l->epoch_tokens + cost_tokens,
                                 (uint64_t) TG_MTOK_MAX);

    if (l->balance_tokens < (int64_t) cost_tokens) {
        l->refill_inflight = 1;
        return TG_LEASE_MISS;
    }

    l->balance_tokens -= (int64_t) cost_tokens;

    low_tokens = tg_mul_sat(l->target_tokens, lc->low_water_permille,
                            UINT64_MAX) / 1000;

    /* one refill at a time: the next signal waits for its answer */
    if (!l->refill_inflight && (uint64_t) l->balance_tokens < low_tokens) {
        l->refill_inflight = 1;
        return TG_LEASE_HIT_REFILL;
    }

    return TG_LEASE_HIT;
}


uint64_t
tg_lease_want(const tg_lease_t *l, const tg_lease_conf_t *lc,
    uint64_t l2_remaining_tokens, uint32_t live_gateways)
{
    uint64_t  need_tokens, share_tokens;

    (void) lc;

    if (l->balance_tokens >= 0
        && (uint64_t) l->balance_tokens >= l->target_tokens)
    {
        return 0;
    }

    need_tokens = l->target_tokens - (uint64_t) l->balance_tokens;

    if (l2_remaining_tokens == 0) {
        return 0;
    }

    /*
     * A fair share keeps a nearly spent quota from being stranded in
     * one gateway; at least one token, or a small remainder split among
     * many gateways would reach none of them.
     */
    share_tokens = l2_remaining_tokens
                   / (live_gateways > 0 ? live_gateways : 1);
    if (share_tokens == 0) {
        share_tokens = 1;
    }

    return tg_min_u64(need_tokens, share_tokens);
}


void
tg_lease_granted(tg_lease_t *l, uint64_t tokens, tg_msec_t now_ms)
{
    (void) now_ms;

    l->balance_tokens = tg_mtok_add(l->balance_tokens,
                                    (int64_t) tg_tokens_clamp(tokens));
    l->refill_inflight = 0;
}


void
tg_lease_denied(tg_lease_t *l, tg_msec_t until_ms)
{
    l->denied_until_ms = until_ms;
    l->refill_inflight = 0;
}


void
tg_lease_l2_left(tg_lease_t *l, const tg_lease_conf_t *lc,
    uint64_t l2_remaining_tokens, uint32_t live_gateways)
{
    uint64_t  share_tokens, full_tokens, base_tokens;
    unsigned  was_plenty;

    share_tokens = l2_remaining_tokens
                   / (live_gateways > 0 ? live_gateways : 1);

    /*
     * Judged against the target stretched to the most, not the current
     * one: a lease that stretched would otherwise find L2 short at its
     * next grant, shrink, find L2 plentiful again, and swing.
     */

    full_tokens = tg_lease_target_clamp(lc,
                      tg_mul_sat(tg_lease_base(l, lc),
                                 tg_lease_stretch_max(lc), UINT64_MAX));

    was_plenty = l->l2_plenty;
    l->l2_plenty = share_tokens / TG_LEASE_PLENTY_TARGETS >= full_tokens;

    /*
     * Running short ends the stretch at once, before the next refill
     * asks for a stretched target; a stretch waits for the next epoch.
     */

    if (was_plenty && !l->l2_plenty) {
        base_tokens = tg_lease_target_clamp(lc, tg_lease_base(l, lc));
        l->target_tokens = tg_min_u64(l->target_tokens, base_tokens);
    }
}


/*
 * Closes the demand epoch once TG_LEASE_EPOCH_MS has passed (sooner for
 * a lease with no estimate yet, see tg_core.h), and moves the target
 * toward horizon_ms of the demand seen, stretched while demand is steady
 * and L2 has plenty.
 */

static void
tg_lease_sample(tg_lease_t *l, const tg_lease_conf_t *lc, tg_msec_t now_ms)
{
    uint64_t   sample_mtps, idle_epochs, before_mtps, stretch;
    tg_msec_t  elapsed_ms;

    /* a clock that went back restarts the epoch, keeping what it counted */
    if (now_ms < l->epoch_ms) {
        l->epoch_ms = now_ms;
        return;
    }

    elapsed_ms = now_ms - l->epoch_ms;

    if (elapsed_ms < TG_LEASE_EPOCH_MS) {

        /* no estimate yet, and demand already well past the target */

        if (l->demand_mtps == 0 && elapsed_ms >= TG_LEASE_COLD_MIN_MS
            && l->epoch_tokens >= tg_mul_sat(l->target_tokens,
                                             TG_LEASE_COLD_TARGETS,
                                             UINT64_MAX))
        {
            l->demand_mtps = tg_mul_sat(l->epoch_tokens, 1000 * 1000,
                                        (uint64_t) TG_MTOK_MAX)
                             / (uint64_t) elapsed_ms;
            l->epoch_ms = now_ms;
            l->epoch_tokens = 0;
            l->steady_epochs = 0;
            l->target_tokens = tg_lease_target_clamp(lc,
                                                     tg_lease_base(l, lc));
        }

        return;
    }

    /* tokens per epoch to milli-tokens per second */
    sample_mtps = tg_mul_sat(l->epoch_tokens,
                             1000 * 1000 / TG_LEASE_EPOCH_MS,
                             (uint64_t) TG_MTOK_MAX);

    /* a new sample weighs 1/4; with no estimate yet, it is the estimate */
    before_mtps = l->demand_mtps;
    l->demand_mtps = before_mtps == 0 ? sample_mtps
                                      : (3 * before_mtps + sample_mtps) / 4;

    /* every later whole epoch passed with no demand: a sample of 0 each */
    idle_epochs = (uint64_t) (elapsed_ms / TG_LEASE_EPOCH_MS) - 1;

    while (idle_epochs > 0 && l->demand_mtps > 0) {
        l->demand_mtps = 3 * l->demand_mtps / 4;
        idle_epochs--;
    }

    l->epoch_ms = now_ms - elapsed_ms % TG_LEASE_EPOCH_MS;
    l->epoch_tokens = 0;

    /* steady: one epoch just after the other, near what was expected */

    if (elapsed_ms < 2 * TG_LEASE_EPOCH_MS && before_mtps > 0
        && sample_mtps >= before_mtps - before_mtps / 4
        && sample_mtps <= before_mtps + before_mtps / 4)
    {
        if (l->steady_epochs < TG_LEASE_STEADY_EPOCHS_MAX) {
            l->steady_epochs++;
        }

    } else {
        l->steady_epochs = 0;
    }

    stretch = 1;

    if (l->l2_plenty) {
        stretch = tg_min_u64(1 + l->steady_epochs / TG_LEASE_STEADY_EPOCHS,
                             tg_lease_stretch_max(lc));
    }

    l->target_tokens = tg_lease_target_clamp(lc,
                           tg_mul_sat(tg_lease_base(l, lc), stretch,
                                      UINT64_MAX));
}


/* horizon_ms of the demand estimate, in tokens, before any clamp */

static uint64_t
tg_lease_base(const tg_lease_t *l, const tg_lease_conf_t *lc)
{
    tg_msec_t  horizon_ms;

    horizon_ms = lc->horizon_ms > 0 ? lc->horizon_ms
                                    : TG_LEASE_HORIZON_MS_DEFAULT;

    /* mtok/s times ms is micro-tokens */
    return tg_mul_sat(l->demand_mtps, (uint64_t) horizon_ms, UINT64_MAX)
           / 1000 / 1000;
}


static uint32_t
tg_lease_stretch_max(const tg_lease_conf_t *lc)
{
    return lc->stretch_max > 1 ? lc->stretch_max : 1;
}


static uint64_t
tg_lease_target_clamp(const tg_lease_conf_t *lc, uint64_t tokens)
{
    uint64_t  min_tokens, max_tokens;

    min_tokens = tg_tokens_clamp(lc->min_tokens);
    max_tokens = tg_tokens_clamp(lc->max_tokens);

    /* a maximum below the minimum is read as the minimum */
    if (tokens > max_tokens) {
        tokens = max_tokens;
    }

    return tokens > min_tokens ? tokens : min_tokens;
}
