/*
 * Copyright (C) Tollgate developers
 *
 * L3 leases: local decisions, the refill signal, the target following
 * demand, the fair-share cap and "denied until".
 */


#include "tg_test.h"


typedef struct {
    tg_lease_conf_t       lc;
    tg_lease_t            l;
    tg_msec_t             now_ms;
} tg_lease_fixture_t;


static void
setup(tg_lease_fixture_t *f)
{
    f->now_ms = TG_T0_MS;
    tg_lease_conf_default(&f->lc);
    tg_lease_init(&f->l, &f->lc, f->now_ms);
}


static tg_lease_decision_e
take(tg_lease_fixture_t *f, uint64_t cost_tokens)
{
    return tg_lease_take(&f->l, &f->lc, cost_tokens, f->now_ms);
}


/* cost_tokens every step_ms for duration_ms, the balance never short */
static void
steady_demand(tg_lease_fixture_t *f, uint64_t cost_tokens, tg_msec_t step_ms,
    tg_msec_t duration_ms)
{
    tg_msec_t  end_ms;

    end_ms = f->now_ms + duration_ms;

    while (f->now_ms < end_ms) {
        f->now_ms += step_ms;
        tg_lease_granted(&f->l, cost_tokens, f->now_ms);
        assert_int_not_equal(take(f, cost_tokens), TG_LEASE_MISS);
    }
}


static void
a_new_lease_targets_the_minimum(void **state)
{
    tg_lease_fixture_t  f;

    (void) state;

    setup(&f);

    assert_int_equal(f.l.target_tokens, 16);
    assert_int_equal(f.l.balance_tokens, 0);
    assert_int_equal(tg_lease_want(&f.l, &f.lc, 1000, 1), 16);
}


static void
a_miss_leaves_the_balance_and_marks_a_refill(void **state)
{
    tg_lease_fixture_t  f;

    (void) state;

    setup(&f);

    assert_int_equal(take(&f, 2), TG_LEASE_MISS);
    assert_true(f.l.refill_inflight);

    tg_lease_granted(&f.l, 10, f.now_ms);
    assert_false(f.l.refill_inflight);

    assert_int_equal(take(&f, 12), TG_LEASE_MISS);
    assert_int_equal(f.l.balance_tokens, 10);

    assert_int_equal(take(&f, 10), TG_LEASE_HIT);
    assert_int_equal(f.l.balance_tokens, 0);
}


static void
the_low_water_mark_signals_a_refill_once(void **state)
{
    tg_lease_fixture_t   f;
    tg_lease_decision_e  seen[9];
    size_t               i;

    static const tg_lease_decision_e  expected[9] = {
        TG_LEASE_HIT, TG_LEASE_HIT, TG_LEASE_HIT, TG_LEASE_HIT,
        TG_LEASE_HIT, TG_LEASE_HIT,

        /* 2 left, below 16 * 20 % = 3: one signal, then silence */
        TG_LEASE_HIT_REFILL, TG_LEASE_HIT, TG_LEASE_MISS
    };

    (void) state;

    setup(&f);
    tg_lease_granted(&f.l, 16, f.now_ms);

    for (i = 0; i < 9; i++) {
        seen[i] = take(&f, 2);
    }

    assert_memory_equal(seen, expected, sizeof(expected));

    /* the refill's answer rearms the signal */
    tg_lease_granted(&f.l, 4, f.now_ms);
    assert_int_equal(take(&f, 2), TG_LEASE_HIT_REFILL);
}


static void
an_epoch_of_demand_moves_the_target_a_quarter_of_the_way(void **state)
{
    tg_lease_fixture_t  f;

    (void) state;

    setup(&f);
    tg_lease_granted(&f.l, 1000, f.now_ms);

    /* 101 tokens in the first 100 ms: 1010 tokens/s, 1 010 000 mtok/s */
    take(&f, 100);
    f.now_ms += 99;
    take(&f, 1);
    assert_int_equal(f.l.demand_mtps, 0);

    f.now_ms += 1;
    take(&f, 1);
    assert_int_equal(f.l.demand_mtps, 1010000 / 4);
    assert_int_equal(f.l.target_tokens, 1010000 / 4 * 200 / 1000 / 1000);
}


static void
the_target_follows_steady_demand_up_and_down(void **state)
{
    tg_lease_fixture_t  f;

    (void) state;

    setup(&f);

    /* 1000 tokens/s: 200 ms of it is 200 tokens */
    steady_demand(&f, 10, 10, 5000);
    assert_in_range(f.l.target_tokens, 195, 200);

    /* 100 tokens/s: 20 tokens */
    steady_demand(&f, 1, 10, 5000);
    assert_in_range(f.l.target_tokens, 19, 20);

    /* idle epochs count as no demand: back to the minimum */
    f.now_ms += 2000;
    take(&f, 1);
    assert_int_equal(f.l.target_tokens, 16);
}


