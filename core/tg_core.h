/*
 * Copyright (C) Tollgate developers
 *
 * The Tollgate core: the cost model, token buckets, the L1 (storage
 * cluster) and L2 (application) quota rules and the L3 lease policy.
 *
 * The core is pure C: no nginx, no Redis, no allocation, no printing.
 * Every function takes the clock as an argument (milliseconds, from any
 * origin the caller keeps consistent), so tests can step time.
 *
 * Units: rates are whole tokens per second (tps).  Balances are kept in
 * milli-tokens (mtok) so that rate_tps * elapsed_ms is exactly the refill
 * in mtok: nothing is rounded away, however uneven the steps.
 *
 * The same rules are implemented by the Redis scripts in redis/; the
 * shared vectors in tests/vectors/ are run against both.
 */


#ifndef _TG_CORE_H_INCLUDED_
#define _TG_CORE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


typedef int64_t  tg_msec_t;
typedef int64_t  tg_mtok_t;


#define TG_MTOK_PER_TOKEN        1000

/* no single cost or rate may exceed this; larger inputs saturate */
#define TG_TOKENS_MAX            ((uint64_t) 1 << 40)

/* every milli-token quantity stays within +-TG_MTOK_MAX */
#define TG_MTOK_MAX              ((int64_t) 1 << 53)

#define TG_PRIORITY_MAX          2

/* a refill counts at most this much elapsed time */
#define TG_ELAPSED_MAX_MS        86400000

/* a time before any other: "no hold", "never denied" */
#define TG_MSEC_NEVER            INT64_MIN

#define TG_OK                    0
#define TG_ERROR                 -1


/* cost (DESIGN §2) */

typedef struct {
    uint64_t              base_tokens;
    uint64_t              bandwidth_tokens;
    uint64_t              quantum_bytes;
} tg_cost_profile_t;


#define TG_COST_BASE_DEFAULT       2
#define TG_COST_BANDWIDTH_DEFAULT  1
#define TG_COST_QUANTUM_DEFAULT    65536


void tg_cost_profile_default(tg_cost_profile_t *p);

/*
 * base + ceil(body_bytes / quantum) * bandwidth, saturated at
 * TG_TOKENS_MAX.  The caller passes 0 body bytes for requests charged
 * the base only (GET, HEAD).
 */
uint64_t tg_cost_tokens(const tg_cost_profile_t *p, uint64_t body_bytes);


/* token bucket */

typedef struct {
    tg_mtok_t             level_mtok;
    tg_msec_t             last_ms;
} tg_bucket_t;


void tg_bucket_init(tg_bucket_t *b, tg_mtok_t level_mtok, tg_msec_t now_ms);

/*
 * Adds rate_tps * elapsed_ms, up to cap_mtok, and returns what was added.
 * A clock that went back adds nothing and restarts from now_ms.
 */
tg_mtok_t tg_bucket_refill(tg_bucket_t *b, uint64_t rate_tps,
    tg_mtok_t cap_mtok, tg_msec_t now_ms);


/* L1: the storage cluster (DESIGN §3) */

#define TG_USAGE_SLOTS                 10
#define TG_WINDOW_MS_DEFAULT           10000
#define TG_EMERGENCY_PERMILLE_DEFAULT  950
#define TG_EMERGENCY_TTL_MS_DEFAULT    300000

typedef struct {
    uint64_t              capacity_tps;
    uint32_t              reserved_permille;    /* 0..1000 */
    tg_msec_t             window_ms;            /* usage window */
    uint32_t              emergency_permille;   /* auto trigger */
    tg_msec_t             emergency_ttl_ms;
} tg_cluster_conf_t;


typedef enum {
    TG_EMERGENCY_OFF = 0,
    TG_EMERGENCY_AUTO,        /* turned on by usage; renewed while high */
    TG_EMERGENCY_MANUAL       /* turned on by an operator */
} tg_emergency_e;


