/*
 * Copyright (C) Tollgate developers
 *
 * Degradation: the window of Redis calls, its p99 and error rate, the
 * level it asks for, holds on the way down, operators' overrides.
 */


#include <string.h>

#include "tg_test.h"


/* evaluations this far apart, as a gateway's sync timer would make them */
#define TG_TICK_MS  100


typedef struct {
    tg_health_conf_t      hc;
    tg_health_t           h;
    tg_msec_t             now_ms;
    const char           *reason;
} tg_health_fixture_t;


typedef struct {
    uint32_t              calls;
    uint32_t              failed;         /* of the calls */
    int                   outcome;        /* of the failed ones */
    uint32_t              latency_us;     /* of every call */
    int                   connected;
    int                   level;
    const char           *reason;         /* when level > 0 */
} tg_target_case_t;


typedef struct {
    uint32_t              latency_us;
    uint32_t              p99_us;
} tg_p99_case_t;


static void
health_setup(tg_health_fixture_t *f)
{
    f->now_ms = TG_T0_MS;
    f->reason = NULL;
    tg_health_conf_default(&f->hc);
    tg_health_init(&f->h, f->now_ms);
}


static void
health_calls(tg_health_fixture_t *f, uint32_t n, uint32_t latency_us,
    int outcome)
{
    uint32_t  i;

    for (i = 0; i < n; i++) {
        tg_health_record(&f->h, &f->hc, latency_us, outcome, f->now_ms);
    }
}


static int
health_evaluate(tg_health_fixture_t *f, int connected)
{
    f->reason = NULL;

    return tg_health_evaluate(&f->h, &f->hc, connected, f->now_ms,
                              &f->reason);
}


/*
 * Evaluates every tick until the level changes; returns the time it
 * took, or -1 when nothing changed within limit_ms.
 */
static tg_msec_t
health_wait_change(tg_health_fixture_t *f, int connected, tg_msec_t limit_ms)
{
    tg_msec_t  start_ms;

    start_ms = f->now_ms;

    while (f->now_ms - start_ms <= limit_ms) {
        if (health_evaluate(f, connected)) {
            return f->now_ms - start_ms;
        }

        f->now_ms += TG_TICK_MS;
    }

    return -1;
}


/* the connection is lost: fail-local at once */
static void
health_fail_local(tg_health_fixture_t *f)
{
    assert_int_equal(health_evaluate(f, 0), 1);
    assert_int_equal(f->h.level, TG_LEVEL_FAIL_LOCAL);
    assert_string_equal(f->reason, "redis unreachable");
}


static tg_target_case_t  p99_10ms = {
    100, 0, TG_CALL_OK, 10000, 1, 0, NULL };
static tg_target_case_t  p99_over_10ms = {
    100, 0, TG_CALL_OK, 10001, 1, 1, "p99 latency" };
static tg_target_case_t  p99_100ms = {
    100, 0, TG_CALL_OK, 100000, 1, 1, "p99 latency" };
static tg_target_case_t  p99_over_100ms = {
    100, 0, TG_CALL_OK, 100001, 1, 2, "p99 latency" };
static tg_target_case_t  p99_over_1s = {
    100, 0, TG_CALL_OK, 5000000, 1, 2, "p99 latency" };
static tg_target_case_t  errors_4_9 = {
    1000, 49, TG_CALL_ERROR, 300, 1, 0, NULL };
static tg_target_case_t  errors_5 = {
    100, 5, TG_CALL_ERROR, 300, 1, 2, "error rate" };
static tg_target_case_t  timeouts_5 = {
    100, 5, TG_CALL_TIMEOUT, 300, 1, 2, "error rate" };
static tg_target_case_t  errors_50 = {
    10, 5, TG_CALL_ERROR, 300, 1, 2, "error rate" };
static tg_target_case_t  errors_50_01 = {
    10000, 5001, TG_CALL_ERROR, 300, 1, 3, "error rate" };
static tg_target_case_t  timeouts_all = {
    20, 20, TG_CALL_TIMEOUT, 2000000, 1, 3, "error rate" };
