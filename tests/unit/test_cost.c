/*
 * Copyright (C) Tollgate developers
 *
 * The cost model: base + ceil(body / quantum) * bandwidth, saturated.
 */


#include "tg_test.h"


typedef struct {
    uint64_t              base_tokens;
    uint64_t              bandwidth_tokens;
    uint64_t              quantum_bytes;
    uint64_t              body_bytes;
    uint64_t              cost_tokens;
} tg_cost_case_t;


#define KIB  1024ULL
#define MIB  (1024ULL * 1024)


/* the default profile: base 2, bandwidth 1, quantum 64 KiB */
static tg_cost_case_t  get_1k = { 2, 1, 64 * KIB, 0, 2 };
static tg_cost_case_t  put_64k = { 2, 1, 64 * KIB, 64 * KIB, 3 };
static tg_cost_case_t  post_1m = { 2, 1, 64 * KIB, MIB, 18 };
static tg_cost_case_t  put_0 = { 2, 1, 64 * KIB, 0, 2 };
static tg_cost_case_t  put_64k_1 = { 2, 1, 64 * KIB, 64 * KIB + 1, 4 };
static tg_cost_case_t  put_1 = { 2, 1, 64 * KIB, 1, 3 };

static tg_cost_case_t  quantum_0 = { 5, 3, 0, 10 * MIB, 5 };
static tg_cost_case_t  bandwidth_0 = { 5, 0, 64 * KIB, 10 * MIB, 5 };
static tg_cost_case_t  heavy_profile = { 10, 4, MIB, 3 * MIB + 1, 26 };

static tg_cost_case_t  max_body_quantum_1 = { 2, 1, 1, UINT64_MAX,
                                              TG_TOKENS_MAX };
static tg_cost_case_t  max_body_default = { 2, 1, 64 * KIB, UINT64_MAX,
                                            TG_TOKENS_MAX };
static tg_cost_case_t  huge_bandwidth = { 2, UINT64_MAX, 64 * KIB, 1,
                                          TG_TOKENS_MAX };
static tg_cost_case_t  huge_base = { UINT64_MAX, 0, 64 * KIB, 0,
                                     TG_TOKENS_MAX };
static tg_cost_case_t  just_below_max = { TG_TOKENS_MAX - 2, 1, 1, 1,
                                          TG_TOKENS_MAX - 1 };
static tg_cost_case_t  just_at_max = { TG_TOKENS_MAX - 2, 1, 1, 2,
                                       TG_TOKENS_MAX };


static void
cost_matches(void **state)
{
    tg_cost_case_t     *t = *state;
    tg_cost_profile_t   p;

    p.base_tokens = t->base_tokens;
    p.bandwidth_tokens = t->bandwidth_tokens;
    p.quantum_bytes = t->quantum_bytes;

    assert_int_equal(tg_cost_tokens(&p, t->body_bytes), t->cost_tokens);
}


static void
default_profile_is_base_2_bandwidth_1_quantum_64k(void **state)
{
    tg_cost_profile_t  p;

    (void) state;

    tg_cost_profile_default(&p);

    assert_int_equal(p.base_tokens, 2);
    assert_int_equal(p.bandwidth_tokens, 1);
    assert_int_equal(p.quantum_bytes, 64 * KIB);
    assert_int_equal(tg_cost_tokens(&p, MIB), 18);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        TG_CASE("GET 1 KiB costs 2 (the base only)", cost_matches, &get_1k),
        TG_CASE("PUT 64 KiB costs 3", cost_matches, &put_64k),
        TG_CASE("POST 1 MiB costs 18", cost_matches, &post_1m),
        TG_CASE("PUT 0 bytes costs 2", cost_matches, &put_0),
        TG_CASE("PUT 64 KiB + 1 byte costs 4", cost_matches, &put_64k_1),
        TG_CASE("PUT 1 byte costs a whole quantum", cost_matches, &put_1),
        TG_CASE("quantum 0 charges no bandwidth", cost_matches, &quantum_0),
        TG_CASE("bandwidth 0 charges the base only", cost_matches,
                &bandwidth_0),
        TG_CASE("a named profile charges its own numbers", cost_matches,
                &heavy_profile),
        TG_CASE("UINT64_MAX bytes at quantum 1 saturates", cost_matches,
                &max_body_quantum_1),
        TG_CASE("UINT64_MAX bytes at 64 KiB saturates", cost_matches,
                &max_body_default),
        TG_CASE("a huge bandwidth charge saturates", cost_matches,
                &huge_bandwidth),
        TG_CASE("a huge base saturates", cost_matches, &huge_base),
        TG_CASE("a cost one below the maximum is exact", cost_matches,
                &just_below_max),
        TG_CASE("a cost reaching the maximum is the maximum", cost_matches,
                &just_at_max),
        cmocka_unit_test(default_profile_is_base_2_bandwidth_1_quantum_64k),
    };

    return cmocka_run_group_tests_name("cost", tests, NULL, NULL);
}