typedef struct {
    tg_bucket_t           pool;
    tg_mtok_t             slot_mtok[TG_USAGE_SLOTS];
    int64_t               slot_epoch[TG_USAGE_SLOTS];
    tg_msec_t             emergency_until_ms;
    tg_msec_t             auto_hold_until_ms;   /* after a manual off */
    tg_emergency_e        emergency;

    /*
     * The sum of the window's valid slots as of slot period usage_epoch,
     * kept by every grant, so that the emergency check on each acquire
     * reads it instead of walking the slots; walked once per period.
     */
    int64_t               usage_epoch;
    uint64_t              usage_mtok;
} tg_cluster_t;


void tg_cluster_conf_default(tg_cluster_conf_t *cc);
void tg_cluster_init(tg_cluster_t *c, const tg_cluster_conf_t *cc,
    tg_msec_t now_ms);

/* granted over the window, per mille of capacity over the window */
uint32_t tg_cluster_usage_permille(const tg_cluster_t *c,
    const tg_cluster_conf_t *cc, tg_msec_t now_ms);

/* expires or renews emergency mode; returns 1 while it is on */
int tg_cluster_emergency_active(tg_cluster_t *c,
    const tg_cluster_conf_t *cc, tg_msec_t now_ms);

/*
 * Operator control: on (for ttl_ms, or the configured TTL when 0), off
 * (and automatic mode held off for the configured TTL, so that an
 * operator's "off" is not undone a moment later), or auto (release).
 * mode TG_EMERGENCY_AUTO releases whatever "on" says; any other mode
 * switches a manual emergency on or off by "on".
 */
void tg_cluster_emergency_set(tg_cluster_t *c, const tg_cluster_conf_t *cc,
    tg_emergency_e mode, int on, tg_msec_t ttl_ms, tg_msec_t now_ms);


/* L2: the application (DESIGN §3) */

#define TG_INTEREST_PERMILLE_DEFAULT   100
#define TG_BUCKET_MS_DEFAULT           1000

typedef struct {
    uint64_t              guaranteed_tps;
    uint64_t              burst_tps;            /* >= guaranteed */
    uint64_t              max_borrow_tokens;    /* debt ceiling */
    uint32_t              priority;             /* 0 highest .. 2 */
    uint32_t              interest_permille;
    tg_msec_t             bucket_ms;            /* seconds of rate held */
} tg_app_conf_t;


typedef struct {
    tg_bucket_t           guaranteed;
    tg_bucket_t           burst;
    tg_mtok_t             debt_mtok;
} tg_app_t;


void tg_app_conf_default(tg_app_conf_t *ac);
void tg_app_init(tg_app_t *a, const tg_app_conf_t *ac, tg_msec_t now_ms);

/* refills both buckets; refill of the guaranteed bucket pays debt first */
void tg_app_refill(tg_app_t *a, const tg_app_conf_t *ac, tg_msec_t now_ms);


/* the layer that decided, named as in headers and $tollgate_layer */

typedef enum {
    TG_LAYER_NONE = 0,
    TG_LAYER_CLUSTER,
    TG_LAYER_GUARANTEED,
    TG_LAYER_BURST,
    TG_LAYER_DEBT,
    TG_LAYER_LOCAL
} tg_layer_e;

const char *tg_layer_name(tg_layer_e layer);


typedef struct {
    uint64_t              granted_tokens;
    uint64_t              from_guaranteed;
    uint64_t              from_burst;
    uint64_t              borrowed;
    tg_layer_e            layer;          /* granted last, or refused */
    tg_msec_t             retry_after_ms; /* when refused, >= 1000 */
    unsigned              emergency:1;
} tg_grant_t;