static tg_target_case_t  disconnected = {
    0, 0, TG_CALL_OK, 0, 0, 3, "redis unreachable" };
static tg_target_case_t  disconnected_healthy = {
    100, 0, TG_CALL_OK, 300, 0, 3, "redis unreachable" };
static tg_target_case_t  healthy = {
    100, 0, TG_CALL_OK, 300, 1, 0, NULL };


/* from a fresh state, the window asks for the level and the level goes */
static void
target_and_level_match(void **state)
{
    tg_target_case_t     *t = *state;
    tg_health_fixture_t   f;

    health_setup(&f);
    health_calls(&f, t->failed, t->latency_us, t->outcome);
    health_calls(&f, t->calls - t->failed, t->latency_us, TG_CALL_OK);

    assert_int_equal(tg_health_target(&f.h, &f.hc, t->connected, f.now_ms),
                     t->level);
    assert_int_equal(health_evaluate(&f, t->connected), t->level > 0);
    assert_int_equal(f.h.level, t->level);

    if (t->level > 0) {
        assert_non_null(f.reason);
        assert_string_equal(f.reason, t->reason);
        assert_int_equal(f.h.since_ms, f.now_ms);

    } else {
        assert_null(f.reason);
    }
}


static void
too_few_calls_judge_nothing_but_disconnection(void **state)
{
    tg_health_fixture_t  f;

    (void) state;

    health_setup(&f);

    /* four calls, every one a 2 s timeout */
    health_calls(&f, 4, 2000000, TG_CALL_TIMEOUT);

    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, f.now_ms), 0);
    assert_int_equal(health_evaluate(&f, 1), 0);
    assert_int_equal(tg_health_target(&f.h, &f.hc, 0, f.now_ms), 3);

    /* the fifth makes a window worth judging */
    health_calls(&f, 1, 2000000, TG_CALL_TIMEOUT);
    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, f.now_ms), 3);

    /* min_calls 0 still needs one call */
    f.hc.min_calls = 0;
    tg_health_init(&f.h, f.now_ms);
    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, f.now_ms), 0);
}


static void
the_window_forgets_slots_older_than_window_ms(void **state)
{
    tg_health_fixture_t  f;

    (void) state;

    health_setup(&f);

    /* TG_T0_MS starts a 500 ms slot: these are its first calls */
    health_calls(&f, 10, 300, TG_CALL_ERROR);
    f.now_ms += 2500;
    health_calls(&f, 10, 20000, TG_CALL_OK);

    f.now_ms = TG_T0_MS + 4999;
    assert_int_equal(tg_health_error_permille(&f.h, &f.hc, f.now_ms), 500);
    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, f.now_ms), 2);

    /* the errors' slot has left; the slow calls are still in */
    f.now_ms = TG_T0_MS + 5000;
    assert_int_equal(tg_health_error_permille(&f.h, &f.hc, f.now_ms), 0);
    assert_int_equal(tg_health_p99_us(&f.h, &f.hc, f.now_ms), 20000);
    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, f.now_ms), 1);

    f.now_ms = TG_T0_MS + 7500;
    assert_int_equal(tg_health_p99_us(&f.h, &f.hc, f.now_ms), 0);
    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, f.now_ms), 0);

    /* a slot reused a window later starts from zero */
    health_calls(&f, 5, 300, TG_CALL_OK);
    assert_int_equal(tg_health_error_permille(&f.h, &f.hc, f.now_ms), 0);
    assert_int_equal(tg_health_p99_us(&f.h, &f.hc, f.now_ms), 500);
}


