/*
 * Copyright (C) Tollgate developers
 *
 * Runs the shared test vectors (tests/vectors/ *.vec, the format is in
 * tests/vectors/README.md) against the C core; test_vectors_redis.py runs
 * the same files against the Redis scripts.  Each scenario is a cmocka
 * test, failed by the first step whose results differ from the file.
 *
 * Runtime state comes into being the way the scripts create their
 * hashes: the pool on the first acquire, report or borrow, and an
 * application's buckets on its first operation, both at that time.  The
 * emergency state lives apart from the pool, as its hash does in Redis.
 */


#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tg_core.h"


/* an origin far from 0: "at T" in a file is this plus T */
#define VEC_T0_MS        1700000000000LL

#define VEC_APPS_MAX     8
#define VEC_SEQS_MAX     16
#define VEC_WORDS_MAX    32
#define VEC_RESULTS_MAX  16
#define VEC_ID_LEN       64
#define VEC_VALUE_LEN    32

#define VEC_CODE_OK               0
#define VEC_CODE_UNKNOWN_APP      1
#define VEC_CODE_UNKNOWN_CLUSTER  2


typedef struct {
    char                  gateway[VEC_ID_LEN];
    int64_t               seq;
} vec_seq_t;


typedef struct {
    char                  id[VEC_ID_LEN];
    tg_app_conf_t         conf;
    int                   has_state;
    tg_app_t              a;
    uint64_t              granted_total;
    uint64_t              returned_total;
    uint64_t              used_total;
    vec_seq_t             seqs[VEC_SEQS_MAX];
    size_t                nseqs;
} vec_app_t;


typedef struct {
    int                   has_cluster;
    tg_cluster_conf_t     cc;
    int                   has_pool;
    tg_cluster_t          c;
    uint64_t              granted_total;
    uint64_t              returned_total;
    vec_app_t             apps[VEC_APPS_MAX];
    size_t                napps;
} vec_world_t;


typedef struct {
    const char           *key;
    char                  value[VEC_VALUE_LEN];
} vec_result_t;


typedef struct {
    vec_result_t          r[VEC_RESULTS_MAX];
    size_t                n;
} vec_results_t;


/* one step: words before "->" are the operation, after it the results */
typedef struct {
    const char           *file;
    unsigned              line;
    char                 *words[VEC_WORDS_MAX];
    size_t                nop;
    size_t                nwords;
} vec_step_t;


typedef struct {
    char                  name[96];
    const char           *file;
    char                **lines;
    unsigned             *numbers;
    size_t                nlines;
} vec_scenario_t;


static void vec_put(vec_results_t *res, const char *key, const char *fmt,
    ...);
static void vec_put_time(vec_results_t *res, const char *key,
    tg_msec_t at_ms);
static const char *vec_subject(const vec_step_t *st);
static const char *vec_arg(const vec_step_t *st, const char *key,
    int required);
static int64_t vec_int(const vec_step_t *st, const char *text);
static uint64_t vec_tokens(const vec_step_t *st, const char *key);
static uint32_t vec_ratio_permille(const char *text);
static vec_app_t *vec_app(vec_world_t *w, const char *id);
static void vec_pool_ensure(vec_world_t *w, tg_msec_t now_ms);
static void vec_app_ensure(vec_app_t *app, tg_msec_t now_ms);
static uint64_t vec_offer(tg_mtok_t level_mtok);
static uint64_t vec_remaining(const tg_app_t *a);
static uint64_t vec_debt_tokens(const tg_app_t *a);
static const char *vec_mode_name(tg_emergency_e mode);
static void vec_declare(vec_world_t *w, const vec_step_t *st);
static void vec_acquire(vec_world_t *w, const vec_step_t *st,
    tg_msec_t now_ms, vec_results_t *res);
static void vec_report(vec_world_t *w, const vec_step_t *st,
    tg_msec_t now_ms, vec_results_t *res);