static void
the_target_stays_within_min_and_max(void **state)
{
    tg_lease_fixture_t  f;

    (void) state;

    setup(&f);
    f.lc.max_tokens = 150;

    steady_demand(&f, 10, 10, 5000);
    assert_int_equal(f.l.target_tokens, 150);

    f.lc.min_tokens = 40;
    steady_demand(&f, 1, 100, 5000);
    assert_int_equal(f.l.target_tokens, 40);
}


typedef struct {
    int64_t               balance_tokens;
    uint64_t              l2_remaining_tokens;
    uint32_t              live_gateways;
    uint64_t              want_tokens;
} tg_want_case_t;


static tg_want_case_t  want_target = { 0, 100, 4, 16 };
static tg_want_case_t  want_rest = { 10, 100, 4, 6 };
static tg_want_case_t  want_share = { 0, 40, 4, 10 };
static tg_want_case_t  want_one = { 0, 3, 4, 1 };
static tg_want_case_t  want_nothing_left = { 0, 0, 4, 0 };
static tg_want_case_t  want_no_gateways = { 0, 40, 0, 16 };
static tg_want_case_t  want_full = { 16, 1000, 1, 0 };


static void
want_is_the_shortfall_capped_by_a_fair_share(void **state)
{
    tg_want_case_t      *t = *state;
    tg_lease_fixture_t   f;

    setup(&f);
    f.l.balance_tokens = t->balance_tokens;

    assert_int_equal(tg_lease_want(&f.l, &f.lc, t->l2_remaining_tokens,
                                   t->live_gateways),
                     t->want_tokens);
}


static void
a_denied_lease_refuses_locally_until_the_given_time(void **state)
{
    tg_lease_fixture_t  f;

    (void) state;

    setup(&f);
    take(&f, 2);
    assert_true(f.l.refill_inflight);

    tg_lease_denied(&f.l, f.now_ms + 500);
    assert_false(f.l.refill_inflight);

    /* a late grant does not lift the refusal either */
    tg_lease_granted(&f.l, 16, f.now_ms);

    f.now_ms += 499;
    assert_int_equal(take(&f, 2), TG_LEASE_DENIED);
    assert_int_equal(f.l.balance_tokens, 16);

    f.now_ms += 1;
    assert_int_equal(take(&f, 2), TG_LEASE_HIT);
}


static void
denied_requests_are_not_counted_as_demand(void **state)
{
    tg_lease_fixture_t  f;

    (void) state;

    setup(&f);
    tg_lease_denied(&f.l, f.now_ms + 1000);

    take(&f, 500);
    f.now_ms += 1000;
    take(&f, 1);

    assert_int_equal(f.l.demand_mtps, 0);
    assert_int_equal(f.l.target_tokens, 16);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(a_new_lease_targets_the_minimum),
        cmocka_unit_test(a_miss_leaves_the_balance_and_marks_a_refill),
        cmocka_unit_test(the_low_water_mark_signals_a_refill_once),
        cmocka_unit_test(
            an_epoch_of_demand_moves_the_target_a_quarter_of_the_way),
        cmocka_unit_test(the_target_follows_steady_demand_up_and_down),
        cmocka_unit_test(the_target_stays_within_min_and_max),
        TG_CASE("want is the target when L2 has plenty",
                want_is_the_shortfall_capped_by_a_fair_share, &want_target),
        TG_CASE("want is what the balance lacks of the target",
                want_is_the_shortfall_capped_by_a_fair_share, &want_rest),
        TG_CASE("want is capped by a fair share of L2",
                want_is_the_shortfall_capped_by_a_fair_share, &want_share),
        TG_CASE("want is at least 1 while L2 has anything",
                want_is_the_shortfall_capped_by_a_fair_share, &want_one),
        TG_CASE("want is 0 when L2 has nothing",
                want_is_the_shortfall_capped_by_a_fair_share,
                &want_nothing_left),
        TG_CASE("want counts no live gateways as one",
                want_is_the_shortfall_capped_by_a_fair_share,
                &want_no_gateways),
        TG_CASE("want is 0 at the target",
                want_is_the_shortfall_capped_by_a_fair_share, &want_full),
        cmocka_unit_test(a_denied_lease_refuses_locally_until_the_given_time),
        cmocka_unit_test(denied_requests_are_not_counted_as_demand),
    };

    return cmocka_run_group_tests_name("lease", tests, NULL, NULL);
}
