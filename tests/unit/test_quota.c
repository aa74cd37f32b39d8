/*
 * Copyright (C) Tollgate developers
 *
 * L1 and L2: where granted tokens come from, what refuses a request,
 * debt and interest, settling, operator borrow and repay.
 */


#include <string.h>

#include "tg_test.h"


static void
a_fresh_app_starts_with_both_buckets_full(void **state)
{
    tg_fixture_t  f;
    tg_grant_t    g;

    (void) state;

    tg_fixture_setup(&f, 1000, 0, 10, 25, 0);

    g = tg_fixture_acquire(&f, 100, 1);

    assert_int_equal(g.granted_tokens, 25);
    assert_int_equal(g.from_guaranteed, 10);
    assert_int_equal(g.from_burst, 15);
    assert_int_equal(g.layer, TG_LAYER_BURST);
    assert_int_equal(f.c.pool.level_mtok, (1000 - 25) * 1000);
}


static void
bucket_ms_sets_how_many_seconds_a_bucket_holds(void **state)
{
    tg_fixture_t  f;
    tg_grant_t    g;

    (void) state;

    tg_fixture_setup(&f, 1000, 0, 10, 25, 0);
    f.ac.bucket_ms = 2000;
    tg_app_init(&f.a, &f.ac, f.now_ms);

    g = tg_fixture_acquire(&f, 100, 1);

    assert_int_equal(g.from_guaranteed, 20);
    assert_int_equal(g.from_burst, 30);
}


static void
guaranteed_then_burst_then_borrowing(void **state)
{
    tg_fixture_t  f;
    tg_grant_t    g;

    (void) state;

    /* guaranteed 10, burst bucket 5, up to 20 tokens of debt */
    tg_fixture_setup(&f, 1000, 200, 10, 15, 20);

    g = tg_fixture_acquire(&f, 8, 8);
    assert_int_equal(g.from_guaranteed, 8);
    assert_int_equal(g.from_burst, 0);
    assert_int_equal(g.layer, TG_LAYER_GUARANTEED);

    g = tg_fixture_acquire(&f, 5, 5);
    assert_int_equal(g.from_guaranteed, 2);
    assert_int_equal(g.from_burst, 3);
    assert_int_equal(g.layer, TG_LAYER_BURST);

    g = tg_fixture_acquire(&f, 4, 4);
    assert_int_equal(g.from_burst, 2);
    assert_int_equal(g.borrowed, 2);
    assert_int_equal(g.granted_tokens, 4);
    assert_int_equal(g.layer, TG_LAYER_DEBT);

    /* borrowing only reaches min, however much is wanted */
    g = tg_fixture_acquire(&f, 10, 1);
    assert_int_equal(g.granted_tokens, 1);
    assert_int_equal(g.borrowed, 1);

    assert_int_equal(f.a.debt_mtok, 3 * 1100);
    assert_int_equal(f.c.pool.level_mtok, (1000 - 18) * 1000);
    assert_int_equal(tg_cluster_usage_permille(&f.c, &f.cc, f.now_ms),
                     18 * 1000 / 10000);
}


static void
burst_stops_at_the_reserve_while_guaranteed_goes_to_zero(void **state)
{
    tg_fixture_t  f;
    tg_grant_t    g;

    (void) state;

    /* capacity 100 tokens/s, reserve half of it: 50 tokens */
    tg_fixture_setup(&f, 100, 500, 100, 200, 0);

    f.c.pool.level_mtok = 60000;
    g = tg_fixture_acquire(&f, 100, 1);

    assert_int_equal(g.from_guaranteed, 60);
    assert_int_equal(g.from_burst, 0);
    assert_int_equal(f.c.pool.level_mtok, 0);

    tg_app_setup(&f.ac, &f.a, 5, 200, 0, 0, f.now_ms);
    f.c.pool.level_mtok = 70000;
    g = tg_fixture_acquire(&f, 100, 1);

    assert_int_equal(g.from_guaranteed, 5);
    assert_int_equal(g.from_burst, 15);
    assert_int_equal(f.c.pool.level_mtok, 50000);

    /* the app still has burst tokens: the cluster's reserve refuses */
    g = tg_fixture_acquire(&f, 1, 1);
    assert_int_equal(g.granted_tokens, 0);
    assert_int_equal(g.layer, TG_LAYER_CLUSTER);
}