static void vec_report_apply(vec_world_t *w, vec_app_t *app,
    uint64_t used_tokens, uint64_t returned_tokens, uint64_t debt_tokens,
    tg_msec_t now_ms);
static void vec_lend(vec_world_t *w, const vec_step_t *st,
    tg_msec_t now_ms, vec_results_t *res);
static void vec_emergency(vec_world_t *w, const vec_step_t *st,
    tg_msec_t now_ms, vec_results_t *res);
static void vec_state(vec_world_t *w, const vec_step_t *st,
    vec_results_t *res);
static void vec_check(const vec_step_t *st, const vec_results_t *res);
static void vec_run_step(vec_world_t *w, vec_step_t *st);
static void vec_run_scenario(void **state);
static int vec_load(const char *file, vec_scenario_t **scenarios,
    size_t *n);


static void
vec_put(vec_results_t *res, const char *key, const char *fmt, ...)
{
    va_list  args;

    if (res->n == VEC_RESULTS_MAX) {
        fail_msg("vectors_c: more than %d results", VEC_RESULTS_MAX);
    }

    res->r[res->n].key = key;

    va_start(args, fmt);
    vsnprintf(res->r[res->n].value, VEC_VALUE_LEN, fmt, args);
    va_end(args);

    res->n++;
}


/* times in results are relative to the origin, 0 stays 0 */

static void
vec_put_time(vec_results_t *res, const char *key, tg_msec_t at_ms)
{
    vec_put(res, key, "%" PRId64, at_ms == 0 ? 0 : at_ms - VEC_T0_MS);
}


/* the application an operation names right after it */

static const char *
vec_subject(const vec_step_t *st)
{
    if (st->nop < 2 || strchr(st->words[1], '=') != NULL) {
        fail_msg("%s:%u: %s names no application", st->file, st->line,
                 st->words[0]);
    }

    return st->words[1];
}


static const char *
vec_arg(const vec_step_t *st, const char *key, int required)
{
    size_t  i, len;

    len = strlen(key);

    for (i = 0; i < st->nop; i++) {
        if (strncmp(st->words[i], key, len) == 0
            && st->words[i][len] == '=')
        {
            return st->words[i] + len + 1;
        }
    }

    if (required) {
        fail_msg("%s:%u: argument \"%s\" is missing", st->file, st->line,
                 key);
    }

    return NULL;
}


/* a number of the file; strtoll() saturates one out of range */

static int64_t
vec_int(const vec_step_t *st, const char *text)
{
    char       *end;
    long long   n;

    n = strtoll(text, &end, 10);

    if (end == text || *end != '\0') {
        fail_msg("%s:%u: \"%s\" is not an integer", st->file, st->line,
                 text);
    }

    return n;
}


static uint64_t
vec_tokens(const vec_step_t *st, const char *key)
{
    const char  *text;
    char        *end;
    uint64_t     n;

    text = vec_arg(st, key, 1);

    /* strtoull() saturates, as the scripts saturate their arguments */
    n = strtoull(text, &end, 10);

    if (end == text || *end != '\0' || text[0] == '-') {
        fail_msg("%s:%u: %s=%s is not a count", st->file, st->line, key,
                 text);
    }

    return n;
}


/* "0.2", "1", "0.1000": per mille, past the third decimal dropped */

static uint32_t
vec_ratio_permille(const char *text)
{
    uint64_t  whole, frac;
    size_t    i;

    whole = 0;

    while (*text >= '0' && *text <= '9') {
        whole = whole < 1000 ? whole * 10 + (uint64_t) (*text++ - '0')
                             : 1000;
    }

    if (*text == '.') {
        text++;
    }

    frac = 0;

    for (i = 0; i < 3; i++) {
        frac *= 10;

        if (*text >= '0' && *text <= '9') {
            frac += (uint64_t) (*text++ - '0');
        }
    }

    whole = whole * 1000 + frac;

    return whole < 1000 ? (uint32_t) whole : 1000;
}