/*
 * Grants between min_tokens and want_tokens, or nothing.  Tokens come
 * from the guaranteed bucket, then the burst bucket while the cluster
 * stays above its reserve, and only to reach min_tokens, from borrowing.
 * Every granted token is taken from the cluster pool too.
 *
 * In emergency: priority 0 gets guaranteed + burst, priority 1
 * guaranteed only, priority 2 nothing.
 *
 * Returns TG_OK with g->granted_tokens set (0 when refused).
 */
int tg_acquire(tg_cluster_t *c, const tg_cluster_conf_t *cc, tg_app_t *a,
    const tg_app_conf_t *ac, uint64_t want_tokens, uint64_t min_tokens,
    tg_msec_t now_ms, tg_grant_t *g);

/*
 * Settles a request charged an estimate: a positive delta (more was
 * used) becomes debt, a negative one is returned to the guaranteed
 * bucket and the cluster pool.
 */
void tg_settle(tg_cluster_t *c, const tg_cluster_conf_t *cc, tg_app_t *a,
    const tg_app_conf_t *ac, int64_t delta_tokens, tg_msec_t now_ms);

/*
 * Operator borrow: tokens put into the guaranteed bucket now, debt with
 * interest; returns tokens lent.  The cluster pool is charged when the
 * lent tokens are spent by tg_acquire(), not here, so it is charged once.
 */
uint64_t tg_borrow(tg_cluster_t *c, const tg_cluster_conf_t *cc, tg_app_t *a,
    const tg_app_conf_t *ac, uint64_t tokens, tg_msec_t now_ms);

/* operator repay from the guaranteed balance; returns debt repaid */
uint64_t tg_repay(tg_app_t *a, const tg_app_conf_t *ac, uint64_t tokens,
    tg_msec_t now_ms);


/* L3: the gateway's lease (DESIGN §3) */

#define TG_LEASE_MIN_TOKENS_DEFAULT     16
#define TG_LEASE_MAX_TOKENS_DEFAULT     100000
#define TG_LEASE_HORIZON_MS_DEFAULT     200
#define TG_LEASE_LOW_PERMILLE_DEFAULT   200
#define TG_LEASE_STRETCH_MAX_DEFAULT    4

/* demand is sampled over epochs of this length */
#define TG_LEASE_EPOCH_MS               100

/*
 * A lease with no estimate of demand yet (new, or idle until the
 * estimate faded to 0) closes its epoch early, once TG_LEASE_COLD_MIN_MS
 * have passed and it has taken TG_LEASE_COLD_TARGETS times its target:
 * a busy application would otherwise refill at the minimum target, a
 * few requests per Redis call, for a whole epoch, and every application
 * at once after a restart.
 */
#define TG_LEASE_COLD_MIN_MS            10
#define TG_LEASE_COLD_TARGETS           4

/*
 * A horizon stretches one more time for each TG_LEASE_STEADY_EPOCHS in a
 * row whose demand stayed within a quarter of the estimate, and only
 * while what L2 has left per live gateway covers TG_LEASE_PLENTY_TARGETS
 * targets stretched to the most: stretched leases then hold, in all
 * gateways together, at most 1 / TG_LEASE_PLENTY_TARGETS of what L2 had
 * left, which its buckets cap at one second of the burst quota.
 */
#define TG_LEASE_STEADY_EPOCHS          10
#define TG_LEASE_STEADY_EPOCHS_MAX      31
#define TG_LEASE_PLENTY_TARGETS         8

typedef struct {
    uint64_t              min_tokens;
    uint64_t              max_tokens;
    tg_msec_t             horizon_ms;         /* demand it should cover */
    uint32_t              low_water_permille;
    uint32_t              stretch_max;        /* horizons; 0 or 1: none */
} tg_lease_conf_t;


typedef struct {
    int64_t               balance_tokens;
    uint64_t              target_tokens;
    uint64_t              demand_mtps;        /* milli-tokens per second */
    tg_msec_t             epoch_ms;           /* demand sampling epoch */
    uint64_t              epoch_tokens;
    tg_msec_t             denied_until_ms;
    unsigned              refill_inflight:1;
    unsigned              steady_epochs:5;    /* in a row, saturating */
    unsigned              l2_plenty:1;        /* may stretch, see above */
} tg_lease_t;


