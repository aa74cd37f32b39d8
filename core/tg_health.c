/*
 * Copyright (C) Tollgate developers
 *
 * The degradation state machine.  The rules are written out in
 * docs/quota-rules.md, "Degradation"; a change here is a change there.
 */


#include "tg_internal.h"


static tg_msec_t tg_health_slot_ms(const tg_health_conf_t *hc);
static int64_t tg_health_epoch(const tg_health_conf_t *hc, tg_msec_t now_ms);
static size_t tg_health_slot(int64_t epoch);
static void tg_health_slot_reset(tg_health_t *h, size_t i, int64_t epoch);
static size_t tg_health_lat_bucket(uint32_t latency_us);
static uint32_t tg_health_window_p99_us(const tg_health_window_t *w);
static int tg_health_judge(const tg_health_t *h, const tg_health_conf_t *hc,
    int connected, tg_msec_t now_ms, const char **reason);
static void tg_health_move(tg_health_t *h, int level, tg_msec_t now_ms);


/* upper bounds, included, of all buckets but the last */
static const uint32_t  tg_health_lat_bounds_us[TG_HEALTH_LAT_BUCKETS] = {
    250, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000,
    500000, 1000000
};

static const char  *tg_health_level_names[] = {
    "normal",
    "conserve",
    "local-first",
    "fail-local"
};


void
tg_health_conf_default(tg_health_conf_t *hc)
{
    hc->window_ms = TG_HEALTH_WINDOW_MS_DEFAULT;
    hc->conserve_p99_us = TG_HEALTH_CONSERVE_P99_US_DEFAULT;
    hc->local_first_p99_us = TG_HEALTH_LOCAL_P99_US_DEFAULT;
    hc->local_first_error_permille = TG_HEALTH_LOCAL_PERMILLE_DEFAULT;
    hc->fail_local_error_permille = TG_HEALTH_FAIL_PERMILLE_DEFAULT;
    hc->hold_ms = TG_HEALTH_HOLD_MS_DEFAULT;
    hc->min_calls = TG_HEALTH_MIN_CALLS_DEFAULT;
}


void
tg_health_init(tg_health_t *h, tg_msec_t now_ms)
{
    size_t  i;

    /*
     * The slot length is the configuration's, unknown here: a stamp no
     * period will have marks every slot as not yet used.
     */
    for (i = 0; i < TG_HEALTH_SLOTS; i++) {
        tg_health_slot_reset(h, i, INT64_MIN);
    }

    h->since_ms = now_ms;
    h->better_since_ms = TG_MSEC_NEVER;
    h->transitions = 0;
    h->level = TG_LEVEL_NORMAL;
    h->forced = TG_LEVEL_AUTO;
    h->released = 0;
}


void
tg_health_record(tg_health_t *h, const tg_health_conf_t *hc,
    uint32_t latency_us, int outcome, tg_msec_t now_ms)
{
    int64_t  epoch;
    size_t   i;

    epoch = tg_health_epoch(hc, now_ms);
    i = tg_health_slot(epoch);

    /* the slot still holds a period that left the window: reuse it */
    if (h->slot_epoch[i] != epoch) {
        tg_health_slot_reset(h, i, epoch);
    }

    /* a full slot drops the call whole, so its counters stay consistent */
    if (h->calls[i] == UINT32_MAX) {
        return;
    }

    h->calls[i]++;
    h->lat[i][tg_health_lat_bucket(latency_us)]++;

    if (outcome != TG_CALL_OK) {
        h->errors[i]++;
    }

    if (outcome == TG_CALL_TIMEOUT) {
        h->timeouts[i]++;
    }
}


void
tg_health_window(const tg_health_t *h, const tg_health_conf_t *hc,
    tg_msec_t now_ms, tg_health_window_t *w)
{
    int64_t  epoch;
    size_t   i, b;

    epoch = tg_health_epoch(hc, now_ms);

    w->calls = 0;
    w->errors = 0;
    w->timeouts = 0;

    for (b = 0; b <= TG_HEALTH_LAT_BUCKETS; b++) {
        w->lat[b] = 0;
    }

    /*
     * A slot counts when its period is the current one or one of the
     * SLOTS - 1 before it.  One stamped in the future (the clock went
     * back) counts nothing until it is reused.
     */
    for (i = 0; i < TG_HEALTH_SLOTS; i++) {
        if (h->slot_epoch[i] > epoch
            || (uint64_t) epoch - (uint64_t) h->slot_epoch[i]
               >= TG_HEALTH_SLOTS)
        {
            continue;
        }

        w->calls += h->calls[i];
        w->errors += h->errors[i];
        w->timeouts += h->timeouts[i];

        for (b = 0; b <= TG_HEALTH_LAT_BUCKETS; b++) {
            w->lat[b] += h->lat[i][b];
        }
    }
}