static vec_app_t *
vec_app(vec_world_t *w, const char *id)
{
    size_t  i;

    for (i = 0; i < w->napps; i++) {
        if (strcmp(w->apps[i].id, id) == 0) {
            return &w->apps[i];
        }
    }

    return NULL;
}


/* the pool's first use: emergency mode is not the pool's to reset */

static void
vec_pool_ensure(vec_world_t *w, tg_msec_t now_ms)
{
    tg_emergency_e  mode;
    tg_msec_t       until_ms, hold_ms;

    if (w->has_pool) {
        return;
    }

    mode = w->c.emergency;
    until_ms = w->c.emergency_until_ms;
    hold_ms = w->c.auto_hold_until_ms;

    tg_cluster_init(&w->c, &w->cc, now_ms);

    w->c.emergency = mode;
    w->c.emergency_until_ms = until_ms;
    w->c.auto_hold_until_ms = hold_ms;
    w->has_pool = 1;
}


static void
vec_app_ensure(vec_app_t *app, tg_msec_t now_ms)
{
    if (!app->has_state) {
        tg_app_init(&app->a, &app->conf, now_ms);
        app->has_state = 1;
    }
}


static uint64_t
vec_offer(tg_mtok_t level_mtok)
{
    return level_mtok > 0 ? (uint64_t) level_mtok / TG_MTOK_PER_TOKEN : 0;
}


static uint64_t
vec_remaining(const tg_app_t *a)
{
    return vec_offer(a->guaranteed.level_mtok)
           + vec_offer(a->burst.level_mtok);
}


static uint64_t
vec_debt_tokens(const tg_app_t *a)
{
    if (a->debt_mtok <= 0) {
        return 0;
    }

    return ((uint64_t) a->debt_mtok + TG_MTOK_PER_TOKEN - 1)
           / TG_MTOK_PER_TOKEN;
}


static const char *
vec_mode_name(tg_emergency_e mode)
{
    switch (mode) {
    case TG_EMERGENCY_AUTO:
        return "auto";
    case TG_EMERGENCY_MANUAL:
        return "manual";
    default:
        return "off";
    }
}


/*
 * "cluster FIELD=VALUE..." and "app ID FIELD=VALUE...": the first one
 * creates the configuration, a later one changes the fields it names,
 * as an HSET of the configuration hash does.
 */

static void
vec_declare(vec_world_t *w, const vec_step_t *st)
{
    size_t              i;
    char               *value;
    const char         *field;
    vec_app_t          *app;
    tg_app_conf_t      *ac;

    app = NULL;
    i = 1;

    if (strcmp(st->words[0], "cluster") == 0) {
        if (!w->has_cluster) {
            tg_cluster_conf_default(&w->cc);
            w->has_cluster = 1;
        }

    } else {
        if (st->nop < 2) {
            fail_msg("%s:%u: app without an id", st->file, st->line);
        }

        app = vec_app(w, st->words[1]);

        if (app == NULL) {
            if (w->napps == VEC_APPS_MAX) {
                fail_msg("%s:%u: more than %d apps", st->file, st->line,
                         VEC_APPS_MAX);
            }

            app = &w->apps[w->napps++];
            memset(app, 0, sizeof(vec_app_t));
            snprintf(app->id, VEC_ID_LEN, "%s", st->words[1]);
            tg_app_conf_default(&app->conf);
        }

        i = 2;
    }

    for ( /* void */ ; i < st->nop; i++) {
        field = st->words[i];
        value = strchr(field, '=');

        if (value == NULL) {
            fail_msg("%s:%u: \"%s\" is not FIELD=VALUE", st->file,
                     st->line, field);
        }

        value++;

        if (app == NULL) {
            if (strncmp(field, "capacity=", 9) == 0) {
                w->cc.capacity_tps = (uint64_t) vec_int(st, value);

            } else if (strncmp(field, "reserved_ratio=", 15) == 0) {
                w->cc.reserved_permille = vec_ratio_permille(value);

            } else if (strncmp(field, "window_ms=", 10) == 0) {
                w->cc.window_ms = vec_int(st, value);

            } else {
                fail_msg("%s:%u: unknown cluster field \"%s\"", st->file,
                         st->line, field);
            }

            continue;
        }

        ac = &app->conf;

        if (strncmp(field, "guaranteed_quota=", 17) == 0) {
            ac->guaranteed_tps = (uint64_t) vec_int(st, value);

        } else if (strncmp(field, "burst_quota=", 12) == 0) {
            ac->burst_tps = (uint64_t) vec_int(st, value);

        } else if (strncmp(field, "priority=", 9) == 0) {
            ac->priority = (uint32_t) vec_int(st, value);

        } else if (strncmp(field, "max_borrow=", 11) == 0) {
            ac->max_borrow_tokens = (uint64_t) vec_int(st, value);

        } else {
            fail_msg("%s:%u: unknown app field \"%s\"", st->file, st->line,
                     field);
        }
    }
}