static void
the_window_counts_calls_errors_and_timeouts(void **state)
{
    tg_health_fixture_t  f;
    tg_health_window_t   w;

    (void) state;

    health_setup(&f);

    health_calls(&f, 7, 100, TG_CALL_OK);
    health_calls(&f, 2, 600, TG_CALL_ERROR);
    f.now_ms += 1200;
    health_calls(&f, 3, 3000000, TG_CALL_TIMEOUT);

    tg_health_window(&f.h, &f.hc, f.now_ms, &w);

    assert_int_equal(w.calls, 12);
    assert_int_equal(w.errors, 5);
    assert_int_equal(w.timeouts, 3);
    assert_int_equal(w.lat[0], 7);
    assert_int_equal(w.lat[2], 2);
    assert_int_equal(w.lat[TG_HEALTH_LAT_BUCKETS], 3);

    /* 5 of 12 is 416.6 per mille, rounded down */
    assert_int_equal(tg_health_error_permille(&f.h, &f.hc, f.now_ms), 416);
}


static void
recovery_steps_down_one_level_per_hold(void **state)
{
    tg_health_fixture_t  f;

    (void) state;

    health_setup(&f);
    health_fail_local(&f);

    /* reconnected, no calls: 3 -> 2 -> 1 -> 0 takes three holds */
    assert_int_equal(health_wait_change(&f, 1, 10000), 3000);
    assert_int_equal(f.h.level, TG_LEVEL_LOCAL_FIRST);
    assert_string_equal(f.reason, "recovered");

    f.now_ms += TG_TICK_MS;
    assert_int_equal(health_wait_change(&f, 1, 10000), 3000 - TG_TICK_MS);
    assert_int_equal(f.h.level, TG_LEVEL_CONSERVE);

    f.now_ms += TG_TICK_MS;
    assert_int_equal(health_wait_change(&f, 1, 10000), 3000 - TG_TICK_MS);
    assert_int_equal(f.h.level, TG_LEVEL_NORMAL);
    assert_int_equal(f.h.since_ms, TG_T0_MS + 9000);

    assert_int_equal(health_wait_change(&f, 1, 60000), -1);
    assert_int_equal(f.h.transitions, 4);
}


static void
a_step_down_stops_at_the_target(void **state)
{
    tg_health_fixture_t  f;

    (void) state;

    /* a minute's window, so that the slow calls stay in it */
    health_setup(&f);
    f.hc.window_ms = 60000;
    health_fail_local(&f);

    /* reconnected but slow: down to conserve, and no further */
    health_calls(&f, 20, 15000, TG_CALL_OK);

    assert_int_equal(health_wait_change(&f, 1, 10000), 3000);
    assert_int_equal(f.h.level, TG_LEVEL_LOCAL_FIRST);

    f.now_ms += TG_TICK_MS;
    assert_int_equal(health_wait_change(&f, 1, 10000), 2900);
    assert_int_equal(f.h.level, TG_LEVEL_CONSERVE);
    assert_int_equal(f.h.better_since_ms, TG_MSEC_NEVER);

    f.now_ms += TG_TICK_MS;
    assert_int_equal(health_wait_change(&f, 1, 30000), -1);
    assert_int_equal(f.h.level, TG_LEVEL_CONSERVE);
}


static void
a_relapse_during_a_hold_restarts_it(void **state)
{
    tg_health_fixture_t  f;

    (void) state;

    health_setup(&f);
    health_fail_local(&f);

    /* two seconds into the hold the connection drops again */
    assert_int_equal(health_wait_change(&f, 1, 2000), -1);
    assert_int_equal(health_evaluate(&f, 0), 0);
    assert_int_equal(f.h.better_since_ms, TG_MSEC_NEVER);

    /* the next hold starts at the reconnection, 2.2 s in */
    f.now_ms += TG_TICK_MS;
    assert_int_equal(health_wait_change(&f, 1, 10000), 3000);
    assert_int_equal(f.now_ms, TG_T0_MS + 2200 + 3000);
    assert_int_equal(f.h.level, TG_LEVEL_LOCAL_FIRST);

    /* at level 2 a window asking for 2 is a relapse too */
    f.now_ms += 1000;
    assert_int_equal(health_evaluate(&f, 1), 0);
    health_calls(&f, 10, 300, TG_CALL_ERROR);
    health_calls(&f, 90, 300, TG_CALL_OK);
    assert_int_equal(health_evaluate(&f, 1), 0);
    assert_int_equal(f.h.better_since_ms, TG_MSEC_NEVER);
    assert_int_equal(f.h.level, TG_LEVEL_LOCAL_FIRST);
}


