/*
 * Copyright (C) Tollgate developers
 *
 * Degradation (DESIGN §4): how healthy a gateway's Redis looks over a
 * sliding window of calls, and the level the gateway runs at because of
 * it.  The rules are written out in docs/quota-rules.md, "Degradation".
 *
 * Like the rest of the core: no allocation, no printing, the clock is
 * the caller's (ms).  One tg_health_t per gateway; the caller serialises
 * the calls on it (a lock, or a single process).
 */


#ifndef _TG_HEALTH_H_INCLUDED_
#define _TG_HEALTH_H_INCLUDED_


/* tg_core.h includes this file at its end; the guards stop the cycle */
#include "tg_core.h"


#define TG_LEVEL_NORMAL           0
#define TG_LEVEL_CONSERVE         1
#define TG_LEVEL_LOCAL_FIRST      2
#define TG_LEVEL_FAIL_LOCAL       3
#define TG_LEVEL_AUTO             -1    /* tg_health_force: release */

#define TG_CALL_OK                0
#define TG_CALL_ERROR             1     /* an error reply */
#define TG_CALL_TIMEOUT           2     /* no reply in time, or the
                                           connection was lost */

#define TG_HEALTH_SLOTS           10

/*
 * Latency buckets, upper bounds included, in us: 250, 500, 1000, 2000,
 * 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000; one more
 * counter holds the calls above 1 s.
 */
#define TG_HEALTH_LAT_BUCKETS     12

/* the p99 of a window whose 99th percentile is above the last bound */
#define TG_HEALTH_LAT_OVER_US     UINT32_MAX

#define TG_HEALTH_WINDOW_MS_DEFAULT        5000
#define TG_HEALTH_CONSERVE_P99_US_DEFAULT  10000
#define TG_HEALTH_LOCAL_P99_US_DEFAULT     100000
#define TG_HEALTH_LOCAL_PERMILLE_DEFAULT   50
#define TG_HEALTH_FAIL_PERMILLE_DEFAULT    500
#define TG_HEALTH_HOLD_MS_DEFAULT          3000
#define TG_HEALTH_MIN_CALLS_DEFAULT        5


/* a threshold of 0 switches its rule off */

typedef struct {
    tg_msec_t             window_ms;
    uint32_t              conserve_p99_us;
    uint32_t              local_first_p99_us;
    uint32_t              local_first_error_permille;
    uint32_t              fail_local_error_permille;
    tg_msec_t             hold_ms;        /* healthy before a step down */
    uint32_t              min_calls;      /* fewer calls in the window
                                             judge nothing but
                                             disconnection */
} tg_health_conf_t;


typedef struct {
    int64_t               slot_epoch[TG_HEALTH_SLOTS];
    uint32_t              calls[TG_HEALTH_SLOTS];
    uint32_t              errors[TG_HEALTH_SLOTS];    /* incl. timeouts */
    uint32_t              timeouts[TG_HEALTH_SLOTS];
    uint32_t              lat[TG_HEALTH_SLOTS][TG_HEALTH_LAT_BUCKETS + 1];
    tg_msec_t             since_ms;         /* current level entered */
    tg_msec_t             better_since_ms;  /* target below the level
                                               since, or TG_MSEC_NEVER */
    uint32_t              transitions;
    int8_t                level;
    int8_t                forced;           /* TG_LEVEL_AUTO or a level */
    int8_t                released;         /* a release not evaluated */
} tg_health_t;


/* the sums of the slots inside the window, for status pages */

typedef struct {
    uint64_t              calls;
    uint64_t              errors;
    uint64_t              timeouts;
    uint64_t              lat[TG_HEALTH_LAT_BUCKETS + 1];
} tg_health_window_t;


void tg_health_conf_default(tg_health_conf_t *hc);

/* level normal, not forced, nothing recorded */
void tg_health_init(tg_health_t *h, tg_msec_t now_ms);

/*
 * Counts one Redis call that ended at now_ms.  latency_us is how long
 * it took, for a timeout the time waited.  Any outcome other than
 * TG_CALL_OK counts as an error.
 */
void tg_health_record(tg_health_t *h, const tg_health_conf_t *hc,
    uint32_t latency_us, int outcome, tg_msec_t now_ms);

void tg_health_window(const tg_health_t *h, const tg_health_conf_t *hc,
    tg_msec_t now_ms, tg_health_window_t *w);

/*
 * The p99 latency over the window, as the upper bound of its bucket
 * (TG_HEALTH_LAT_OVER_US above the last one, 0 when there were no
 * calls), and the error rate per mille, rounded down.
 */
uint32_t tg_health_p99_us(const tg_health_t *h, const tg_health_conf_t *hc,
    tg_msec_t now_ms);
uint32_t tg_health_error_permille(const tg_health_t *h,
    const tg_health_conf_t *hc, tg_msec_t now_ms);

/*
 * The level the window asks for now, regardless of holds and forcing:
 * disconnected: 3; fewer than min_calls calls: 0; errors above
 * fail-local: 3; errors at or above local-first, or p99 above its
 * local-first bound: 2; p99 above the conserve bound: 1; else 0.
 */
int tg_health_target(const tg_health_t *h, const tg_health_conf_t *hc,
    int connected, tg_msec_t now_ms);

/*
 * Moves the level: a forced level wins; otherwise up to the target at
 * once, and down one level after the target stayed below the level for
 * hold_ms, the hold starting again for each step.  The hold is judged
 * at the calls, so call it regularly (every sync, every probe).
 *
 * Returns 1 when the level changed, with *reason one of these static
 * strings: "forced", "released" (a release let the window raise the
 * level), "redis unreachable", "error rate", "p99 latency" (the caller
 * prints the figure), "recovered" (a step down after a hold).
 * Returns 0 and leaves *reason alone otherwise.
 */
int tg_health_evaluate(tg_health_t *h, const tg_health_conf_t *hc,
    int connected, tg_msec_t now_ms, const char **reason);

/*
 * An operator's override, applied by the next tg_health_evaluate():
 * a level 0..3 (above 3 reads as 3), or TG_LEVEL_AUTO (any negative
 * value) to release, after which the level follows the window again,
 * stepping down by holds.
 */
void tg_health_force(tg_health_t *h, int level, tg_msec_t now_ms);

/* "normal", "conserve", "local-first", "fail-local"; "auto" for -1 */
const char *tg_health_level_name(int level);


#endif /* _TG_HEALTH_H_INCLUDED_ */