static void
vec_acquire(vec_world_t *w, const vec_step_t *st, tg_msec_t now_ms,
    vec_results_t *res)
{
    int          code;
    uint64_t     want_tokens, min_tokens;
    vec_app_t   *app;
    tg_grant_t   g;

    app = vec_app(w, vec_subject(st));
    want_tokens = vec_tokens(st, "want");
    min_tokens = vec_tokens(st, "min");

    memset(&g, 0, sizeof(tg_grant_t));
    code = !w->has_cluster ? VEC_CODE_UNKNOWN_CLUSTER
           : app == NULL ? VEC_CODE_UNKNOWN_APP : VEC_CODE_OK;

    /* acquire.lua refuses such arguments before it reads any state */
    if (min_tokens == 0 || min_tokens > want_tokens) {
        vec_put(res, "error", "1");
        return;
    }

    if (code == VEC_CODE_OK) {
        vec_pool_ensure(w, now_ms);
        vec_app_ensure(app, now_ms);

        if (tg_acquire(&w->c, &w->cc, &app->a, &app->conf, want_tokens,
                       min_tokens, now_ms, &g)
            != TG_OK)
        {
            vec_put(res, "error", "1");
            return;
        }

        w->granted_total += g.granted_tokens;
        app->granted_total += g.granted_tokens;
    }

    vec_put(res, "code", "%d", code);
    vec_put(res, "granted", "%" PRIu64, g.granted_tokens);
    vec_put(res, "layer", "%s", tg_layer_name(g.layer));
    vec_put(res, "retry_ms", "%" PRId64, g.retry_after_ms);
    vec_put(res, "remaining", "%" PRIu64,
            code == VEC_CODE_OK ? vec_remaining(&app->a) : 0);
    vec_put(res, "emergency", "%d", code == VEC_CODE_OK && g.emergency);
}


/*
 * "report": the rules of report.lua on top of tg_settle().  "settle":
 * a report of a fresh sequence number that returns -delta tokens or
 * charges delta tokens of debt.
 */