static void
a_target_still_below_the_level_keeps_the_hold(void **state)
{
    tg_health_fixture_t  f;

    (void) state;

    health_setup(&f);
    health_fail_local(&f);

    /* healthy, then slow (conserve) within the hold: still below 3 */
    assert_int_equal(health_wait_change(&f, 1, 1500), -1);
    health_calls(&f, 20, 50000, TG_CALL_OK);
    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, f.now_ms), 1);

    assert_int_equal(health_wait_change(&f, 1, 10000), 1500 - TG_TICK_MS);
    assert_int_equal(f.now_ms, TG_T0_MS + 3000);
    assert_int_equal(f.h.level, TG_LEVEL_LOCAL_FIRST);
}


static void
the_level_rises_at_once_whatever_the_hold(void **state)
{
    tg_health_fixture_t  f;

    (void) state;

    health_setup(&f);

    health_calls(&f, 10, 20000, TG_CALL_OK);
    assert_int_equal(health_evaluate(&f, 1), 1);
    assert_int_equal(f.h.level, TG_LEVEL_CONSERVE);

    f.now_ms += 1;
    health_calls(&f, 10, 300, TG_CALL_ERROR);
    assert_int_equal(health_evaluate(&f, 1), 1);
    assert_int_equal(f.h.level, TG_LEVEL_LOCAL_FIRST);
    assert_string_equal(f.reason, "error rate");

    /* straight from 2 to 3, and from 0 to 3, no step in between */
    f.now_ms += 1;
    health_calls(&f, 100, 300, TG_CALL_TIMEOUT);
    assert_int_equal(health_evaluate(&f, 1), 1);
    assert_int_equal(f.h.level, TG_LEVEL_FAIL_LOCAL);

    health_setup(&f);
    health_fail_local(&f);
    assert_int_equal(f.h.transitions, 1);
}


static void
a_forced_level_wins_over_the_window(void **state)
{
    tg_health_fixture_t  f;

    (void) state;

    health_setup(&f);

    /* forced up while healthy: applied by the next evaluation */
    tg_health_force(&f.h, TG_LEVEL_LOCAL_FIRST, f.now_ms);
    assert_int_equal(f.h.level, TG_LEVEL_NORMAL);
    assert_int_equal(health_evaluate(&f, 1), 1);
    assert_int_equal(f.h.level, TG_LEVEL_LOCAL_FIRST);
    assert_string_equal(f.reason, "forced");

    assert_int_equal(health_wait_change(&f, 1, 30000), -1);

    /* forced down while Redis is gone: the operator knows better */
    tg_health_force(&f.h, TG_LEVEL_NORMAL, f.now_ms);
    assert_int_equal(health_evaluate(&f, 0), 1);
    assert_int_equal(f.h.level, TG_LEVEL_NORMAL);
    assert_int_equal(health_wait_change(&f, 0, 30000), -1);

    /* forcing the level it is at changes nothing */
    tg_health_force(&f.h, TG_LEVEL_NORMAL, f.now_ms);
    assert_int_equal(health_evaluate(&f, 0), 0);

    /* out of range reads as fail-local */
    tg_health_force(&f.h, 9, f.now_ms);
    assert_int_equal(f.h.forced, TG_LEVEL_FAIL_LOCAL);
    assert_int_equal(health_evaluate(&f, 1), 1);
    assert_int_equal(f.h.level, TG_LEVEL_FAIL_LOCAL);
    assert_int_equal(f.h.transitions, 3);
}


