/*
 * Copyright (C) Tollgate developers
 *
 * Arithmetic shared by the core's files; not part of the contract the
 * nginx module uses.  Every product of a rate, a time or a token count
 * is saturated here, so that an absurd configuration clamps instead of
 * wrapping around.  docs/quota-rules.md gives the same bounds to the Lua
 * scripts: below 2^53 every quantity is exact in a Lua number too.
 */


#ifndef _TG_INTERNAL_H_INCLUDED_
#define _TG_INTERNAL_H_INCLUDED_


#include "tg_core.h"


#define TG_RETRY_MIN_MS          1000
#define TG_RETRY_MAX_MS          3600000
#define TG_RETRY_NO_RATE_MS      60000
#define TG_RETRY_EMERGENCY_MS    60000


static inline uint64_t
tg_min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}


static inline int64_t
tg_clamp_i64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}


/* a * b, or max when the product would exceed it */
static inline uint64_t
tg_mul_sat(uint64_t a, uint64_t b, uint64_t max)
{
    if (a != 0 && b > max / a) {
        return max;
    }

    return a * b;
}


/* both operands within +-TG_MTOK_MAX, so the sum cannot overflow */
static inline tg_mtok_t
tg_mtok_add(tg_mtok_t a, tg_mtok_t b)
{
    return tg_clamp_i64(a + b, -TG_MTOK_MAX, TG_MTOK_MAX);
}


/* whole tokens in mtok, saturated */
static inline tg_mtok_t
tg_mtok(uint64_t tokens)
{
    return (tg_mtok_t) tg_mul_sat(tokens, TG_MTOK_PER_TOKEN,
                                  (uint64_t) TG_MTOK_MAX);
}


/* rates and token counts from a configuration are clamped to this */
static inline uint64_t
tg_tokens_clamp(uint64_t tokens)
{
    return tokens < TG_TOKENS_MAX ? tokens : TG_TOKENS_MAX;
}


/* whole tokens a level offers: a negative level offers none */
static inline uint64_t
tg_offer(tg_mtok_t level_mtok)
{
    return level_mtok > 0 ? (uint64_t) level_mtok / TG_MTOK_PER_TOKEN : 0;
}


/* whole tokens of a level above a floor (the cluster's reserve) */
static inline uint64_t
tg_offer_above(tg_mtok_t level_mtok, tg_mtok_t floor_mtok)
{
    return level_mtok > floor_mtok ? tg_offer(level_mtok - floor_mtok) : 0;
}


/* now + ttl (ttl >= 0) without overflow */
static inline tg_msec_t
tg_msec_after(tg_msec_t now_ms, tg_msec_t ttl_ms)
{
    if (now_ms > 0 && ttl_ms > INT64_MAX - now_ms) {
        return INT64_MAX;
    }

    return now_ms + ttl_ms;
}


/* produced since the last call, without touching the level */
tg_mtok_t tg_bucket_accrue(tg_bucket_t *b, uint64_t rate_tps,
    tg_msec_t now_ms);

/* adds up to cap; a level already above cap is kept, not cut down */
tg_mtok_t tg_bucket_fill(tg_bucket_t *b, tg_mtok_t add_mtok,
    tg_mtok_t cap_mtok);


#endif /* _TG_INTERNAL_H_INCLUDED_ */