static void
vec_report(vec_world_t *w, const vec_step_t *st, tg_msec_t now_ms,
    vec_results_t *res)
{
    int          settle;
    size_t       i;
    int64_t      seq, delta_tokens;
    uint64_t     used_tokens, returned_tokens, debt_tokens;
    tg_app_t     copy;
    vec_app_t   *app;
    vec_seq_t   *last;
    const char  *gateway;

    settle = strcmp(st->words[0], "settle") == 0;
    app = vec_app(w, vec_subject(st));
    gateway = "";
    last = NULL;

    if (settle) {
        delta_tokens = vec_int(st, vec_arg(st, "delta", 1));
        used_tokens = 0;
        returned_tokens = delta_tokens < 0 ? -(uint64_t) delta_tokens : 0;
        debt_tokens = delta_tokens > 0 ? (uint64_t) delta_tokens : 0;
        seq = 0;

    } else {
        gateway = vec_arg(st, "gateway", 1);
        seq = vec_int(st, vec_arg(st, "seq", 1));
        used_tokens = vec_tokens(st, "used");
        returned_tokens = vec_tokens(st, "returned");
        debt_tokens = vec_tokens(st, "debt");

        for (i = 0; app != NULL && i < app->nseqs; i++) {
            if (strcmp(app->seqs[i].gateway, gateway) == 0) {
                last = &app->seqs[i];
            }
        }
    }

    if (!w->has_cluster || app == NULL) {
        vec_put(res, "applied", "0");
        vec_put(res, "remaining", "0");
        vec_put(res, "code", "%d", !w->has_cluster
                                   ? VEC_CODE_UNKNOWN_CLUSTER
                                   : VEC_CODE_UNKNOWN_APP);
        return;
    }

    /* a repeated report changes nothing; the reply still refills */
    if (last != NULL && seq <= last->seq) {
        if (app->has_state) {
            copy = app->a;
        } else {
            tg_app_init(&copy, &app->conf, now_ms);
        }

        tg_app_refill(&copy, &app->conf, now_ms);

        vec_put(res, "applied", "0");
        vec_put(res, "remaining", "%" PRIu64, vec_remaining(&copy));
        vec_put(res, "code", "%d", VEC_CODE_OK);
        return;
    }

    vec_report_apply(w, app, used_tokens, returned_tokens, debt_tokens,
                     now_ms);

    if (!settle) {
        if (last == NULL) {
            if (app->nseqs == VEC_SEQS_MAX) {
                fail_msg("%s:%u: more than %d gateways", st->file,
                         st->line, VEC_SEQS_MAX);
            }

            last = &app->seqs[app->nseqs++];
            snprintf(last->gateway, VEC_ID_LEN, "%s", gateway);
        }

        last->seq = seq;
    }

    vec_put(res, "applied", "1");
    vec_put(res, "remaining", "%" PRIu64, vec_remaining(&app->a));
    vec_put(res, "code", "%d", VEC_CODE_OK);
}


/* counts are saturated at TG_TOKENS_MAX, as the scripts' arguments are */

static void
vec_report_apply(vec_world_t *w, vec_app_t *app, uint64_t used_tokens,
    uint64_t returned_tokens, uint64_t debt_tokens, tg_msec_t now_ms)
{
    if (returned_tokens > TG_TOKENS_MAX) {
        returned_tokens = TG_TOKENS_MAX;
    }

    if (debt_tokens > TG_TOKENS_MAX) {
        debt_tokens = TG_TOKENS_MAX;
    }

    if (used_tokens > TG_TOKENS_MAX) {
        used_tokens = TG_TOKENS_MAX;
    }

    vec_pool_ensure(w, now_ms);
    vec_app_ensure(app, now_ms);

    tg_settle(&w->c, &w->cc, &app->a, &app->conf,
              -(int64_t) returned_tokens, now_ms);
    tg_settle(&w->c, &w->cc, &app->a, &app->conf, (int64_t) debt_tokens,
              now_ms);

    w->granted_total += debt_tokens;
    app->granted_total += debt_tokens;
    w->returned_total += returned_tokens;
    app->returned_total += returned_tokens;
    app->used_total += used_tokens;
}


/* borrow and repay; repay.lua reads no cluster, only the application */