static void
a_release_lets_the_window_raise_the_level_at_once(void **state)
{
    tg_health_fixture_t  f;

    (void) state;

    health_setup(&f);

    tg_health_force(&f.h, TG_LEVEL_CONSERVE, f.now_ms);
    assert_int_equal(health_evaluate(&f, 0), 1);

    f.now_ms += 1000;
    tg_health_force(&f.h, TG_LEVEL_AUTO, f.now_ms);
    assert_int_equal(f.h.forced, TG_LEVEL_AUTO);
    assert_int_equal(health_evaluate(&f, 0), 1);
    assert_int_equal(f.h.level, TG_LEVEL_FAIL_LOCAL);
    assert_string_equal(f.reason, "released");

    /* later rises are the window's own */
    tg_health_force(&f.h, TG_LEVEL_NORMAL, f.now_ms);
    assert_int_equal(health_evaluate(&f, 1), 1);
    tg_health_force(&f.h, TG_LEVEL_AUTO, f.now_ms);
    assert_int_equal(health_evaluate(&f, 1), 0);
    assert_int_equal(health_evaluate(&f, 0), 1);
    assert_string_equal(f.reason, "redis unreachable");
}


static void
a_release_steps_down_by_holds_counted_from_the_release(void **state)
{
    tg_health_fixture_t  f;
    tg_msec_t            released_ms;

    (void) state;

    health_setup(&f);

    tg_health_force(&f.h, TG_LEVEL_FAIL_LOCAL, f.now_ms);
    assert_int_equal(health_evaluate(&f, 1), 1);

    f.now_ms += 10000;
    released_ms = f.now_ms;
    tg_health_force(&f.h, TG_LEVEL_AUTO, f.now_ms);

    f.now_ms += 1000;
    assert_int_equal(health_wait_change(&f, 1, 10000), 2000);
    assert_int_equal(f.now_ms, released_ms + 3000);
    assert_int_equal(f.h.level, TG_LEVEL_LOCAL_FIRST);
    assert_string_equal(f.reason, "recovered");

    assert_int_equal(health_wait_change(&f, 1, 10000), 3000);
    assert_int_equal(health_wait_change(&f, 1, 10000), 3000);
    assert_int_equal(f.h.level, TG_LEVEL_NORMAL);

    /* releasing what was never forced starts no hold */
    tg_health_force(&f.h, TG_LEVEL_AUTO, f.now_ms);
    assert_int_equal(f.h.better_since_ms, TG_MSEC_NEVER);
}


static void
a_clock_going_back_restarts_the_hold(void **state)
{
    tg_health_fixture_t  f;

    (void) state;

    health_setup(&f);
    health_fail_local(&f);

    assert_int_equal(health_wait_change(&f, 1, 2500), -1);

    /* an hour back: no step now, nor an hour of waiting */
    f.now_ms -= 3600000;
    assert_int_equal(health_evaluate(&f, 1), 0);
    assert_int_equal(f.h.better_since_ms, f.now_ms);

    assert_int_equal(health_wait_change(&f, 1, 10000), 3000);
    assert_int_equal(f.h.level, TG_LEVEL_LOCAL_FIRST);
}


static void
calls_from_the_future_count_nothing_after_the_clock_goes_back(void **state)
{
    tg_health_fixture_t  f;
    tg_health_window_t   w;

    (void) state;

    health_setup(&f);

    health_calls(&f, 10, 300, TG_CALL_ERROR);

    f.now_ms -= 60000;
    tg_health_window(&f.h, &f.hc, f.now_ms, &w);
    assert_int_equal(w.calls, 0);

    health_calls(&f, 10, 300, TG_CALL_OK);
    assert_int_equal(tg_health_error_permille(&f.h, &f.hc, f.now_ms), 0);

    /* a slot reused by the earlier clock lost the later calls */
    tg_health_window(&f.h, &f.hc, TG_T0_MS, &w);
    assert_int_equal(w.calls, 0);

    /* a negative clock has its slots by floor: -1 ms is in -500..-1 */
    f.now_ms = -1;
    tg_health_init(&f.h, f.now_ms);
    health_calls(&f, 10, 20000, TG_CALL_OK);
    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, -500), 1);
    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, -501), 0);
    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, 4499), 1);
    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, 4500), 0);
}


