/*
 * Copyright (C) Tollgate developers
 *
 * Hours of simulated traffic in uneven, seeded steps.  Whatever the
 * order of requests, nothing is granted that the rates did not produce,
 * and nothing the rates produced is lost to rounding.
 */


#include "tg_test.h"


#define HOUR_MS  3600000LL
#define APPS     3


typedef struct {
    tg_app_conf_t         ac;
    tg_app_t              a;
    uint64_t              granted_tokens;
    uint64_t              from_guaranteed;
    uint64_t              from_burst;
    uint64_t              borrowed;
} tg_sim_app_t;


static void
sim_app_setup(tg_sim_app_t *s, uint64_t guaranteed_tps, uint64_t burst_tps,
    uint64_t max_borrow_tokens, uint32_t priority)
{
    tg_app_setup(&s->ac, &s->a, guaranteed_tps, burst_tps, max_borrow_tokens,
                 priority, TG_T0_MS);
    s->granted_tokens = 0;
    s->from_guaranteed = 0;
    s->from_burst = 0;
    s->borrowed = 0;
}


/*
 * What the application's buckets received can be no more than their
 * first fill plus what their rates produced since; debt repaid counts
 * as received by the guaranteed bucket, interest included.
 */
static void
assert_app_conserves(const tg_sim_app_t *s, tg_msec_t elapsed_ms)
{
    uint64_t  g_tps, b_tps, g_in_mtok, b_in_mtok, repaid_mtok;

    g_tps = s->ac.guaranteed_tps;
    b_tps = s->ac.burst_tps - s->ac.guaranteed_tps;

    repaid_mtok = s->borrowed * (1000 + s->ac.interest_permille)
                  - (uint64_t) s->a.debt_mtok;

    g_in_mtok = s->from_guaranteed * 1000 + repaid_mtok
                + (uint64_t) s->a.guaranteed.level_mtok;
    b_in_mtok = s->from_burst * 1000 + (uint64_t) s->a.burst.level_mtok;

    assert_true(g_in_mtok <= g_tps * 1000 + g_tps * (uint64_t) elapsed_ms);
    assert_true(b_in_mtok <= b_tps * 1000 + b_tps * (uint64_t) elapsed_ms);

    assert_true(s->granted_tokens * 1000
                <= (g_tps + b_tps) * (1000 + (uint64_t) elapsed_ms)
                   + s->ac.max_borrow_tokens * 1000);
}


static void
random_acquires_over_hours_never_exceed_what_was_produced(void **state)
{
    uint64_t           seed, want, min, pool_granted_tokens, capacity_tps;
    size_t             i;
    tg_msec_t          now_ms, end_ms, elapsed_ms;
    tg_grant_t         g;
    tg_sim_app_t       apps[APPS], *s;
    tg_cluster_t       c;
    tg_cluster_conf_t  cc;

    (void) state;

    seed = 0x5eed1e55;
    capacity_tps = 300;
    pool_granted_tokens = 0;
    now_ms = TG_T0_MS;
    end_ms = TG_T0_MS + 3 * HOUR_MS;

    /* demand is about twice the capacity, so the pool decides often */
    tg_cluster_setup(&cc, &c, capacity_tps, 200, now_ms);
    sim_app_setup(&apps[0], 100, 200, 0, 0);
    sim_app_setup(&apps[1], 50, 50, 0, 1);
    sim_app_setup(&apps[2], 40, 120, 200, 2);

    while (now_ms < end_ms) {
        now_ms += (tg_msec_t) tg_test_rand_in(&seed, 1, 100);
        s = &apps[tg_test_rand(&seed) % APPS];
        want = tg_test_rand_in(&seed, 1, 60);
        min = tg_test_rand_in(&seed, 1, want);

        assert_int_equal(tg_acquire(&c, &cc, &s->a, &s->ac, want, min,
                                    now_ms, &g),
                         TG_OK);

        assert_true(g.granted_tokens == 0
                    || (g.granted_tokens >= min && g.granted_tokens <= want));

        s->granted_tokens += g.granted_tokens;
        s->from_guaranteed += g.from_guaranteed;
        s->from_burst += g.from_burst;
        s->borrowed += g.borrowed;
        pool_granted_tokens += g.granted_tokens;

        assert_true(c.pool.level_mtok >= 0);
        assert_true(s->a.guaranteed.level_mtok >= 0);
        assert_true(s->a.burst.level_mtok >= 0);
        assert_in_range(s->a.debt_mtok, 0, s->ac.max_borrow_tokens * 1000);
    }

    elapsed_ms = now_ms - TG_T0_MS;

    for (i = 0; i < APPS; i++) {
        assert_app_conserves(&apps[i], elapsed_ms);
    }

    assert_true(pool_granted_tokens * 1000 + (uint64_t) c.pool.level_mtok
                <= capacity_tps * (1000 + (uint64_t) elapsed_ms));

    /*
     * Guaranteed traffic is never starved: the application of priority
     * 0 asked for about twice its guaranteed rate all along.
     */
    assert_true(apps[0].granted_tokens * 1000
                >= 100 * (uint64_t) elapsed_ms * 95 / 100);
}


static void
a_saturated_app_receives_exactly_what_its_buckets_produced(void **state)
{
    uint64_t      seed, granted_tokens, produced_mtok, held_mtok;
    tg_grant_t    g;
    tg_fixture_t  f;
    tg_msec_t     end_ms;

    (void) state;

    seed = 0xc0ffee;
    granted_tokens = 0;

    /* guaranteed 7 tokens/s, burst 12: a 5 tokens/s burst bucket */
    tg_fixture_setup(&f, 1000, 0, 7, 12, 0);
    end_ms = f.now_ms + HOUR_MS;

    /*
     * The first request drains the initial fill at t0; after it, steps
     * under 800 ms never fill a bucket to its cap between two requests,
     * so every milli-token produced is either granted or still held:
     * the two must add up exactly.
     */
    while (f.now_ms <= end_ms) {
        assert_int_equal(tg_acquire(&f.c, &f.cc, &f.a, &f.ac, 1000, 1,
                                    f.now_ms, &g),
                         TG_OK);
        granted_tokens += g.granted_tokens;

        if (f.now_ms == end_ms) {
            break;
        }

        f.now_ms += (tg_msec_t) tg_test_rand_in(&seed, 1, 799);
        if (f.now_ms > end_ms) {
            f.now_ms = end_ms;
        }
    }

    produced_mtok = 12 * 1000 + 12 * (uint64_t) HOUR_MS;
    held_mtok = (uint64_t) (f.a.guaranteed.level_mtok
                            + f.a.burst.level_mtok);

    assert_int_equal(granted_tokens * 1000 + held_mtok, produced_mtok);
    assert_in_range(granted_tokens, 12 * 3600 + 12 - 2, 12 * 3600 + 12);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(
            random_acquires_over_hours_never_exceed_what_was_produced),
        cmocka_unit_test(
            a_saturated_app_receives_exactly_what_its_buckets_produced),
    };

    return cmocka_run_group_tests_name("longrun", tests, NULL, NULL);
}