static void
vec_lend(vec_world_t *w, const vec_step_t *st, tg_msec_t now_ms,
    vec_results_t *res)
{
    int          borrow, code;
    uint64_t     tokens, done_tokens;
    vec_app_t   *app;
    const char  *done;

    borrow = strcmp(st->words[0], "borrow") == 0;
    done = borrow ? "lent" : "repaid";
    app = vec_app(w, vec_subject(st));
    tokens = vec_tokens(st, "tokens");

    code = borrow && !w->has_cluster ? VEC_CODE_UNKNOWN_CLUSTER
           : app == NULL ? VEC_CODE_UNKNOWN_APP : VEC_CODE_OK;

    if (code != VEC_CODE_OK) {
        vec_put(res, "code", "%d", code);
        vec_put(res, done, "0");
        vec_put(res, "debt", "0");
        return;
    }

    vec_app_ensure(app, now_ms);

    if (borrow) {
        vec_pool_ensure(w, now_ms);
        done_tokens = tg_borrow(&w->c, &w->cc, &app->a, &app->conf, tokens,
                                now_ms);

    } else {
        done_tokens = tg_repay(&app->a, &app->conf, tokens, now_ms);
    }

    vec_put(res, "code", "%d", VEC_CODE_OK);
    vec_put(res, done, "%" PRIu64, done_tokens);
    vec_put(res, "debt", "%" PRIu64, vec_debt_tokens(&app->a));
}


/* the reply of emergency.lua: an expired emergency reads as off */

static void
vec_emergency(vec_world_t *w, const vec_step_t *st, tg_msec_t now_ms,
    vec_results_t *res)
{
    int          active;
    const char  *action, *ttl;
    tg_msec_t    ttl_ms;

    action = st->nop > 1 ? st->words[1] : "";
    ttl = vec_arg(st, "ttl_ms", 0);
    ttl_ms = ttl != NULL ? vec_int(st, ttl) : 0;

    if (!w->has_cluster) {
        vec_put(res, "code", "%d", VEC_CODE_UNKNOWN_CLUSTER);
        vec_put(res, "active", "0");
        vec_put(res, "mode", "off");
        vec_put(res, "until", "0");
        return;
    }

    if (strcmp(action, "auto") == 0) {
        tg_cluster_emergency_set(&w->c, &w->cc, TG_EMERGENCY_AUTO, 0, 0,
                                 now_ms);

    } else if (strcmp(action, "on") == 0 || strcmp(action, "off") == 0) {
        tg_cluster_emergency_set(&w->c, &w->cc, TG_EMERGENCY_MANUAL,
                                 action[1] == 'n', ttl_ms, now_ms);

    } else {
        fail_msg("%s:%u: emergency on, off or auto, not \"%s\"", st->file,
                 st->line, action);
    }

    active = w->c.emergency != TG_EMERGENCY_OFF
             && now_ms < w->c.emergency_until_ms;

    vec_put(res, "code", "%d", VEC_CODE_OK);
    vec_put(res, "active", "%d", active);
    vec_put(res, "mode", "%s",
            active ? vec_mode_name(w->c.emergency) : "off");
    vec_put_time(res, "until", active ? w->c.emergency_until_ms : 0);
}


/* what is stored, not refilled: "absent" for state not created yet */

static void
vec_state(vec_world_t *w, const vec_step_t *st, vec_results_t *res)
{
    vec_app_t  *app;

    if (w->has_pool) {
        vec_put(res, "pool_mtok", "%" PRId64, w->c.pool.level_mtok);
        vec_put(res, "pool_granted_total", "%" PRIu64, w->granted_total);
        vec_put(res, "pool_returned_total", "%" PRIu64, w->returned_total);

    } else {
        vec_put(res, "pool_mtok", "absent");
    }

    vec_put(res, "mode", "%s", vec_mode_name(w->c.emergency));
    vec_put_time(res, "until", w->c.emergency_until_ms);

    if (w->c.auto_hold_until_ms == TG_MSEC_NEVER) {
        vec_put(res, "hold", "none");

    } else {
        vec_put_time(res, "hold", w->c.auto_hold_until_ms);
    }

    if (st->nop < 2) {
        return;
    }

    app = vec_app(w, st->words[1]);

    if (app == NULL || !app->has_state) {
        vec_put(res, "g_mtok", "absent");
        return;
    }

    vec_put(res, "g_mtok", "%" PRId64, app->a.guaranteed.level_mtok);
    vec_put(res, "b_mtok", "%" PRId64, app->a.burst.level_mtok);
    vec_put(res, "debt_mtok", "%" PRId64, app->a.debt_mtok);
    vec_put(res, "granted_total", "%" PRIu64, app->granted_total);
    vec_put(res, "returned_total", "%" PRIu64, app->returned_total);
    vec_put(res, "used_total", "%" PRIu64, app->used_total);
}


