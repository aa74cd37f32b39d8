/*
 * Copyright (C) Tollgate developers
 *
 * L1 usage and emergency mode: the automatic trigger, its expiry and
 * renewal, operator control, and what each priority gets meanwhile.
 *
 * The cluster in every case has a capacity of 100 tokens/s and a 10 s
 * window: 1000 tokens granted within the window is 100 % usage.
 */


#include "tg_test.h"


#define TTL_MS  300000


static void
setup(tg_fixture_t *f)
{
    /* the fixture's application plays the load: priority 0, 100 tokens/s */
    tg_fixture_setup(f, 100, 0, 100, 100, 0);
}


/* usage pushed up directly: a positive settle counts as granted */
static void
use(tg_fixture_t *f, int64_t tokens)
{
    tg_settle(&f->c, &f->cc, &f->a, &f->ac, tokens, f->now_ms);
}


static int
active(tg_fixture_t *f)
{
    return tg_cluster_emergency_active(&f->c, &f->cc, f->now_ms);
}


static void
usage_counts_what_was_granted_within_the_window(void **state)
{
    tg_fixture_t  f;

    (void) state;

    setup(&f);
    tg_fixture_acquire(&f, 50, 50);
    assert_int_equal(tg_cluster_usage_permille(&f.c, &f.cc, f.now_ms), 50);

    f.now_ms += 9999;
    assert_int_equal(tg_cluster_usage_permille(&f.c, &f.cc, f.now_ms), 50);

    /* the slot's period left the window: it counts 0 */
    f.now_ms += 1;
    assert_int_equal(tg_cluster_usage_permille(&f.c, &f.cc, f.now_ms), 0);

    /* and is reused by a later period without the old grant in it */
    tg_fixture_acquire(&f, 20, 20);
    assert_int_equal(tg_cluster_usage_permille(&f.c, &f.cc, f.now_ms), 20);
}


static void
usage_of_a_cluster_without_capacity_is_all_or_nothing(void **state)
{
    tg_fixture_t  f;

    (void) state;

    tg_fixture_setup(&f, 0, 0, 10, 10, 0);
    assert_int_equal(tg_cluster_usage_permille(&f.c, &f.cc, f.now_ms), 0);

    use(&f, 1);
    assert_int_equal(tg_cluster_usage_permille(&f.c, &f.cc, f.now_ms), 1000);
}


static void
emergency_turns_itself_on_at_95_percent(void **state)
{
    tg_fixture_t  f;

    (void) state;

    setup(&f);

    use(&f, 949);
    assert_false(active(&f));
    assert_int_equal(f.c.emergency, TG_EMERGENCY_OFF);

    use(&f, 1);
    assert_true(active(&f));
    assert_int_equal(f.c.emergency, TG_EMERGENCY_AUTO);
    assert_int_equal(f.c.emergency_until_ms, f.now_ms + TTL_MS);
}


static void
grants_at_full_capacity_turn_emergency_on(void **state)
{
    tg_fixture_t  f;
    tg_msec_t     end_ms;
    uint32_t      usage_permille;

    (void) state;

    setup(&f);
    end_ms = f.now_ms + 20000;

    while (f.now_ms < end_ms && !active(&f)) {
        f.now_ms += 100;
        tg_fixture_acquire(&f, 10, 1);

        usage_permille = tg_cluster_usage_permille(&f.c, &f.cc, f.now_ms);
        assert_int_equal(active(&f), usage_permille >= 950);
    }

    assert_true(f.now_ms < end_ms);
    assert_int_equal(f.c.emergency, TG_EMERGENCY_AUTO);
}


