/*
 * Copyright (C) Tollgate developers
 */


#include "tg_internal.h"


void
tg_bucket_init(tg_bucket_t *b, tg_mtok_t level_mtok, tg_msec_t now_ms)
{
    b->level_mtok = tg_clamp_i64(level_mtok, -TG_MTOK_MAX, TG_MTOK_MAX);
    b->last_ms = now_ms;
}


tg_mtok_t
tg_bucket_accrue(tg_bucket_t *b, uint64_t rate_tps, tg_msec_t now_ms)
{
    uint64_t  elapsed_ms;

    /* a clock that went back restarts the bucket from now, adding none */
    if (now_ms <= b->last_ms) {
        b->last_ms = now_ms;
        return 0;
    }

    elapsed_ms = (uint64_t) now_ms - (uint64_t) b->last_ms;
    b->last_ms = now_ms;

    /* past a day every sane bucket is full anyway */
    if (elapsed_ms > TG_ELAPSED_MAX_MS) {
        elapsed_ms = TG_ELAPSED_MAX_MS;
    }

    /* tokens per second times milliseconds is exactly milli-tokens */
    return (tg_mtok_t) tg_mul_sat(tg_tokens_clamp(rate_tps), elapsed_ms,
                                  (uint64_t) TG_MTOK_MAX);
}


tg_mtok_t
tg_bucket_fill(tg_bucket_t *b, tg_mtok_t add_mtok, tg_mtok_t cap_mtok)
{
    tg_mtok_t  room_mtok;

    cap_mtok = tg_clamp_i64(cap_mtok, -TG_MTOK_MAX, TG_MTOK_MAX);

    /*
     * A level above the cap (the cap was lowered, or an operator lent
     * tokens) is left as it is: refill stops it growing, spending
     * brings it down.
     */
    if (add_mtok <= 0 || b->level_mtok >= cap_mtok) {
        return 0;
    }

    room_mtok = cap_mtok - b->level_mtok;

    if (add_mtok > room_mtok) {
        add_mtok = room_mtok;
    }

    b->level_mtok += add_mtok;

    return add_mtok;
}


tg_mtok_t
tg_bucket_refill(tg_bucket_t *b, uint64_t rate_tps, tg_mtok_t cap_mtok,
    tg_msec_t now_ms)
{
    return tg_bucket_fill(b, tg_bucket_accrue(b, rate_tps, now_ms),
                          cap_mtok);
}