static void
vec_check(const vec_step_t *st, const vec_results_t *res)
{
    size_t       i, j, len;
    const char  *want, *eq;

    if (st->nwords == st->nop) {
        fail_msg("%s:%u: a step without \"-> results\"", st->file,
                 st->line);
    }

    for (i = st->nop + 1; i < st->nwords; i++) {
        eq = strchr(st->words[i], '=');

        if (eq == NULL) {
            fail_msg("%s:%u: \"%s\" is not NAME=VALUE", st->file, st->line,
                     st->words[i]);
        }

        len = (size_t) (eq - st->words[i]);
        want = eq + 1;

        for (j = 0; j < res->n; j++) {
            if (strlen(res->r[j].key) == len
                && strncmp(res->r[j].key, st->words[i], len) == 0)
            {
                break;
            }
        }

        if (j == res->n) {
            fail_msg("%s:%u: %s gives no result \"%.*s\"", st->file,
                     st->line, st->words[0], (int) len, st->words[i]);
        }

        if (strcmp(res->r[j].value, want) != 0) {
            fail_msg("%s:%u: %.*s is %s, the file says %s", st->file,
                     st->line, (int) len, st->words[i], res->r[j].value,
                     want);
        }
    }
}


static void
vec_run_step(vec_world_t *w, vec_step_t *st)
{
    const char     *op;
    tg_msec_t       now_ms;
    vec_results_t   res;

    res.n = 0;
    op = st->words[0];

    if (strcmp(op, "cluster") == 0 || strcmp(op, "app") == 0) {
        vec_declare(w, st);
        return;
    }

    if (strcmp(op, "state") == 0) {
        vec_state(w, st, &res);
        vec_check(st, &res);
        return;
    }

    if (strcmp(op, "at") != 0 || st->nop < 3) {
        fail_msg("%s:%u: \"%s\" is not a step", st->file, st->line, op);
    }

    now_ms = VEC_T0_MS + vec_int(st, st->words[1]);

    /* from here on the words are the operation's own */
    memmove(st->words, st->words + 2, (st->nwords - 2) * sizeof(char *));
    st->nop -= 2;
    st->nwords -= 2;
    op = st->words[0];

    if (strcmp(op, "acquire") == 0) {
        vec_acquire(w, st, now_ms, &res);

    } else if (strcmp(op, "report") == 0 || strcmp(op, "settle") == 0) {
        vec_report(w, st, now_ms, &res);

    } else if (strcmp(op, "borrow") == 0 || strcmp(op, "repay") == 0) {
        vec_lend(w, st, now_ms, &res);

    } else if (strcmp(op, "emergency") == 0) {
        vec_emergency(w, st, now_ms, &res);

    } else {
        fail_msg("%s:%u: unknown operation \"%s\"", st->file, st->line, op);
    }

    vec_check(st, &res);
}


static void
vec_run_scenario(void **state)
{
    size_t           i;
    char            *p, buf[1024];
    vec_world_t      w;
    vec_step_t       st;
    vec_scenario_t  *sc;

    sc = *state;

    /* on the stack: a failed step leaves through cmocka's longjmp */
    memset(&w, 0, sizeof(vec_world_t));

    /* no emergency hash yet: off, never held */
    w.c.emergency = TG_EMERGENCY_OFF;
    w.c.auto_hold_until_ms = TG_MSEC_NEVER;

    for (i = 0; i < sc->nlines; i++) {
        snprintf(buf, sizeof(buf), "%s", sc->lines[i]);

        st.file = sc->file;
        st.line = sc->numbers[i];
        st.nwords = 0;
        st.nop = 0;

        for (p = strtok(buf, " \t"); p != NULL; p = strtok(NULL, " \t")) {
            if (st.nwords == VEC_WORDS_MAX) {
                fail_msg("%s:%u: more than %d words", st.file, st.line,
                         VEC_WORDS_MAX);
            }

            st.words[st.nwords++] = p;
        }

        for (st.nop = 0; st.nop < st.nwords; st.nop++) {
            if (strcmp(st.words[st.nop], "->") == 0) {
                break;
            }
        }

        vec_run_step(&w, &st);
    }
}


