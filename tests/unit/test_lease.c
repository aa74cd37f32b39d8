/*
 * Copyright (C) Tollgate developers
 *
 * L3 leases: local decisions, the refill signal, the target following
 * demand, the horizon stretching while demand is steady and L2 has
 * plenty, the fair-share cap and "denied until".
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
a_first_epoch_of_demand_is_taken_whole(void **state)
{
    tg_lease_fixture_t  f;

    (void) state;

    setup(&f);
    tg_lease_granted(&f.l, 1000, f.now_ms);

    /* 60 tokens in the first 100 ms, under 4 targets: 600 tokens/s */
    take(&f, 59);
    f.now_ms += 99;
    take(&f, 1);
    assert_int_equal(f.l.demand_mtps, 0);

    f.now_ms += 1;
    take(&f, 1);
    assert_int_equal(f.l.demand_mtps, 600000);
    assert_int_equal(f.l.target_tokens, 600000 * 200 / 1000 / 1000);
}


static void
an_epoch_of_demand_moves_the_target_a_quarter_of_the_way(void **state)
{
    tg_lease_fixture_t  f;

    (void) state;

    setup(&f);
    tg_lease_granted(&f.l, 1000, f.now_ms);

    /* an estimate of 600 tokens/s, as above */
    take(&f, 60);
    f.now_ms += 100;
    take(&f, 1);
    assert_int_equal(f.l.demand_mtps, 600000);

    /* then 101 tokens in the next 100 ms: 1010 tokens/s */
    take(&f, 100);
    f.now_ms += 100;
    take(&f, 1);
    assert_int_equal(f.l.demand_mtps, (3 * 600000 + 1010000) / 4);
    assert_int_equal(f.l.target_tokens,
                     (3 * 600000 + 1010000) / 4 * 200 / 1000 / 1000);
}


/*
 * A busy application with no estimate yet would refill every few
 * requests at the minimum target for a whole epoch: its first epoch
 * closes as soon as it took 4 targets, if 10 ms have passed.
 */
static void
a_cold_lease_closes_its_first_epoch_early(void **state)
{
    tg_lease_fixture_t  f;

    (void) state;

    setup(&f);
    tg_lease_granted(&f.l, 10000, f.now_ms);

    /* 4 targets (64 tokens) taken, but only 9 ms passed: nothing yet */
    take(&f, 64);
    f.now_ms += 9;
    take(&f, 1);
    assert_int_equal(f.l.demand_mtps, 0);
    assert_int_equal(f.l.target_tokens, 16);

    /* 10 ms with 65 tokens: 6500 tokens/s, 1300 tokens in 200 ms */
    f.now_ms += 1;
    take(&f, 1);
    assert_int_equal(f.l.demand_mtps, 6500000);
    assert_int_equal(f.l.target_tokens, 1300);
    assert_int_equal(f.l.epoch_ms, f.now_ms);
    assert_int_equal(f.l.epoch_tokens, 1);      /* the take that closed it */

    /* an estimate made, later epochs last their full 100 ms */
    take(&f, 5000);
    f.now_ms += 50;
    take(&f, 1);
    assert_int_equal(f.l.demand_mtps, 6500000);
}