static void
interest_is_ten_percent_and_refill_pays_debt_first(void **state)
{
    tg_fixture_t  f;
    tg_grant_t    g;

    (void) state;

    tg_fixture_setup(&f, 10000, 0, 10, 10, 100);

    g = tg_fixture_acquire(&f, 10, 10);
    assert_int_equal(g.from_guaranteed, 10);

    g = tg_fixture_acquire(&f, 5, 5);
    assert_int_equal(g.borrowed, 5);
    assert_int_equal(f.a.debt_mtok, 5500);

    /* half a second of guaranteed rate all goes to the debt */
    f.now_ms += 500;
    tg_app_refill(&f.a, &f.ac, f.now_ms);
    assert_int_equal(f.a.debt_mtok, 500);
    assert_int_equal(f.a.guaranteed.level_mtok, 0);

    f.now_ms += 100;
    tg_app_refill(&f.a, &f.ac, f.now_ms);
    assert_int_equal(f.a.debt_mtok, 0);
    assert_int_equal(f.a.guaranteed.level_mtok, 500);
}


static void
the_max_borrow_ceiling_refuses_with_the_debt_layer(void **state)
{
    tg_fixture_t  f;
    tg_grant_t    g;

    (void) state;

    /* 3 tokens of debt allow 2 borrowed tokens at 1.1 each */
    tg_fixture_setup(&f, 10000, 0, 1, 1, 3);
    tg_fixture_acquire(&f, 1, 1);

    g = tg_fixture_acquire(&f, 3, 3);
    assert_int_equal(g.granted_tokens, 0);
    assert_int_equal(g.layer, TG_LAYER_DEBT);
    assert_int_equal(f.a.debt_mtok, 0);

    g = tg_fixture_acquire(&f, 2, 2);
    assert_int_equal(g.borrowed, 2);
    assert_int_equal(f.a.debt_mtok, 2200);

    /* one more token needs 1.1 tokens of debt freed at 1 token/s */
    g = tg_fixture_acquire(&f, 1, 1);
    assert_int_equal(g.granted_tokens, 0);
    assert_int_equal(g.layer, TG_LAYER_DEBT);
    assert_int_equal(g.retry_after_ms, 1100);
}


static void
a_refusal_changes_nothing_but_the_refill(void **state)
{
    tg_fixture_t  f, before;
    tg_grant_t    g;

    (void) state;

    tg_fixture_setup(&f, 100, 200, 10, 20, 5);
    tg_fixture_acquire(&f, 20, 20);

    f.now_ms += 300;
    tg_settle(&f.c, &f.cc, &f.a, &f.ac, 0, f.now_ms);

    /* memcpy, not assignment: padding must compare equal too */
    memcpy(&before, &f, sizeof(tg_fixture_t));

    g = tg_fixture_acquire(&f, 50, 50);

    assert_int_equal(g.granted_tokens, 0);
    assert_memory_equal(&f.a, &before.a, sizeof(tg_app_t));
    assert_memory_equal(&f.c, &before.c, sizeof(tg_cluster_t));
}


static void
an_exhausted_guaranteed_app_is_refused_by_its_guaranteed_bucket(void **s)
{
    tg_fixture_t  f;
    tg_grant_t    g;

    (void) s;

    tg_fixture_setup(&f, 1000, 0, 2, 2, 0);
    tg_fixture_acquire(&f, 2, 2);

    g = tg_fixture_acquire(&f, 3, 3);
    assert_int_equal(g.layer, TG_LAYER_GUARANTEED);
    assert_int_equal(g.retry_after_ms, 1500);

    /* a debt is paid before the bucket grows, so it adds to the wait */
    f.a.debt_mtok = 1000;
    g = tg_fixture_acquire(&f, 3, 3);
    assert_int_equal(g.retry_after_ms, 2000);
}


static void
an_exhausted_burst_app_is_refused_by_its_burst_bucket(void **state)
{
    tg_fixture_t  f;
    tg_grant_t    g;

    (void) state;

    tg_fixture_setup(&f, 1000, 0, 2, 4, 0);
    tg_fixture_acquire(&f, 4, 4);

    /* both buckets refill together at the burst rate */
    g = tg_fixture_acquire(&f, 6, 6);
    assert_int_equal(g.layer, TG_LAYER_BURST);
    assert_int_equal(g.retry_after_ms, 1500);
}


static void
an_empty_pool_refuses_with_the_cluster_layer(void **state)
{
    tg_fixture_t  f;
    tg_grant_t    g;

    (void) state;

    tg_fixture_setup(&f, 2, 0, 10, 10, 0);
    f.c.pool.level_mtok = 0;

    g = tg_fixture_acquire(&f, 5, 5);
    assert_int_equal(g.layer, TG_LAYER_CLUSTER);
    assert_int_equal(g.retry_after_ms, 2500);
}


typedef struct {
    uint64_t              guaranteed_tps;
    uint64_t              burst_tps;
    uint64_t              min_tokens;
    tg_msec_t             retry_after_ms;
} tg_retry_case_t;


