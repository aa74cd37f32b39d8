/*
 * Copyright (C) Tollgate developers
 *
 * Token buckets: exact refill in milli-tokens, the cap, and the clock.
 */


#include "tg_test.h"


#define HOUR_MS  3600000


static void
seven_tps_for_an_hour_in_uneven_steps_gives_25200(void **state)
{
    uint64_t     seed, taken_tokens;
    tg_msec_t    now_ms, end_ms;
    tg_bucket_t  b;

    (void) state;

    seed = 0x7017a7e;
    taken_tokens = 0;
    now_ms = TG_T0_MS;
    end_ms = TG_T0_MS + HOUR_MS;

    tg_bucket_init(&b, 0, now_ms);

    /*
     * Steps stay under 858 ms, so a step's refill plus the fraction left
     * over never reaches the 7000 mtok cap: no token is lost to the cap
     * and the only rounding is the fraction still in the bucket.
     */
    while (now_ms < end_ms) {
        now_ms += (tg_msec_t) tg_test_rand_in(&seed, 1, 800);
        if (now_ms > end_ms) {
            now_ms = end_ms;
        }

        tg_bucket_refill(&b, 7, 7000, now_ms);

        taken_tokens += (uint64_t) b.level_mtok / 1000;
        b.level_mtok %= 1000;
    }

    assert_in_range(taken_tokens, 25199, 25201);
    assert_int_equal(taken_tokens * 1000 + (uint64_t) b.level_mtok,
                     7ULL * HOUR_MS);
}


static void
refill_stops_at_the_cap(void **state)
{
    tg_bucket_t  b;

    (void) state;

    tg_bucket_init(&b, 0, TG_T0_MS);

    assert_int_equal(tg_bucket_refill(&b, 7, 7000, TG_T0_MS + 10000), 7000);
    assert_int_equal(b.level_mtok, 7000);
    assert_int_equal(b.last_ms, TG_T0_MS + 10000);
}


static void
refill_is_exact_for_a_fraction_of_a_token(void **state)
{
    tg_bucket_t  b;

    (void) state;

    tg_bucket_init(&b, 0, TG_T0_MS);

    /* 7 tokens/s for 1 ms is 7 mtok, nothing rounded away */
    assert_int_equal(tg_bucket_refill(&b, 7, 7000, TG_T0_MS + 1), 7);
    assert_int_equal(tg_bucket_refill(&b, 7, 7000, TG_T0_MS + 143), 994);
    assert_int_equal(b.level_mtok, 1001);
}


static void
a_level_above_the_cap_is_not_cut_down(void **state)
{
    tg_bucket_t  b;

    (void) state;

    tg_bucket_init(&b, 12000, TG_T0_MS);

    assert_int_equal(tg_bucket_refill(&b, 7, 7000, TG_T0_MS + 1000), 0);
    assert_int_equal(b.level_mtok, 12000);

    /* the time spent above the cap is not saved up for later */
    b.level_mtok = 6000;
    assert_int_equal(tg_bucket_refill(&b, 7, 7000, TG_T0_MS + 1100), 700);
    assert_int_equal(b.level_mtok, 6700);
}


static void
a_negative_level_refills_from_below_zero(void **state)
{
    tg_bucket_t  b;

    (void) state;

    tg_bucket_init(&b, -3000, TG_T0_MS);

    assert_int_equal(tg_bucket_refill(&b, 7, 7000, TG_T0_MS + 1000), 7000);
    assert_int_equal(b.level_mtok, 4000);
}


static void
a_clock_going_back_adds_nothing_and_restarts_from_there(void **state)
{
    tg_bucket_t  b;

    (void) state;

    tg_bucket_init(&b, 0, TG_T0_MS);

    assert_int_equal(tg_bucket_refill(&b, 7, 1000000, TG_T0_MS - 5000), 0);
    assert_int_equal(b.level_mtok, 0);
    assert_int_equal(b.last_ms, TG_T0_MS - 5000);

    /* one second after the new origin, not eight after nothing */
    assert_int_equal(tg_bucket_refill(&b, 7, 1000000, TG_T0_MS - 4000),
                     7000);
}


static void
the_same_instant_twice_adds_nothing(void **state)
{
    tg_bucket_t  b;

    (void) state;

    tg_bucket_init(&b, 0, TG_T0_MS);

    assert_int_equal(tg_bucket_refill(&b, 7, 7000, TG_T0_MS + 500), 3500);
    assert_int_equal(tg_bucket_refill(&b, 7, 7000, TG_T0_MS + 500), 0);
    assert_int_equal(b.level_mtok, 3500);
}


static void
elapsed_time_counts_at_most_a_day(void **state)
{
    tg_bucket_t  b;

    (void) state;

    tg_bucket_init(&b, 0, TG_T0_MS);

    assert_int_equal(tg_bucket_refill(&b, 1, INT64_MAX,
                                      TG_T0_MS + 10LL * TG_ELAPSED_MAX_MS),
                     TG_ELAPSED_MAX_MS);
}


static void
a_huge_rate_saturates_without_overflow(void **state)
{
    tg_bucket_t  b;

    (void) state;

    tg_bucket_init(&b, 0, TG_T0_MS);
    tg_bucket_refill(&b, UINT64_MAX, 5000, TG_T0_MS + TG_ELAPSED_MAX_MS);
    assert_int_equal(b.level_mtok, 5000);

    tg_bucket_init(&b, 0, TG_T0_MS);
    tg_bucket_refill(&b, UINT64_MAX, INT64_MAX, INT64_MAX);
    assert_true(b.level_mtok > 0);
    assert_true(b.level_mtok <= (1LL << 53));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(seven_tps_for_an_hour_in_uneven_steps_gives_25200),
        cmocka_unit_test(refill_stops_at_the_cap),
        cmocka_unit_test(refill_is_exact_for_a_fraction_of_a_token),
        cmocka_unit_test(a_level_above_the_cap_is_not_cut_down),
        cmocka_unit_test(a_negative_level_refills_from_below_zero),
        cmocka_unit_test(
            a_clock_going_back_adds_nothing_and_restarts_from_there),
        cmocka_unit_test(the_same_instant_twice_adds_nothing),
        cmocka_unit_test(elapsed_time_counts_at_most_a_day),
        cmocka_unit_test(a_huge_rate_saturates_without_overflow),
    };

    return cmocka_run_group_tests_name("bucket", tests, NULL, NULL);
}