static void
in_emergency_p0_gets_burst_p1_guaranteed_p2_nothing(void **state)
{
    tg_fixture_t   f;
    tg_app_conf_t  p0c, p1c, p2c;
    tg_app_t       p0, p1, p2;
    tg_grant_t     g;

    (void) state;

    setup(&f);
    tg_app_setup(&p0c, &p0, 5, 10, 10, 0, f.now_ms);
    tg_app_setup(&p1c, &p1, 5, 10, 10, 1, f.now_ms);
    tg_app_setup(&p2c, &p2, 5, 10, 10, 2, f.now_ms);

    tg_cluster_emergency_set(&f.c, &f.cc, TG_EMERGENCY_MANUAL, 1, 0,
                             f.now_ms);

    tg_acquire(&f.c, &f.cc, &p0, &p0c, 10, 1, f.now_ms, &g);
    assert_int_equal(g.granted_tokens, 10);
    assert_int_equal(g.layer, TG_LAYER_BURST);
    assert_true(g.emergency);

    /* and borrowing is off for everyone: P0 is refused by its burst */
    tg_acquire(&f.c, &f.cc, &p0, &p0c, 1, 1, f.now_ms, &g);
    assert_int_equal(g.granted_tokens, 0);
    assert_int_equal(g.layer, TG_LAYER_BURST);

    tg_acquire(&f.c, &f.cc, &p1, &p1c, 10, 1, f.now_ms, &g);
    assert_int_equal(g.granted_tokens, 5);
    assert_int_equal(g.from_burst, 0);
    assert_int_equal(g.layer, TG_LAYER_GUARANTEED);

    tg_acquire(&f.c, &f.cc, &p1, &p1c, 1, 1, f.now_ms, &g);
    assert_int_equal(g.granted_tokens, 0);
    assert_int_equal(g.layer, TG_LAYER_GUARANTEED);

    tg_acquire(&f.c, &f.cc, &p2, &p2c, 1, 1, f.now_ms, &g);
    assert_int_equal(g.granted_tokens, 0);
    assert_int_equal(g.layer, TG_LAYER_CLUSTER);
    assert_true(g.emergency);

    /* released, with usage low: P2 is served again */
    tg_cluster_emergency_set(&f.c, &f.cc, TG_EMERGENCY_AUTO, 0, 0, f.now_ms);
    tg_acquire(&f.c, &f.cc, &p2, &p2c, 1, 1, f.now_ms, &g);
    assert_int_equal(g.granted_tokens, 1);
    assert_false(g.emergency);
}


typedef struct {
    tg_msec_t             ttl_ms;
    tg_msec_t             retry_after_ms;
} tg_p2_case_t;


static tg_p2_case_t  p2_left_2500 = { 2500, 2500 };
static tg_p2_case_t  p2_left_10 = { 10, 1000 };
static tg_p2_case_t  p2_left_5_minutes = { 0, 60000 };


static void
p2_retry_after_is_the_emergency_time_left_within_bounds(void **state)
{
    tg_p2_case_t   *t = *state;
    tg_fixture_t    f;
    tg_app_conf_t   ac;
    tg_app_t        a;
    tg_grant_t      g;

    setup(&f);
    tg_app_setup(&ac, &a, 5, 10, 0, 2, f.now_ms);
    tg_cluster_emergency_set(&f.c, &f.cc, TG_EMERGENCY_MANUAL, 1, t->ttl_ms,
                             f.now_ms);

    tg_acquire(&f.c, &f.cc, &a, &ac, 1, 1, f.now_ms, &g);
    assert_int_equal(g.retry_after_ms, t->retry_after_ms);
}


static void
a_manual_emergency_expires_after_five_minutes(void **state)
{
    tg_fixture_t  f;
    tg_msec_t     on_ms;

    (void) state;

    setup(&f);
    on_ms = f.now_ms;
    tg_cluster_emergency_set(&f.c, &f.cc, TG_EMERGENCY_MANUAL, 1, 0, on_ms);

    f.now_ms = on_ms + TTL_MS - 1;
    assert_true(active(&f));

    f.now_ms = on_ms + TTL_MS;
    assert_false(active(&f));
    assert_int_equal(f.c.emergency, TG_EMERGENCY_OFF);
}


static void
an_automatic_emergency_expires_five_minutes_after_usage_fell(void **s)
{
    tg_fixture_t  f;
    tg_msec_t     on_ms;

    (void) s;

    setup(&f);
    use(&f, 1000);
    on_ms = f.now_ms;
    assert_true(active(&f));

    /* usage left the window long ago: nothing renews it */
    f.now_ms = on_ms + TTL_MS - 1;
    assert_true(active(&f));

    f.now_ms = on_ms + TTL_MS;
    assert_false(active(&f));
}


static void
an_automatic_emergency_is_renewed_while_usage_stays_high(void **state)
{
    tg_fixture_t  f;
    tg_msec_t     on_ms, stop_ms;

    (void) state;

    setup(&f);
    on_ms = 0;

    /* seven minutes at full capacity */
    stop_ms = f.now_ms + 7 * 60000;

    while (f.now_ms < stop_ms) {
        f.now_ms += 100;
        tg_fixture_acquire(&f, 10, 1);

        if (on_ms == 0 && active(&f)) {
            on_ms = f.now_ms;
        }

        assert_true(on_ms == 0 || active(&f));
    }

    assert_true(on_ms != 0);
    assert_true(f.now_ms > on_ms + TTL_MS);
    assert_true(f.c.emergency_until_ms > on_ms + TTL_MS);

    /* the load stops: the last renewal still holds for five minutes */
    f.now_ms = stop_ms + TTL_MS - 2000;
    assert_true(active(&f));

    f.now_ms = stop_ms + TTL_MS;
    assert_false(active(&f));
}