uint32_t
tg_health_p99_us(const tg_health_t *h, const tg_health_conf_t *hc,
    tg_msec_t now_ms)
{
    tg_health_window_t  w;

    tg_health_window(h, hc, now_ms, &w);

    return tg_health_window_p99_us(&w);
}


uint32_t
tg_health_error_permille(const tg_health_t *h, const tg_health_conf_t *hc,
    tg_msec_t now_ms)
{
    tg_health_window_t  w;

    tg_health_window(h, hc, now_ms, &w);

    if (w.calls == 0) {
        return 0;
    }

    return (uint32_t) (w.errors * 1000 / w.calls);
}


int
tg_health_target(const tg_health_t *h, const tg_health_conf_t *hc,
    int connected, tg_msec_t now_ms)
{
    const char  *reason;

    return tg_health_judge(h, hc, connected, now_ms, &reason);
}


int
tg_health_evaluate(tg_health_t *h, const tg_health_conf_t *hc,
    int connected, tg_msec_t now_ms, const char **reason)
{
    int          target, released;
    uint64_t     held_ms;
    const char  *why;

    released = h->released;
    h->released = 0;

    if (h->forced != TG_LEVEL_AUTO) {
        if (h->level == h->forced) {
            return 0;
        }

        tg_health_move(h, h->forced, now_ms);
        *reason = "forced";
        return 1;
    }

    target = tg_health_judge(h, hc, connected, now_ms, &why);

    if (target > h->level) {
        tg_health_move(h, target, now_ms);
        *reason = released ? "released" : why;
        return 1;
    }

    /* a relapse, however short, makes the next hold start from zero */
    if (target == h->level) {
        h->better_since_ms = TG_MSEC_NEVER;
        return 0;
    }

    /* a clock that went back restarts the hold rather than stretch it */
    if (h->better_since_ms == TG_MSEC_NEVER || now_ms < h->better_since_ms) {
        h->better_since_ms = now_ms;
    }

    held_ms = (uint64_t) now_ms - (uint64_t) h->better_since_ms;

    if (hc->hold_ms > 0 && held_ms < (uint64_t) hc->hold_ms) {
        return 0;
    }

    tg_health_move(h, h->level - 1, now_ms);

    if (target < h->level) {
        h->better_since_ms = now_ms;
    }

    *reason = "recovered";
    return 1;
}


void
tg_health_force(tg_health_t *h, int level, tg_msec_t now_ms)
{
    if (level < 0) {
        /* the hold counts from the release: the operator saw it healthy */
        if (h->forced != TG_LEVEL_AUTO) {
            h->forced = TG_LEVEL_AUTO;
            h->released = 1;
            h->better_since_ms = now_ms;
        }

        return;
    }

    h->forced = (int8_t) (level < TG_LEVEL_FAIL_LOCAL ? level
                                                      : TG_LEVEL_FAIL_LOCAL);
    h->released = 0;
    h->better_since_ms = TG_MSEC_NEVER;
}


const char *
tg_health_level_name(int level)
{
    if (level == TG_LEVEL_AUTO) {
        return "auto";
    }

    if (level < 0 || level > TG_LEVEL_FAIL_LOCAL) {
        return "unknown";
    }

    return tg_health_level_names[level];
}


/*
 * The level the window asks for and why; the reason is only read by
 * tg_health_evaluate() when the level goes up, so a target of 0 names
 * nothing useful.
 */