static tg_retry_case_t  retry_short = { 1000, 1000, 1, 1000 };
static tg_retry_case_t  retry_long = { 1, 1, 10000000, 3600000 };
static tg_retry_case_t  retry_no_rate = { 0, 0, 1, 60000 };
static tg_retry_case_t  retry_exact = { 4, 4, 10, 2500 };


static void
retry_after_is_the_wait_within_bounds(void **state)
{
    tg_retry_case_t  *t = *state;
    tg_fixture_t      f;
    tg_grant_t        g;

    tg_fixture_setup(&f, 100000, 0, t->guaranteed_tps, t->burst_tps, 0);
    f.a.guaranteed.level_mtok = 0;

    g = tg_fixture_acquire(&f, t->min_tokens, t->min_tokens);

    assert_int_equal(g.granted_tokens, 0);
    assert_int_equal(g.retry_after_ms, t->retry_after_ms);
}


static void
settling_more_than_charged_becomes_debt_and_usage(void **state)
{
    tg_fixture_t  f;
    tg_grant_t    g;

    (void) state;

    tg_fixture_setup(&f, 100, 0, 10, 10, 0);
    f.c.pool.level_mtok = 2000;

    tg_settle(&f.c, &f.cc, &f.a, &f.ac, 5, f.now_ms);

    assert_int_equal(f.a.debt_mtok, 5000);
    assert_int_equal(f.c.pool.level_mtok, -3000);
    assert_int_equal(tg_cluster_usage_permille(&f.c, &f.cc, f.now_ms), 5);

    /* a pool below zero offers nothing until refill brings it back */
    g = tg_fixture_acquire(&f, 1, 1);
    assert_int_equal(g.layer, TG_LAYER_CLUSTER);

    f.now_ms += 40;
    g = tg_fixture_acquire(&f, 1, 1);
    assert_int_equal(g.granted_tokens, 1);
}


static void
settling_less_than_charged_returns_tokens_up_to_the_caps(void **state)
{
    tg_fixture_t  f;
    uint32_t      usage_permille;

    (void) state;

    tg_fixture_setup(&f, 100, 0, 10, 10, 0);
    tg_fixture_acquire(&f, 8, 8);
    usage_permille = tg_cluster_usage_permille(&f.c, &f.cc, f.now_ms);

    tg_settle(&f.c, &f.cc, &f.a, &f.ac, -5, f.now_ms);
    assert_int_equal(f.a.guaranteed.level_mtok, 7000);
    assert_int_equal(f.c.pool.level_mtok, 97000);

    tg_settle(&f.c, &f.cc, &f.a, &f.ac, -5, f.now_ms);
    assert_int_equal(f.a.guaranteed.level_mtok, 10000);
    assert_int_equal(f.c.pool.level_mtok, 100000);

    assert_int_equal(f.a.debt_mtok, 0);
    assert_int_equal(tg_cluster_usage_permille(&f.c, &f.cc, f.now_ms),
                     usage_permille);
}


static void
an_operator_borrow_lends_above_the_cap_with_interest(void **state)
{
    tg_fixture_t  f;

    (void) state;

    tg_fixture_setup(&f, 1000, 0, 10, 10, 50);

    assert_int_equal(tg_borrow(&f.c, &f.cc, &f.a, &f.ac, 20, f.now_ms), 20);
    assert_int_equal(f.a.guaranteed.level_mtok, 30000);
    assert_int_equal(f.a.debt_mtok, 22000);

    /* the pool pays when the lent tokens are spent, not twice */
    assert_int_equal(f.c.pool.level_mtok, 1000000);

    /* the rest of the 50 tokens of debt allows 25 more at 1.1 */
    assert_int_equal(tg_borrow(&f.c, &f.cc, &f.a, &f.ac, 100, f.now_ms), 25);
    assert_int_equal(f.a.debt_mtok, 49500);

    /* refill pays debt and does not cut the lent tokens down to the cap */
    f.now_ms += 1000;
    assert_int_equal(tg_borrow(&f.c, &f.cc, &f.a, &f.ac, 0, f.now_ms), 0);
    assert_int_equal(f.a.guaranteed.level_mtok, 55000);
    assert_int_equal(f.a.debt_mtok, 39500);
}


static void
an_operator_borrow_stops_at_the_cluster_reserve(void **state)
{
    tg_fixture_t  f;

    (void) state;

    tg_fixture_setup(&f, 100, 200, 10, 10, 1000);
    f.c.pool.level_mtok = 27500;

    assert_int_equal(tg_borrow(&f.c, &f.cc, &f.a, &f.ac, 100, f.now_ms), 7);
}