static void
a_manual_emergency_is_not_shortened_by_usage(void **state)
{
    tg_fixture_t  f;
    tg_msec_t     on_ms;

    (void) state;

    setup(&f);
    on_ms = f.now_ms;
    tg_cluster_emergency_set(&f.c, &f.cc, TG_EMERGENCY_MANUAL, 1, 600000,
                             on_ms);

    use(&f, 1000);
    assert_true(active(&f));
    assert_int_equal(f.c.emergency, TG_EMERGENCY_MANUAL);
    assert_int_equal(f.c.emergency_until_ms, on_ms + 600000);

    f.now_ms = on_ms + 599999;
    use(&f, 1000);
    assert_true(active(&f));
    assert_int_equal(f.c.emergency, TG_EMERGENCY_MANUAL);
}


static void
manual_off_holds_the_automatic_trigger_for_the_ttl(void **state)
{
    tg_fixture_t  f;
    tg_msec_t     off_ms;

    (void) state;

    setup(&f);
    use(&f, 1000);
    assert_true(active(&f));

    off_ms = f.now_ms;
    tg_cluster_emergency_set(&f.c, &f.cc, TG_EMERGENCY_MANUAL, 0, 0, off_ms);
    assert_false(active(&f));

    f.now_ms = off_ms + TTL_MS - 1;
    use(&f, 1000);
    assert_false(active(&f));

    f.now_ms = off_ms + TTL_MS;
    assert_true(active(&f));
    assert_int_equal(f.c.emergency, TG_EMERGENCY_AUTO);
}


static void
release_lets_usage_decide(void **state)
{
    tg_fixture_t  f;

    (void) state;

    /* after a manual off, with usage high: automatic mode is back at once */
    setup(&f);
    use(&f, 1000);
    tg_cluster_emergency_set(&f.c, &f.cc, TG_EMERGENCY_MANUAL, 0, 0,
                             f.now_ms);
    assert_false(active(&f));

    tg_cluster_emergency_set(&f.c, &f.cc, TG_EMERGENCY_AUTO, 0, 0, f.now_ms);
    assert_true(active(&f));
    assert_int_equal(f.c.emergency, TG_EMERGENCY_AUTO);

    /* a manual on, with usage low: released means off */
    setup(&f);
    tg_cluster_emergency_set(&f.c, &f.cc, TG_EMERGENCY_MANUAL, 1, 0,
                             f.now_ms);
    assert_true(active(&f));

    tg_cluster_emergency_set(&f.c, &f.cc, TG_EMERGENCY_AUTO, 1, 0, f.now_ms);
    assert_false(active(&f));
}


static void
a_zero_trigger_disables_the_automatic_mode(void **state)
{
    tg_fixture_t  f;

    (void) state;

    setup(&f);
    f.cc.emergency_permille = 0;

    use(&f, 1000);
    assert_false(active(&f));

    tg_cluster_emergency_set(&f.c, &f.cc, TG_EMERGENCY_MANUAL, 1, 0,
                             f.now_ms);
    assert_true(active(&f));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(usage_counts_what_was_granted_within_the_window),
        cmocka_unit_test(
            usage_of_a_cluster_without_capacity_is_all_or_nothing),
        cmocka_unit_test(emergency_turns_itself_on_at_95_percent),
        cmocka_unit_test(grants_at_full_capacity_turn_emergency_on),
        cmocka_unit_test(in_emergency_p0_gets_burst_p1_guaranteed_p2_nothing),
        TG_CASE("P2 retry after is the emergency time left",
                p2_retry_after_is_the_emergency_time_left_within_bounds,
                &p2_left_2500),
        TG_CASE("P2 retry after is at least 1 s",
                p2_retry_after_is_the_emergency_time_left_within_bounds,
                &p2_left_10),
        TG_CASE("P2 retry after is at most 60 s",
                p2_retry_after_is_the_emergency_time_left_within_bounds,
                &p2_left_5_minutes),
        cmocka_unit_test(a_manual_emergency_expires_after_five_minutes),
        cmocka_unit_test(
            an_automatic_emergency_expires_five_minutes_after_usage_fell),
        cmocka_unit_test(
            an_automatic_emergency_is_renewed_while_usage_stays_high),
        cmocka_unit_test(a_manual_emergency_is_not_shortened_by_usage),
        cmocka_unit_test(manual_off_holds_the_automatic_trigger_for_the_ttl),
        cmocka_unit_test(release_lets_usage_decide),
        cmocka_unit_test(a_zero_trigger_disables_the_automatic_mode),
    };

    return cmocka_run_group_tests_name("emergency", tests, NULL, NULL);
}