static int
tg_health_judge(const tg_health_t *h, const tg_health_conf_t *hc,
    int connected, tg_msec_t now_ms, const char **reason)
{
    uint32_t            p99_us;
    tg_health_window_t  w;

    if (!connected) {
        *reason = "redis unreachable";
        return TG_LEVEL_FAIL_LOCAL;
    }

    tg_health_window(h, hc, now_ms, &w);

    *reason = "recovered";

    if (w.calls == 0 || w.calls < hc->min_calls) {
        return TG_LEVEL_NORMAL;
    }

    /* rates compared exactly: errors / calls against permille / 1000 */
    *reason = "error rate";

    if (hc->fail_local_error_permille > 0
        && w.errors * 1000 > (uint64_t) hc->fail_local_error_permille
                             * w.calls)
    {
        return TG_LEVEL_FAIL_LOCAL;
    }

    if (hc->local_first_error_permille > 0
        && w.errors * 1000 >= (uint64_t) hc->local_first_error_permille
                              * w.calls)
    {
        return TG_LEVEL_LOCAL_FIRST;
    }

    *reason = "p99 latency";
    p99_us = tg_health_window_p99_us(&w);

    if (hc->local_first_p99_us > 0 && p99_us > hc->local_first_p99_us) {
        return TG_LEVEL_LOCAL_FIRST;
    }

    if (hc->conserve_p99_us > 0 && p99_us > hc->conserve_p99_us) {
        return TG_LEVEL_CONSERVE;
    }

    *reason = "recovered";
    return TG_LEVEL_NORMAL;
}


static void
tg_health_move(tg_health_t *h, int level, tg_msec_t now_ms)
{
    h->level = (int8_t) level;
    h->since_ms = now_ms;
    h->better_since_ms = TG_MSEC_NEVER;

    if (h->transitions < UINT32_MAX) {
        h->transitions++;
    }
}


static tg_msec_t
tg_health_slot_ms(const tg_health_conf_t *hc)
{
    tg_msec_t  window_ms;

    window_ms = hc->window_ms > 0 ? hc->window_ms
                                  : TG_HEALTH_WINDOW_MS_DEFAULT;

    /* each slot at least 1 ms long */
    window_ms = tg_clamp_i64(window_ms, TG_HEALTH_SLOTS, TG_ELAPSED_MAX_MS);

    return window_ms / TG_HEALTH_SLOTS;
}


static int64_t
tg_health_epoch(const tg_health_conf_t *hc, tg_msec_t now_ms)
{
    tg_msec_t  slot_ms;
    int64_t    epoch;

    slot_ms = tg_health_slot_ms(hc);
    epoch = now_ms / slot_ms;

    /* floor, not truncation, for a clock whose origin makes it negative */
    if (now_ms % slot_ms < 0) {
        epoch--;
    }

    return epoch;
}


static size_t
tg_health_slot(int64_t epoch)
{
    int64_t  i;

    i = epoch % TG_HEALTH_SLOTS;

    return (size_t) (i < 0 ? i + TG_HEALTH_SLOTS : i);
}


static uint32_t
tg_health_window_p99_us(const tg_health_window_t *w)
{
    uint64_t  rank, seen;
    size_t    b;

    if (w->calls == 0) {
        return 0;
    }

    /* the call at position ceil(calls * 99 / 100), counting from 1 */
    rank = (w->calls * 99 + 99) / 100;

    /*
     * Under a hundred calls that is the slowest call alone, and one
     * hiccup of a busy host is not a slow Redis: the second slowest is
     * taken, so that a level needs two slow calls in the window.
     */
    if (w->calls >= 2 && rank == w->calls) {
        rank--;
    }

    seen = 0;

    for (b = 0; b < TG_HEALTH_LAT_BUCKETS; b++) {
        seen += w->lat[b];

        if (seen >= rank) {
            return tg_health_lat_bounds_us[b];
        }
    }

    return TG_HEALTH_LAT_OVER_US;
}


static void
tg_health_slot_reset(tg_health_t *h, size_t i, int64_t epoch)
{
    size_t  b;

    h->slot_epoch[i] = epoch;
    h->calls[i] = 0;
    h->errors[i] = 0;
    h->timeouts[i] = 0;

    for (b = 0; b <= TG_HEALTH_LAT_BUCKETS; b++) {
        h->lat[i][b] = 0;
    }
}


static size_t
tg_health_lat_bucket(uint32_t latency_us)
{
    size_t  b;

    for (b = 0; b < TG_HEALTH_LAT_BUCKETS; b++) {
        if (latency_us <= tg_health_lat_bounds_us[b]) {
            break;
        }
    }

    return b;
}