/*
 * Reads FILE into scenarios: lines without comments and blank ones,
 * "scenario NAME" opening each.  The buffers are never freed: the
 * program ends after running them.
 */

static int
vec_load(const char *file, vec_scenario_t **scenarios, size_t *n)
{
    FILE            *f;
    char             line[1024], *p, *end;
    size_t           len;
    unsigned         number;
    vec_scenario_t  *sc;

    f = fopen(file, "r");
    if (f == NULL) {
        fprintf(stderr, "vectors_c: cannot open \"%s\": %s\n", file,
                strerror(errno));
        return -1;
    }

    sc = NULL;
    number = 0;

    while (fgets(line, sizeof(line), f) != NULL) {
        number++;

        p = strchr(line, '#');
        if (p != NULL) {
            *p = '\0';
        }

        for (p = line; *p == ' ' || *p == '\t'; p++) { /* void */ }

        len = strlen(p);
        while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == ' '
                           || p[len - 1] == '\t' || p[len - 1] == '\r'))
        {
            p[--len] = '\0';
        }

        if (len == 0) {
            continue;
        }

        if (strncmp(p, "scenario ", 9) == 0) {
            *scenarios = realloc(*scenarios,
                                 (*n + 1) * sizeof(vec_scenario_t));
            if (*scenarios == NULL) {
                fprintf(stderr, "vectors_c: out of memory\n");
                fclose(f);
                return -1;
            }

            sc = &(*scenarios)[(*n)++];
            memset(sc, 0, sizeof(vec_scenario_t));

            end = strrchr(file, '/');
            snprintf(sc->name, sizeof(sc->name), "%s: %s",
                     end != NULL ? end + 1 : file, p + 9);
            sc->file = file;
            continue;
        }

        if (sc == NULL) {
            fprintf(stderr, "vectors_c: %s:%u: a step before any "
                    "\"scenario\"\n", file, number);
            fclose(f);
            return -1;
        }

        sc->lines = realloc(sc->lines, (sc->nlines + 1) * sizeof(char *));
        sc->numbers = realloc(sc->numbers,
                              (sc->nlines + 1) * sizeof(unsigned));
        if (sc->lines == NULL || sc->numbers == NULL
            || (sc->lines[sc->nlines] = strdup(p)) == NULL)
        {
            fprintf(stderr, "vectors_c: out of memory\n");
            fclose(f);
            return -1;
        }

        sc->numbers[sc->nlines++] = number;
    }

    fclose(f);

    return 0;
}


int
main(int argc, char **argv)
{
    int                      i;
    size_t                   n, k;
    vec_scenario_t          *scenarios;
    struct CMUnitTest       *tests;

    if (argc < 2) {
        fprintf(stderr, "usage: vectors_c FILE.vec...\n");
        return 2;
    }

    scenarios = NULL;
    n = 0;

    for (i = 1; i < argc; i++) {
        if (vec_load(argv[i], &scenarios, &n) != 0) {
            return 2;
        }
    }

    tests = calloc(n + 1, sizeof(struct CMUnitTest));
    if (tests == NULL) {
        fprintf(stderr, "vectors_c: out of memory\n");
        return 2;
    }

    for (k = 0; k < n; k++) {
        tests[k].name = scenarios[k].name;
        tests[k].test_func = vec_run_scenario;
        tests[k].initial_state = &scenarios[k];
    }

    return _cmocka_run_group_tests("vectors", tests, n, NULL, NULL);
}