static void
a_cold_lease_below_four_targets_keeps_its_epoch(void **state)
{
    tg_lease_fixture_t  f;

    (void) state;

    setup(&f);
    tg_lease_granted(&f.l, 10000, f.now_ms);

    take(&f, 62);
    f.now_ms += 50;
    take(&f, 1);
    assert_int_equal(f.l.demand_mtps, 0);
    assert_int_equal(f.l.target_tokens, 16);
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


/* 1000 tokens/s, steady: a horizon of 200 ms is 200 tokens */
static void
steady_demand_with_l2(tg_lease_fixture_t *f, uint64_t l2_remaining_tokens,
    uint32_t live_gateways, tg_msec_t duration_ms)
{
    tg_msec_t  end_ms;

    end_ms = f->now_ms + duration_ms;

    while (f->now_ms < end_ms) {
        tg_lease_l2_left(&f->l, &f->lc, l2_remaining_tokens, live_gateways);
        steady_demand(f, 10, 10, 100);
    }
}


static void
steady_demand_with_plenty_of_l2_stretches_the_horizon_in_steps(
    void **state)
{
    uint64_t            seen[5];
    size_t              i;
    tg_lease_fixture_t  f;

    (void) state;

    setup(&f);

    /* a second at a time: one more horizon per second of steady demand */

    for (i = 0; i < 5; i++) {
        steady_demand_with_l2(&f, 1000000, 1, 1000);
        seen[i] = f.l.target_tokens;
    }

    assert_true(f.l.l2_plenty);

    /* the first second only finds the estimate; none is above 4 x 200 */
    assert_in_range(seen[0], 100, 200);
    assert_in_range(seen[1], 390, 400);
    assert_in_range(seen[2], 585, 600);
    assert_in_range(seen[3], 780, 800);
    assert_in_range(seen[4], 780, 800);
}


static void
a_demand_shift_ends_the_stretch_at_once(void **state)
{
    tg_lease_fixture_t  f;

    (void) state;

    setup(&f);
    steady_demand_with_l2(&f, 1000000, 1, 5000);
    assert_in_range(f.l.target_tokens, 780, 800);

    /* one epoch at twice the demand: no longer steady, back to 200 ms */
    steady_demand(&f, 20, 10, 100);
    steady_demand(&f, 10, 10, 10);
    assert_int_equal(f.l.steady_epochs, 0);
    assert_in_range(f.l.target_tokens, 200, 250);

    /* an idle gap is no steady demand either */
    steady_demand_with_l2(&f, 1000000, 1, 5000);
    assert_in_range(f.l.target_tokens, 780, 800);
    f.now_ms += 250;
    take(&f, 10);
    assert_int_equal(f.l.steady_epochs, 0);
    assert_true(f.l.target_tokens <= 200);
}


/*
 * L2 remaining: 8 targets stretched to the most per gateway (for
 * gateways_counted of them), plus offset_tokens, or 10^6 tokens when
 * plenty; then the target is stretch_expected times 200 ms of demand.
 */
typedef struct {
    uint32_t              gateways_counted;
    uint32_t              live_gateways;
    int64_t               offset_tokens;
    unsigned              plenty:1;
    uint32_t              stretch_max;
    uint64_t              stretch_expected;
} tg_stretch_case_t;


static tg_stretch_case_t  stretch_at_plenty = { 3, 3, 0, 0, 4, 4 };
static tg_stretch_case_t  stretch_short = { 3, 3, -1, 0, 4, 1 };
static tg_stretch_case_t  stretch_shared = { 3, 4, 0, 0, 4, 1 };
static tg_stretch_case_t  stretch_none = { 1, 1, 0, 1, 1, 1 };
static tg_stretch_case_t  stretch_twice = { 1, 1, 0, 1, 2, 2 };
static tg_stretch_case_t  stretch_no_gateways = { 1, 0, 0, 0, 4, 4 };


static void
the_stretch_needs_l2_to_cover_eight_full_targets_per_gateway(void **state)
{
    tg_stretch_case_t   *t = *state;
    uint64_t             base_tokens, remaining_tokens;
    tg_lease_fixture_t   f;

    setup(&f);
    f.lc.stretch_max = t->stretch_max;

    /* the unstretched target once the estimate settled */
    steady_demand_with_l2(&f, 0, 1, 5000);
    base_tokens = f.l.target_tokens;
    assert_in_range(base_tokens, 195, 200);

    remaining_tokens = t->plenty
        ? 1000000
        : TG_LEASE_PLENTY_TARGETS * t->stretch_max * base_tokens
          * t->gateways_counted + t->offset_tokens;

    steady_demand_with_l2(&f, remaining_tokens, t->live_gateways, 1000);

    assert_int_equal(f.l.target_tokens, t->stretch_expected * base_tokens);
}


static void
l2_running_short_shrinks_the_target_at_once(void **state)
{
    tg_lease_fixture_t  f;

    (void) state;

    setup(&f);
    steady_demand_with_l2(&f, 1000000, 1, 5000);
    assert_in_range(f.l.target_tokens, 780, 800);

    /* before any epoch closes: the next refill asks for 200 ms */
    tg_lease_l2_left(&f.l, &f.lc, 6000, 1);
    assert_false(f.l.l2_plenty);
    assert_in_range(f.l.target_tokens, 195, 200);

    steady_demand(&f, 10, 10, 100);
    assert_in_range(f.l.target_tokens, 195, 200);

    /* plenty again: the stretch comes back at the next epoch */
    tg_lease_l2_left(&f.l, &f.lc, 1000000, 1);
    assert_in_range(f.l.target_tokens, 195, 200);
    steady_demand(&f, 10, 10, 100);
    assert_in_range(f.l.target_tokens, 780, 800);

    /* the max clamp holds the stretched target too */
    f.lc.max_tokens = 500;
    steady_demand_with_l2(&f, 1000000, 1, 1000);
    assert_int_equal(f.l.target_tokens, 500);
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


/*
 * The inline take decides its own cases exactly as tg_lease_take() and
 * hands it every other untouched: over many states drawn around the
 * boundaries (epoch just open or just over, denied or not, a balance
 * just short of the cost, the low-water mark either side, a refill
 * asked or not), both give the same decision and leave the same lease.
 */
static void
the_inline_take_matches_the_full_one(void **state)
{
    int                  i, fast;
    uint64_t             seed, cost_tokens;
    tg_msec_t            now_ms;
    tg_lease_t           a, b;
    tg_lease_conf_t      lc;
    tg_lease_decision_e  da, db;

    (void) state;

    seed = 7;
    fast = 0;
    tg_lease_conf_default(&lc);

    for (i = 0; i < 200000; i++) {
        now_ms = TG_T0_MS;
        tg_lease_init(&a, &lc, now_ms - (tg_msec_t) tg_test_rand_in(&seed,
                                                                 0, 250));
        a.target_tokens = tg_test_rand_in(&seed, 0, 3) == 0
                          ? tg_test_rand_in(&seed, 0, (uint64_t) 1 << 34)
                          : tg_test_rand_in(&seed, 1, 2000);
        a.balance_tokens = (int64_t) tg_test_rand_in(&seed, 0, 2100) - 50;
        a.epoch_tokens = tg_test_rand_in(&seed, 0, 7) == 0
                         ? (uint64_t) TG_MTOK_MAX
                           - tg_test_rand_in(&seed, 0, 10)
                         : tg_test_rand_in(&seed, 0, 100000);
        a.demand_mtps = tg_test_rand_in(&seed, 0, 1000000);
        a.refill_inflight = tg_test_rand_in(&seed, 0, 1);
        a.denied_until_ms = tg_test_rand_in(&seed, 0, 5) == 0
                            ? now_ms + (tg_msec_t) tg_test_rand_in(&seed,
                                                                   0, 2)
                              - 1
                            : TG_MSEC_NEVER;
        cost_tokens = tg_test_rand_in(&seed, 0, 15) == 0
                      ? TG_TOKENS_MAX + tg_test_rand_in(&seed, 0, 1)
                      : tg_test_rand_in(&seed, 1, 40);
        b = a;

        da = tg_lease_take(&a, &lc, cost_tokens, now_ms);
        db = tg_lease_take_inline(&b, &lc, cost_tokens, now_ms);

        assert_int_equal(da, db);
        assert_int_equal(a.balance_tokens, b.balance_tokens);
        assert_int_equal(a.target_tokens, b.target_tokens);
        assert_int_equal(a.demand_mtps, b.demand_mtps);
        assert_int_equal(a.epoch_ms, b.epoch_ms);
        assert_int_equal(a.epoch_tokens, b.epoch_tokens);
        assert_int_equal(a.denied_until_ms, b.denied_until_ms);
        assert_int_equal(a.refill_inflight, b.refill_inflight);
        assert_int_equal(a.steady_epochs, b.steady_epochs);
        assert_int_equal(a.l2_plenty, b.l2_plenty);

        fast += (da == TG_LEASE_HIT);
    }

    /* the draw reaches the inline case, and also the others */
    assert_true(fast > 20000 && fast < 180000);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(a_new_lease_targets_the_minimum),
        cmocka_unit_test(a_miss_leaves_the_balance_and_marks_a_refill),
        cmocka_unit_test(the_low_water_mark_signals_a_refill_once),
        cmocka_unit_test(
            a_first_epoch_of_demand_is_taken_whole),
        cmocka_unit_test(
            an_epoch_of_demand_moves_the_target_a_quarter_of_the_way),
        cmocka_unit_test(a_cold_lease_closes_its_first_epoch_early),
        cmocka_unit_test(a_cold_lease_below_four_targets_keeps_its_epoch),
        cmocka_unit_test(the_target_follows_steady_demand_up_and_down),
        cmocka_unit_test(the_target_stays_within_min_and_max),
        cmocka_unit_test(
            steady_demand_with_plenty_of_l2_stretches_the_horizon_in_steps),
        cmocka_unit_test(a_demand_shift_ends_the_stretch_at_once),
        TG_CASE("stretched while L2 covers 8 full targets per gateway",
                the_stretch_needs_l2_to_cover_eight_full_targets_per_gateway,
                &stretch_at_plenty),
        TG_CASE("not stretched one token short of that",
                the_stretch_needs_l2_to_cover_eight_full_targets_per_gateway,
                &stretch_short),
        TG_CASE("not stretched when one more gateway shares L2",
                the_stretch_needs_l2_to_cover_eight_full_targets_per_gateway,
                &stretch_shared),
        TG_CASE("not stretched with stretch_max 1",
                the_stretch_needs_l2_to_cover_eight_full_targets_per_gateway,
                &stretch_none),
        TG_CASE("stretched no further than stretch_max",
                the_stretch_needs_l2_to_cover_eight_full_targets_per_gateway,
                &stretch_twice),
        TG_CASE("no live gateways count as one for the stretch",
                the_stretch_needs_l2_to_cover_eight_full_targets_per_gateway,
                &stretch_no_gateways),
        cmocka_unit_test(
            l2_running_short_shrinks_the_target_at_once),
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
        cmocka_unit_test(the_inline_take_matches_the_full_one),
    };

    return cmocka_run_group_tests_name("lease", tests, NULL, NULL);
}