static tg_p99_case_t  lat_0 = { 0, 250 };
static tg_p99_case_t  lat_250 = { 250, 250 };
static tg_p99_case_t  lat_251 = { 251, 500 };
static tg_p99_case_t  lat_2000 = { 2000, 2000 };
static tg_p99_case_t  lat_2001 = { 2001, 5000 };
static tg_p99_case_t  lat_10000 = { 10000, 10000 };
static tg_p99_case_t  lat_10001 = { 10001, 20000 };
static tg_p99_case_t  lat_100000 = { 100000, 100000 };
static tg_p99_case_t  lat_1s = { 1000000, 1000000 };
static tg_p99_case_t  lat_over_1s = { 1000001, TG_HEALTH_LAT_OVER_US };
static tg_p99_case_t  lat_max = { UINT32_MAX, TG_HEALTH_LAT_OVER_US };


static void
p99_is_the_upper_bound_of_its_bucket(void **state)
{
    tg_p99_case_t        *t = *state;
    tg_health_fixture_t   f;

    health_setup(&f);
    health_calls(&f, 3, t->latency_us, TG_CALL_OK);

    assert_int_equal(tg_health_p99_us(&f.h, &f.hc, f.now_ms), t->p99_us);
}


static void
p99_is_the_call_at_99_percent_counting_up(void **state)
{
    tg_health_fixture_t  f;

    (void) state;

    health_setup(&f);
    assert_int_equal(tg_health_p99_us(&f.h, &f.hc, f.now_ms), 0);

    /* 99 fast, 1 slow: the 99th of 100 is fast */
    health_calls(&f, 99, 400, TG_CALL_OK);
    health_calls(&f, 1, 150000, TG_CALL_OK);
    assert_int_equal(tg_health_p99_us(&f.h, &f.hc, f.now_ms), 500);
    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, f.now_ms), 0);

    /* 101 calls: the 100th is the slow one */
    health_calls(&f, 1, 150000, TG_CALL_OK);
    assert_int_equal(tg_health_p99_us(&f.h, &f.hc, f.now_ms), 200000);
    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, f.now_ms), 2);

    /* below 100 calls one slow call alone is a hiccup, not the p99 */
    health_setup(&f);
    health_calls(&f, 50, 100, TG_CALL_OK);
    health_calls(&f, 1, 30000, TG_CALL_OK);
    assert_int_equal(tg_health_p99_us(&f.h, &f.hc, f.now_ms), 250);
    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, f.now_ms), 0);

    /* two are */
    health_calls(&f, 1, 30000, TG_CALL_OK);
    assert_int_equal(tg_health_p99_us(&f.h, &f.hc, f.now_ms), 50000);
    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, f.now_ms), 1);
}


static void
thresholds_not_on_a_bound_act_at_the_bucket_above(void **state)
{
    tg_health_fixture_t  f;

    (void) state;

    health_setup(&f);
    f.hc.conserve_p99_us = 15000;

    /* 12 ms reads as the bucket of 20 ms, above 15 ms */
    health_calls(&f, 10, 12000, TG_CALL_OK);
    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, f.now_ms), 1);

    f.hc.conserve_p99_us = 20000;
    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, f.now_ms), 0);
}


static void
a_threshold_of_zero_switches_its_rule_off(void **state)
{
    tg_health_fixture_t  f;

    (void) state;

    health_setup(&f);
    f.hc.conserve_p99_us = 0;
    f.hc.local_first_p99_us = 0;
    f.hc.local_first_error_permille = 0;

    health_calls(&f, 10, 900000, TG_CALL_OK);
    health_calls(&f, 10, 900000, TG_CALL_ERROR);
    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, f.now_ms), 0);

    health_calls(&f, 1, 300, TG_CALL_TIMEOUT);
    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, f.now_ms), 3);

    f.hc.fail_local_error_permille = 0;
    assert_int_equal(tg_health_target(&f.h, &f.hc, 1, f.now_ms), 0);
    assert_int_equal(tg_health_target(&f.h, &f.hc, 0, f.now_ms), 3);
}


static void
a_hold_of_zero_steps_down_at_every_evaluation(void **state)
{
    tg_health_fixture_t  f;

    (void) state;

    health_setup(&f);
    f.hc.hold_ms = 0;
    health_fail_local(&f);

    assert_int_equal(health_evaluate(&f, 1), 1);
    assert_int_equal(health_evaluate(&f, 1), 1);
    assert_int_equal(health_evaluate(&f, 1), 1);
    assert_int_equal(f.h.level, TG_LEVEL_NORMAL);
    assert_int_equal(health_evaluate(&f, 1), 0);
}