typedef enum {
    TG_LEASE_HIT = 0,         /* paid from the balance */
    TG_LEASE_HIT_REFILL,      /* paid; balance low: start a refill */
    TG_LEASE_MISS,            /* cannot pay: wait for a refill */
    TG_LEASE_DENIED           /* refused until denied_until_ms */
} tg_lease_decision_e;


void tg_lease_conf_default(tg_lease_conf_t *lc);
void tg_lease_init(tg_lease_t *l, const tg_lease_conf_t *lc,
    tg_msec_t now_ms);

/*
 * HIT_REFILL and MISS set refill_inflight: the caller that sees
 * HIT_REFILL starts the refill; on MISS it starts one only if
 * refill_inflight was clear before the call, otherwise one is on its
 * way.  Paid and missed costs both count as demand; denied ones do not.
 */
tg_lease_decision_e tg_lease_take(tg_lease_t *l, const tg_lease_conf_t *lc,
    uint64_t cost_tokens, tg_msec_t now_ms);

/*
 * tg_lease_take() inline, for a request path that calls it per request:
 * its most common case (the demand epoch still open, an estimate of
 * demand made, no refusal in force, a balance that pays the cost and stays above the low-water
 * mark, or a refill already asked) is decided here, with the same
 * effects; any other case is left to tg_lease_take() before anything
 * has changed.
 */
static inline tg_lease_decision_e
tg_lease_take_inline(tg_lease_t *l, const tg_lease_conf_t *lc,
    uint64_t cost_tokens, tg_msec_t now_ms)
{
    int64_t  left_tokens;

    if (now_ms < l->epoch_ms || now_ms - l->epoch_ms >= TG_LEASE_EPOCH_MS
        || l->demand_mtps == 0
        || now_ms < l->denied_until_ms
        || cost_tokens > TG_TOKENS_MAX
        || l->balance_tokens < (int64_t) cost_tokens
        || l->epoch_tokens > (uint64_t) TG_MTOK_MAX - cost_tokens
        || l->target_tokens > UINT32_MAX)
    {
        return tg_lease_take(l, lc, cost_tokens, now_ms);
    }

    left_tokens = l->balance_tokens - (int64_t) cost_tokens;

    /* the low-water mark as tg_lease_take() computes it (no overflow) */
    if (!l->refill_inflight
        && (uint64_t) left_tokens
           < l->target_tokens * lc->low_water_permille / 1000)
    {
        return tg_lease_take(l, lc, cost_tokens, now_ms);
    }

    l->balance_tokens = left_tokens;
    l->epoch_tokens += cost_tokens;

    return TG_LEASE_HIT;
}

/*
 * Tokens to ask for: enough to reach the target, capped by a fair share
 * of what L2 has left (l2_remaining / live gateways).
 */
uint64_t tg_lease_want(const tg_lease_t *l, const tg_lease_conf_t *lc,
    uint64_t l2_remaining_tokens, uint32_t live_gateways);

void tg_lease_granted(tg_lease_t *l, uint64_t tokens, tg_msec_t now_ms);
void tg_lease_denied(tg_lease_t *l, tg_msec_t until_ms);

/*
 * What L2 had left for the application when Redis last said so, and
 * the gateways sharing it: decides whether the horizon may stretch.
 * A target shrinks at once when L2 runs short, and stretches at the
 * next demand epoch.
 */
void tg_lease_l2_left(tg_lease_t *l, const tg_lease_conf_t *lc,
    uint64_t l2_remaining_tokens, uint32_t live_gateways);


#include "tg_health.h"  /* degradation (DESIGN §4) */


#endif /* _TG_CORE_H_INCLUDED_ */