static void
an_operator_repay_spends_the_guaranteed_balance(void **state)
{
    tg_fixture_t  f;

    (void) state;

    tg_fixture_setup(&f, 1000, 0, 10, 10, 50);
    tg_borrow(&f.c, &f.cc, &f.a, &f.ac, 45, f.now_ms);
    assert_int_equal(f.a.debt_mtok, 49500);

    /* 49.5 tokens of debt take 50 whole tokens to clear */
    assert_int_equal(tg_repay(&f.a, &f.ac, 100, f.now_ms), 50);
    assert_int_equal(f.a.debt_mtok, 0);
    assert_int_equal(f.a.guaranteed.level_mtok, 5000);

    assert_int_equal(tg_repay(&f.a, &f.ac, 100, f.now_ms), 0);
}


static void
an_operator_repay_is_limited_by_the_balance(void **state)
{
    tg_fixture_t  f;

    (void) state;

    tg_fixture_setup(&f, 1000, 0, 10, 10, 50);
    f.a.debt_mtok = 30000;
    f.a.guaranteed.level_mtok = 4500;

    assert_int_equal(tg_repay(&f.a, &f.ac, 100, f.now_ms), 4);
    assert_int_equal(f.a.debt_mtok, 26000);
    assert_int_equal(f.a.guaranteed.level_mtok, 500);

    assert_int_equal(tg_repay(&f.a, &f.ac, 0, f.now_ms), 0);
}


static void
min_zero_or_above_want_is_an_error(void **state)
{
    tg_fixture_t  f;
    tg_grant_t    g;

    (void) state;

    tg_fixture_setup(&f, 1000, 0, 10, 10, 0);

    assert_int_equal(tg_acquire(&f.c, &f.cc, &f.a, &f.ac, 5, 0, f.now_ms,
                                &g),
                     TG_ERROR);
    assert_int_equal(tg_acquire(&f.c, &f.cc, &f.a, &f.ac, 5, 6, f.now_ms,
                                &g),
                     TG_ERROR);
}


static void
layers_are_named_as_in_the_headers(void **state)
{
    (void) state;

    assert_string_equal(tg_layer_name(TG_LAYER_NONE), "none");
    assert_string_equal(tg_layer_name(TG_LAYER_CLUSTER), "cluster");
    assert_string_equal(tg_layer_name(TG_LAYER_GUARANTEED), "guaranteed");
    assert_string_equal(tg_layer_name(TG_LAYER_BURST), "burst");
    assert_string_equal(tg_layer_name(TG_LAYER_DEBT), "debt");
    assert_string_equal(tg_layer_name(TG_LAYER_LOCAL), "local");
    assert_string_equal(tg_layer_name((tg_layer_e) 99), "none");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(a_fresh_app_starts_with_both_buckets_full),
        cmocka_unit_test(bucket_ms_sets_how_many_seconds_a_bucket_holds),
        cmocka_unit_test(guaranteed_then_burst_then_borrowing),
        cmocka_unit_test(
            burst_stops_at_the_reserve_while_guaranteed_goes_to_zero),
        cmocka_unit_test(interest_is_ten_percent_and_refill_pays_debt_first),
        cmocka_unit_test(the_max_borrow_ceiling_refuses_with_the_debt_layer),
        cmocka_unit_test(a_refusal_changes_nothing_but_the_refill),
        cmocka_unit_test(
            an_exhausted_guaranteed_app_is_refused_by_its_guaranteed_bucket),
        cmocka_unit_test(
            an_exhausted_burst_app_is_refused_by_its_burst_bucket),
        cmocka_unit_test(an_empty_pool_refuses_with_the_cluster_layer),
        TG_CASE("retry after a short wait is at least 1 s",
                retry_after_is_the_wait_within_bounds, &retry_short),
        TG_CASE("retry after a very long wait is at most 1 h",
                retry_after_is_the_wait_within_bounds, &retry_long),
        TG_CASE("retry after with no rate at all is 60 s",
                retry_after_is_the_wait_within_bounds, &retry_no_rate),
        TG_CASE("retry after in range is missing mtok / rate",
                retry_after_is_the_wait_within_bounds, &retry_exact),
        cmocka_unit_test(settling_more_than_charged_becomes_debt_and_usage),
        cmocka_unit_test(
            settling_less_than_charged_returns_tokens_up_to_the_caps),
        cmocka_unit_test(
            an_operator_borrow_lends_above_the_cap_with_interest),
        cmocka_unit_test(an_operator_borrow_stops_at_the_cluster_reserve),
        cmocka_unit_test(an_operator_repay_spends_the_guaranteed_balance),
        cmocka_unit_test(an_operator_repay_is_limited_by_the_balance),
        cmocka_unit_test(min_zero_or_above_want_is_an_error),
        cmocka_unit_test(layers_are_named_as_in_the_headers),
    };

    return cmocka_run_group_tests_name("quota", tests, NULL, NULL);
}