static void
transitions_count_every_change_and_nothing_else(void **state)
{
    tg_health_fixture_t  f;
    int                  i;

    (void) state;

    health_setup(&f);
    assert_int_equal(f.h.transitions, 0);
    assert_int_equal(f.h.since_ms, TG_T0_MS);

    /* flapping connection, evaluated many times: one change per flip */
    for (i = 0; i < 3; i++) {
        health_fail_local(&f);
        assert_int_equal(health_evaluate(&f, 0), 0);
        f.now_ms += TG_TICK_MS;
        assert_int_equal(health_evaluate(&f, 1), 0);
        assert_int_equal(health_wait_change(&f, 1, 10000), 3000);
    }

    assert_int_equal(f.h.transitions, 6);
    assert_int_equal(f.h.level, TG_LEVEL_LOCAL_FIRST);
    assert_int_equal(f.h.since_ms, f.now_ms);
}


static void
an_evaluation_that_changes_nothing_leaves_reason_alone(void **state)
{
    tg_health_t        h;
    tg_health_conf_t   hc;
    const char        *reason;

    (void) state;

    tg_health_conf_default(&hc);
    tg_health_init(&h, TG_T0_MS);
    reason = "untouched";

    assert_int_equal(tg_health_evaluate(&h, &hc, 1, TG_T0_MS, &reason), 0);
    assert_string_equal(reason, "untouched");
}


static void
defaults_are_those_of_the_design(void **state)
{
    tg_health_conf_t  hc;
    tg_health_t       h;

    (void) state;

    memset(&hc, 0xff, sizeof(hc));
    tg_health_conf_default(&hc);

    assert_int_equal(hc.window_ms, 5000);
    assert_int_equal(hc.conserve_p99_us, 10000);
    assert_int_equal(hc.local_first_p99_us, 100000);
    assert_int_equal(hc.local_first_error_permille, 50);
    assert_int_equal(hc.fail_local_error_permille, 500);
    assert_int_equal(hc.hold_ms, 3000);
    assert_int_equal(hc.min_calls, 5);

    memset(&h, 0xff, sizeof(h));
    tg_health_init(&h, TG_T0_MS);

    assert_int_equal(h.level, TG_LEVEL_NORMAL);
    assert_int_equal(h.forced, TG_LEVEL_AUTO);
    assert_int_equal(h.better_since_ms, TG_MSEC_NEVER);
    assert_int_equal(tg_health_p99_us(&h, &hc, TG_T0_MS), 0);
    assert_int_equal(tg_health_error_permille(&h, &hc, TG_T0_MS), 0);
}


