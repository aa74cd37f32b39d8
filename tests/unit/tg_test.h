/*
 * Copyright (C) Tollgate developers
 *
 * What the core's unit tests share: cmocka, a seeded generator so that
 * "random" steps are the same on every run, and a fixture of one
 * cluster with one application, built fresh by every case.
 */


#ifndef _TG_TEST_H_INCLUDED_
#define _TG_TEST_H_INCLUDED_


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tg_core.h"


/* an origin far from 0, so no rule can lean on the clock starting at 0 */
#define TG_T0_MS  1700000000000LL

/* a case of a data-driven table, named by what it proves */
#define TG_CASE(name, func, data)                                            \
    { name, func, NULL, NULL, (void *) (data) }


typedef struct {
    tg_cluster_conf_t     cc;
    tg_cluster_t          c;
    tg_app_conf_t         ac;
    tg_app_t              a;
    tg_msec_t             now_ms;
} tg_fixture_t;


/* xorshift64*: small, good enough, and the same on every platform */
static inline uint64_t
tg_test_rand(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;

    return *state * 2685821657736338717ULL;
}


/* uniform enough in [lo, hi] for test steps */
static inline uint64_t
tg_test_rand_in(uint64_t *state, uint64_t lo, uint64_t hi)
{
    return lo + tg_test_rand(state) % (hi - lo + 1);
}


static inline void
tg_cluster_setup(tg_cluster_conf_t *cc, tg_cluster_t *c,
    uint64_t capacity_tps, uint32_t reserved_permille, tg_msec_t now_ms)
{
    tg_cluster_conf_default(cc);
    cc->capacity_tps = capacity_tps;
    cc->reserved_permille = reserved_permille;
    tg_cluster_init(c, cc, now_ms);
}


static inline void
tg_app_setup(tg_app_conf_t *ac, tg_app_t *a, uint64_t guaranteed_tps,
    uint64_t burst_tps, uint64_t max_borrow_tokens, uint32_t priority,
    tg_msec_t now_ms)
{
    tg_app_conf_default(ac);
    ac->guaranteed_tps = guaranteed_tps;
    ac->burst_tps = burst_tps;
    ac->max_borrow_tokens = max_borrow_tokens;
    ac->priority = priority;
    tg_app_init(a, ac, now_ms);
}


static inline void
tg_fixture_setup(tg_fixture_t *f, uint64_t capacity_tps,
    uint32_t reserved_permille, uint64_t guaranteed_tps, uint64_t burst_tps,
    uint64_t max_borrow_tokens)
{
    f->now_ms = TG_T0_MS;
    tg_cluster_setup(&f->cc, &f->c, capacity_tps, reserved_permille,
                     f->now_ms);
    tg_app_setup(&f->ac, &f->a, guaranteed_tps, burst_tps,
                 max_borrow_tokens, 0, f->now_ms);
}


/* acquires at the fixture's clock; the call itself must not fail */
static inline tg_grant_t
tg_fixture_acquire(tg_fixture_t *f, uint64_t want_tokens,
    uint64_t min_tokens)
{
    tg_grant_t  g;

    assert_int_equal(tg_acquire(&f->c, &f->cc, &f->a, &f->ac, want_tokens,
                                min_tokens, f->now_ms, &g),
                     TG_OK);
    return g;
}


#endif /* _TG_TEST_H_INCLUDED_ */