static void
levels_have_their_public_names(void **state)
{
    (void) state;

    assert_string_equal(tg_health_level_name(0), "normal");
    assert_string_equal(tg_health_level_name(1), "conserve");
    assert_string_equal(tg_health_level_name(2), "local-first");
    assert_string_equal(tg_health_level_name(3), "fail-local");
    assert_string_equal(tg_health_level_name(TG_LEVEL_AUTO), "auto");
    assert_string_equal(tg_health_level_name(4), "unknown");
    assert_string_equal(tg_health_level_name(-2), "unknown");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        TG_CASE("p99 of exactly 10 ms stays normal",
                target_and_level_match, &p99_10ms),
        TG_CASE("p99 above 10 ms conserves",
                target_and_level_match, &p99_over_10ms),
        TG_CASE("p99 of exactly 100 ms conserves",
                target_and_level_match, &p99_100ms),
        TG_CASE("p99 above 100 ms goes local-first",
                target_and_level_match, &p99_over_100ms),
        TG_CASE("p99 above 1 s goes local-first",
                target_and_level_match, &p99_over_1s),
        TG_CASE("4.9 % errors stay normal",
                target_and_level_match, &errors_4_9),
        TG_CASE("5 % errors go local-first",
                target_and_level_match, &errors_5),
        TG_CASE("5 % timeouts go local-first",
                target_and_level_match, &timeouts_5),
        TG_CASE("exactly 50 % errors stay local-first",
                target_and_level_match, &errors_50),
        TG_CASE("50.01 % errors fail local",
                target_and_level_match, &errors_50_01),
        TG_CASE("nothing but timeouts fail local",
                target_and_level_match, &timeouts_all),
        TG_CASE("disconnected without calls fails local",
                target_and_level_match, &disconnected),
        TG_CASE("disconnected after healthy calls fails local",
                target_and_level_match, &disconnected_healthy),
        TG_CASE("healthy calls stay normal",
                target_and_level_match, &healthy),
        cmocka_unit_test(too_few_calls_judge_nothing_but_disconnection),
        cmocka_unit_test(the_window_forgets_slots_older_than_window_ms),
        cmocka_unit_test(the_window_counts_calls_errors_and_timeouts),
        cmocka_unit_test(recovery_steps_down_one_level_per_hold),
        cmocka_unit_test(a_step_down_stops_at_the_target),
        cmocka_unit_test(a_relapse_during_a_hold_restarts_it),
        cmocka_unit_test(a_target_still_below_the_level_keeps_the_hold),
        cmocka_unit_test(the_level_rises_at_once_whatever_the_hold),
        cmocka_unit_test(a_forced_level_wins_over_the_window),
        cmocka_unit_test(a_release_lets_the_window_raise_the_level_at_once),
        cmocka_unit_test(
            a_release_steps_down_by_holds_counted_from_the_release),
        cmocka_unit_test(a_clock_going_back_restarts_the_hold),
        cmocka_unit_test(
            calls_from_the_future_count_nothing_after_the_clock_goes_back),
        TG_CASE("p99 of 0 us is 250", p99_is_the_upper_bound_of_its_bucket,
                &lat_0),
        TG_CASE("p99 of 250 us is 250", p99_is_the_upper_bound_of_its_bucket,
                &lat_250),
        TG_CASE("p99 of 251 us is 500", p99_is_the_upper_bound_of_its_bucket,
                &lat_251),
        TG_CASE("p99 of 2 ms is 2 ms", p99_is_the_upper_bound_of_its_bucket,
                &lat_2000),
        TG_CASE("p99 of 2.001 ms is 5 ms",
                p99_is_the_upper_bound_of_its_bucket, &lat_2001),
        TG_CASE("p99 of 10 ms is 10 ms", p99_is_the_upper_bound_of_its_bucket,
                &lat_10000),
        TG_CASE("p99 of 10.001 ms is 20 ms",
                p99_is_the_upper_bound_of_its_bucket, &lat_10001),
        TG_CASE("p99 of 100 ms is 100 ms",
                p99_is_the_upper_bound_of_its_bucket, &lat_100000),
        TG_CASE("p99 of 1 s is 1 s", p99_is_the_upper_bound_of_its_bucket,
                &lat_1s),
        TG_CASE("p99 above 1 s is the overflow value",
                p99_is_the_upper_bound_of_its_bucket, &lat_over_1s),
        TG_CASE("p99 of UINT32_MAX us is the overflow value",
                p99_is_the_upper_bound_of_its_bucket, &lat_max),
        cmocka_unit_test(p99_is_the_call_at_99_percent_counting_up),
        cmocka_unit_test(thresholds_not_on_a_bound_act_at_the_bucket_above),
        cmocka_unit_test(a_threshold_of_zero_switches_its_rule_off),
        cmocka_unit_test(a_hold_of_zero_steps_down_at_every_evaluation),
        cmocka_unit_test(transitions_count_every_change_and_nothing_else),
        cmocka_unit_test(
            an_evaluation_that_changes_nothing_leaves_reason_alone),
        cmocka_unit_test(defaults_are_those_of_the_design),
        cmocka_unit_test(levels_have_their_public_names),
    };

    return cmocka_run_group_tests_name("health", tests, NULL, NULL);
}
