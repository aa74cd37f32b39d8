/*
 * Copyright (C) Tollgate developers
 *
 * Live data.  Once a second the daemon reads the runtime keys of every
 * cluster in one pipelined round trip, turns counters into rates by the
 * difference with the previous second, keeps the result in a ring
 * buffer per cluster and per application, and renders the snapshot that
 * /api/v1/metrics/realtime answers and the WebSocket pushes.
 *
 * The runtime hashes are the scripts' (docs/redis-scripts.md): balances
 * stored as they were at their last change, which the core library
 * refills to now by the same rules, and counters of tokens that only
 * grow.  Requests and rejections are counted by the gateways, per
 * gateway (tg:{C}:gw:G), not per application.
 */


#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tg_core.h>

#include "db.h"
#include "http.h"
#include "live.h"
#include "prom.h"
#include "redis.h"
#include "routes.h"
#include "valid.h"


#define TGA_RING_S            900       /* history kept: 15 minutes */
#define TGA_SERIES_MAX        4096      /* open addressing, half full */
#define TGA_GATEWAY_LIVE_MS   10000
#define TGA_SNAPSHOT_MAX_AGE_MS  2000

enum { TGA_M_RPS = 0, TGA_M_REJECT, TGA_M_USAGE, TGA_M_TOKENS, TGA_M_N };

static const char  *tga_metric_names[TGA_M_N] = {
    "requests_per_s", "rejection_rate", "usage_pct", "tokens"
};


/* the counters of one sample: requests, or tokens taken and used */
typedef struct {
    int64_t               requests;
    int64_t               rejected;
    int64_t               taken_tokens;   /* granted_total - returned_total */
    int64_t               used_tokens;
} tga_counters_t;


/* the counters of the previous sample, and the history of one series */
typedef struct {
    char                  key[140];     /* "C", "C/A" or "C#G"; "" free */
    int64_t               sample_ms;
    tga_counters_t        last;

    int64_t              *ring_s;       /* second each slot was taken */
    float               (*ring)[TGA_M_N];   /* NAN: not measured */
} tga_series_t;


typedef struct {
    double                requests_per_s;
    double                rejection_rate;
    double                taken_per_s;
    double                used_per_s;
} tga_rates_t;


static tga_series_t   *tga_series;
static size_t          tga_series_used;
static char           *tga_snapshot;       /* the WebSocket message */
static char           *tga_realtime;       /* its "data" member */
static size_t          tga_snapshot_len;
static uint64_t        tga_snapshot_seq;
static int64_t         tga_snapshot_ms;


int
tga_live_init(const tga_config_t *cf)
{
    (void) cf;

    tga_series = calloc(TGA_SERIES_MAX, sizeof(tga_series_t));

    return tga_series ? TGA_OK : TGA_ERROR;
}


void
tga_live_destroy(void)
{
    size_t  i;

    for (i = 0; tga_series && i < TGA_SERIES_MAX; i++) {
        free(tga_series[i].ring_s);
        free(tga_series[i].ring);
    }

    free(tga_series);
    free(tga_snapshot);
    free(tga_realtime);
    tga_series = NULL;
    tga_snapshot = NULL;
}


/* series ----------------------------------------------------------------- */

static size_t
tga_series_hash(const char *key)
{
    uint32_t  h;

    /* FNV-1a */
    for (h = 2166136261u; *key; key++) {
        h = (h ^ (unsigned char) *key) * 16777619u;
    }

    return h % TGA_SERIES_MAX;
}


/* finds or adds a series; NULL once the table is half full */
static tga_series_t *
tga_series_get(const char *key)
{
    size_t         i;
    tga_series_t  *s;

    for (i = tga_series_hash(key); ; i = (i + 1) % TGA_SERIES_MAX) {
        s = &tga_series[i];

        if (strcmp(s->key, key) == 0) {
            return s;
        }

        if (s->key[0] == '\0') {
            break;
        }
    }

    if (tga_series_used >= TGA_SERIES_MAX / 2) {
        return NULL;
    }

    tga_series_used++;
    snprintf(s->key, sizeof(s->key), "%s", key);

    return s;
}


static tga_series_t *
tga_series_find(const char *key)
{
    size_t  i;

    for (i = tga_series_hash(key);
         tga_series[i].key[0];
         i = (i + 1) % TGA_SERIES_MAX)
    {
        if (strcmp(tga_series[i].key, key) == 0) {
            return &tga_series[i];
        }
    }

    return NULL;
}


static long long
tga_field_int(redisReply *r, size_t i)
{
    return r && r->type == REDIS_REPLY_ARRAY && i < r->elements
           && r->element[i]->type == REDIS_REPLY_STRING
           ? strtoll(r->element[i]->str, NULL, 10) : 0;
}


static int
tga_field_present(redisReply *r, size_t i)
{
    return r && r->type == REDIS_REPLY_ARRAY && i < r->elements
           && r->element[i]->type == REDIS_REPLY_STRING;
}


/*
 * Rates since the previous sample of the series.  A counter that went
 * back (a restart, a state hash that expired) counts from zero again
 * rather than going negative.
 */
static tga_rates_t
tga_series_rates(tga_series_t *s, int64_t now_ms, const tga_counters_t *c)
{
    double                 dt_s;
    tga_rates_t            rt;
    const tga_counters_t  *p;

    memset(&rt, 0, sizeof(rt));
    dt_s = (double) (now_ms - s->sample_ms) / 1000;
    p = &s->last;

    if (s->sample_ms && dt_s > 0 && c->requests >= p->requests
        && c->rejected >= p->rejected && c->taken_tokens >= p->taken_tokens
        && c->used_tokens >= p->used_tokens)
    {
        rt.requests_per_s = (double) (c->requests - p->requests) / dt_s;
        rt.taken_per_s = (double) (c->taken_tokens - p->taken_tokens) / dt_s;
        rt.used_per_s = (double) (c->used_tokens - p->used_tokens) / dt_s;
        rt.rejection_rate = c->requests > p->requests
            ? (double) (c->rejected - p->rejected)
              / (double) (c->requests - p->requests)
            : 0;

        /*
         * A gateway's "requests" are its lease lookups, which refusals
         * it cached skip, so its "rejected" can grow faster
         * (docs/limitations.md): a rate is at most all of them.
         */
        if (rt.rejection_rate > 1) {
            rt.rejection_rate = 1;
        }
    }

    s->sample_ms = now_ms;
    s->last = *c;

    return rt;
}


static void
tga_series_record(tga_series_t *s, int64_t now_ms, const float *m)
{
    size_t   slot;
    int64_t  now_s;

    if (s->ring == NULL) {
        s->ring_s = calloc(TGA_RING_S, sizeof(int64_t));
        s->ring = calloc(TGA_RING_S, sizeof(*s->ring));

        if (s->ring_s == NULL || s->ring == NULL) {
            free(s->ring_s);
            free(s->ring);
            s->ring_s = NULL;
            s->ring = NULL;
            return;
        }
    }

    now_s = now_ms / 1000;
    slot = (size_t) (now_s % TGA_RING_S);
    s->ring_s[slot] = now_s;
    memcpy(s->ring[slot], m, sizeof(s->ring[slot]));
}


/* sampling --------------------------------------------------------------- */

static json_t *
tga_live_config(void)
{
    int  rc;

    return tga_db_json(
        "SELECT COALESCE(json_agg(json_build_object("
        " 'cluster_id', c.cluster_id, 'capacity', c.capacity,"
        " 'apps', COALESCE((SELECT json_agg(json_build_object("
        "    'app_id', a.app_id, 'guaranteed_quota', a.guaranteed_quota,"
        "    'burst_quota', a.burst_quota)"
        "    ORDER BY a.app_id)"
        "   FROM applications a WHERE a.cluster_id = c.cluster_id),"
        "  '[]'::json)) ORDER BY c.cluster_id), '[]'::json)"
        " FROM clusters c", 0, NULL, &rc);
}


/* the fields of the pool and of state:A read, in this order */

enum { TGA_POOL_LEVEL = 0, TGA_POOL_LAST, TGA_POOL_GRANTED,
       TGA_POOL_RETURNED };

enum { TGA_APP_G = 0, TGA_APP_G_LAST, TGA_APP_B, TGA_APP_B_LAST,
       TGA_APP_DEBT, TGA_APP_GRANTED, TGA_APP_RETURNED, TGA_APP_USED };


static void
tga_live_append_cluster(const char *id, const char *min_score)
{
    char         k_em[96], k_gws[96], k_pool[96];
    const char  *em[] = { "HGETALL", k_em };
    const char  *gws[] = { "ZRANGEBYSCORE", k_gws, min_score, "+inf" };
    const char  *pool[] = { "HMGET", k_pool, "level_mtok", "last_ms",
                            "granted_total", "returned_total" };

    snprintf(k_em, sizeof(k_em), "tg:{%s}:emergency", id);
    snprintf(k_gws, sizeof(k_gws), "tg:{%s}:gateways", id);
    snprintf(k_pool, sizeof(k_pool), "tg:{%s}:pool", id);

    (void) tga_redis_append(2, em);
    (void) tga_redis_append(4, gws);
    (void) tga_redis_append(6, pool);
}


static void
tga_live_append_app(const char *cluster_id, const char *app_id)
{
    char         key[160];
    const char  *argv[] = { "HMGET", key, "g_mtok", "g_last_ms", "b_mtok",
                            "b_last_ms", "debt_mtok", "granted_total",
                            "returned_total", "used_total" };

    snprintf(key, sizeof(key), "tg:{%s}:state:%s", cluster_id, app_id);
    (void) tga_redis_append(10, argv);
}


/* the live gateways' counters of one cluster, in a second round trip */
static tga_rates_t
tga_live_gateways(const char *cluster_id, redisReply *gws, int64_t now_ms)
{
    char             key[160];
    size_t           i;
    redisReply      *r;
    tga_rates_t      sum, rt;
    tga_series_t    *s;
    tga_counters_t   c;
    const char      *argv[] = { "HMGET", key, "requests", "rejected" };

    memset(&sum, 0, sizeof(sum));
    memset(&c, 0, sizeof(c));

    for (i = 0; gws && i < gws->elements; i++) {
        snprintf(key, sizeof(key), "tg:{%s}:gw:%s", cluster_id,
                 gws->element[i]->str);
        (void) tga_redis_append(4, argv);
    }

    for (i = 0; gws && i < gws->elements; i++) {
        r = tga_redis_read();
        snprintf(key, sizeof(key), "%s#%s", cluster_id,
                 gws->element[i]->str);
        s = tga_series_get(key);

        if (s) {
            c.requests = tga_field_int(r, 0);
            c.rejected = tga_field_int(r, 1);
            rt = tga_series_rates(s, now_ms, &c);
            sum.requests_per_s += rt.requests_per_s;
            sum.rejection_rate += rt.rejection_rate * rt.requests_per_s;
        }

        freeReplyObject(r);
    }

    if (sum.requests_per_s > 0) {
        sum.rejection_rate /= sum.requests_per_s;
    }

    return sum;
}


/*
 * An application's buckets refilled to now as the scripts would, from
 * state:A; an application that never asked has full buckets, as the
 * scripts create them.
 */
static void
tga_live_app_balance(json_t *app, redisReply *r, int64_t now_ms,
    tg_app_t *a)
{
    tg_app_conf_t  ac;

    tg_app_conf_default(&ac);
    ac.guaranteed_tps = (uint64_t) json_integer_value(
                            json_object_get(app, "guaranteed_quota"));
    ac.burst_tps = (uint64_t) json_integer_value(
                       json_object_get(app, "burst_quota"));

    if (!tga_field_present(r, TGA_APP_G_LAST)) {
        tg_app_init(a, &ac, now_ms);
        return;
    }

    a->guaranteed.level_mtok = tga_field_int(r, TGA_APP_G);
    a->guaranteed.last_ms = tga_field_int(r, TGA_APP_G_LAST);
    a->burst.level_mtok = tga_field_int(r, TGA_APP_B);
    a->burst.last_ms = tga_field_int(r, TGA_APP_B_LAST);
    a->debt_mtok = tga_field_int(r, TGA_APP_DEBT);

    tg_app_refill(a, &ac, now_ms);
}


/* mtok to whole tokens: balances round down, debts up */
#define tga_tokens_floor(mtok)                                               \
    ((json_int_t) ((mtok) >= 0 ? (mtok) / TG_MTOK_PER_TOKEN                  \
                   : -((-(mtok) + TG_MTOK_PER_TOKEN - 1)                     \
                       / TG_MTOK_PER_TOKEN)))
#define tga_tokens_ceil(mtok)                                                \
    (-tga_tokens_floor(-(mtok)))


static json_t *
tga_live_app(const char *cluster_id, json_t *app, redisReply *r,
    int64_t now_ms)
{
    char             key[140];
    float            m[TGA_M_N];
    tg_app_t         a;
    json_int_t       burst;
    tga_rates_t      rt;
    tga_series_t    *s;
    tga_counters_t   c;
    const char      *app_id;

    app_id = json_string_value(json_object_get(app, "app_id"));
    burst = json_integer_value(json_object_get(app, "burst_quota"));
    snprintf(key, sizeof(key), "%s/%s", cluster_id, app_id);

    tga_live_app_balance(app, r, now_ms, &a);

    memset(&c, 0, sizeof(c));
    c.taken_tokens = tga_field_int(r, TGA_APP_GRANTED)
                     - tga_field_int(r, TGA_APP_RETURNED);
    c.used_tokens = tga_field_int(r, TGA_APP_USED);

    s = tga_series_get(key);
    memset(&rt, 0, sizeof(rt));

    if (s) {
        rt = tga_series_rates(s, now_ms, &c);
    }

    /* requests are counted per gateway only: not an application's */
    m[TGA_M_RPS] = NAN;
    m[TGA_M_REJECT] = NAN;
    m[TGA_M_USAGE] = burst ? (float) (rt.taken_per_s * 100 / burst) : 0;
    m[TGA_M_TOKENS] = (float) tga_tokens_floor(a.guaranteed.level_mtok);

    if (s) {
        tga_series_record(s, now_ms, m);
    }

    return json_pack("{s:s, s:I, s:I, s:I, s:f, s:f, s:f}",
                     "app_id", app_id,
                     "tokens", tga_tokens_floor(a.guaranteed.level_mtok),
                     "burst_tokens", tga_tokens_floor(a.burst.level_mtok),
                     "debt", tga_tokens_ceil(a.debt_mtok),
                     "usage_pct", (double) m[TGA_M_USAGE],
                     "granted_per_s", rt.taken_per_s,
                     "used_per_s", rt.used_per_s);
}


/* the pool's balance refilled to now; full when it was never used */
static json_int_t
tga_live_pool_tokens(redisReply *pool, json_int_t capacity, int64_t now_ms)
{
    tg_bucket_t  b;

    if (!tga_field_present(pool, TGA_POOL_LAST)) {
        return capacity;
    }

    b.level_mtok = tga_field_int(pool, TGA_POOL_LEVEL);
    b.last_ms = tga_field_int(pool, TGA_POOL_LAST);

    (void) tg_bucket_refill(&b, (uint64_t) capacity,
                            (tg_mtok_t) capacity * TG_MTOK_PER_TOKEN,
                            now_ms);

    return tga_tokens_floor(b.level_mtok);
}


/*
 * Builds one cluster's entry from its replies, taken from *rep in the
 * order they were appended: emergency, gateways, pool, then each app.
 */
static json_t *
tga_live_cluster(json_t *c, redisReply ***rep, int64_t now_ms)
{
    size_t           i;
    float            m[TGA_M_N];
    json_t          *apps, *app, *em_hash, *emergency;
    json_int_t       capacity, pool_tokens;
    redisReply      *em, *gws, *pool;
    tga_rates_t      rt, pool_rt;
    tga_series_t    *s;
    tga_counters_t   pc;
    const char      *id;

    id = json_string_value(json_object_get(c, "cluster_id"));
    capacity = json_integer_value(json_object_get(c, "capacity"));

    em = *(*rep)++;
    gws = *(*rep)++;
    pool = *(*rep)++;

    apps = json_array();
    json_array_foreach(json_object_get(c, "apps"), i, app) {
        json_array_append_new(apps, tga_live_app(id, app, *(*rep)++,
                                                 now_ms));
    }

    rt = tga_live_gateways(id, gws, now_ms);
    pool_tokens = tga_live_pool_tokens(pool, capacity, now_ms);

    memset(&pc, 0, sizeof(pc));
    pc.taken_tokens = tga_field_int(pool, TGA_POOL_GRANTED)
                      - tga_field_int(pool, TGA_POOL_RETURNED);

    s = tga_series_get(id);
    memset(&pool_rt, 0, sizeof(pool_rt));
    if (s) {
        pool_rt = tga_series_rates(s, now_ms, &pc);
    }

    m[TGA_M_RPS] = (float) rt.requests_per_s;
    m[TGA_M_REJECT] = (float) rt.rejection_rate;
    m[TGA_M_USAGE] = capacity ? (float) (pool_rt.taken_per_s * 100
                                         / capacity) : 0;
    m[TGA_M_TOKENS] = (float) pool_tokens;

    if (s) {
        tga_series_record(s, now_ms, m);
    }

    em_hash = tga_redis_hash_json(em);
    emergency = tga_emergency_json(em_hash);
    json_decref(em_hash);

    return json_pack("{s:s, s:I, s:I, s:f, s:f, s:f, s:f, s:o, s:I, s:o}",
        "cluster_id", id, "capacity", capacity,
        "tokens", pool_tokens,
        "usage_pct", (double) m[TGA_M_USAGE],
        "granted_per_s", pool_rt.taken_per_s,
        "requests_per_s", (double) m[TGA_M_RPS],
        "rejection_rate", (double) m[TGA_M_REJECT],
        "emergency", emergency,
        "gateways", (json_int_t) (gws && gws->type == REDIS_REPLY_ARRAY
                                  ? gws->elements : 0),
        "apps", apps);
}


/* sends every cluster's and app's reads in one round trip */
static redisReply **
tga_live_fetch(json_t *config, int64_t now_ms, size_t *n)
{
    char          min_score[24];
    size_t        i, j, count;
    json_t       *c, *app;
    const char   *id;
    redisReply  **rep;

    snprintf(min_score, sizeof(min_score), "%lld",
             (long long) (now_ms - TGA_GATEWAY_LIVE_MS));
    count = 0;

    json_array_foreach(config, i, c) {
        id = json_string_value(json_object_get(c, "cluster_id"));
        tga_live_append_cluster(id, min_score);
        count += 3;

        json_array_foreach(json_object_get(c, "apps"), j, app) {
            tga_live_append_app(id, json_string_value(
                                        json_object_get(app, "app_id")));
            count++;
        }
    }

    rep = calloc(count + 1, sizeof(redisReply *));
    for (i = 0; rep && i < count; i++) {
        rep[i] = tga_redis_read();
    }

    *n = count;

    return rep;
}


static void
tga_live_publish(json_t *data)
{
    json_t  *msg;

    free(tga_realtime);
    tga_realtime = json_dumps(data, TGA_JSON_FLAGS);

    msg = json_pack("{s:s, s:O}", "type", "snapshot", "data", data);
    free(tga_snapshot);
    tga_snapshot = json_dumps(msg, TGA_JSON_FLAGS);
    tga_snapshot_len = tga_snapshot ? strlen(tga_snapshot) : 0;
    tga_snapshot_seq++;
    json_decref(msg);
}


void
tga_live_tick(void)
{
    size_t        i, n;
    json_t       *config, *c, *clusters, *data;
    int64_t       now_ms;
    redisReply  **rep, **next;

    config = tga_live_config();
    if (config == NULL) {
        return;
    }

    now_ms = tga_now_ms();
    rep = tga_live_fetch(config, now_ms, &n);
    clusters = json_array();

    for (i = 0, next = rep; rep && i < json_array_size(config); i++) {
        c = json_array_get(config, i);
        json_array_append_new(clusters, tga_live_cluster(c, &next, now_ms));
    }

    data = json_pack("{s:I, s:o}", "ts_ms", (json_int_t) now_ms,
                     "clusters", clusters);
    tga_live_publish(data);
    tga_snapshot_ms = now_ms;

    for (i = 0; rep && i < n; i++) {
        freeReplyObject(rep[i]);
    }

    free(rep);
    json_decref(data);
    json_decref(config);
}


const char *
tga_live_snapshot(size_t *len, uint64_t *seq)
{
    *len = tga_snapshot_len;
    *seq = tga_snapshot_seq;

    return tga_snapshot;
}


void
tga_route_realtime(tga_req_t *r)
{
    if (tga_realtime == NULL
        || tga_now_ms() - tga_snapshot_ms > TGA_SNAPSHOT_MAX_AGE_MS)
    {
        tga_live_tick();
    }

    if (tga_realtime == NULL) {
        return;
    }

    r->status = 200;
    r->raw = tga_realtime;
    r->raw_type = "application/json";
}


/* gateways --------------------------------------------------------------- */

static json_t *
tga_gateway_json(const char *cluster_id, const char *gw_id, double seen_ms,
    json_t *overrides, int64_t now_ms)
{
    char         key[160];
    json_t      *h, *forced, *gw;
    redisReply  *r;
    const char  *argv[2];

    snprintf(key, sizeof(key), "tg:{%s}:gw:%s", cluster_id, gw_id);
    argv[0] = "HGETALL";
    argv[1] = key;

    r = tga_redis_cmd(2, argv);
    h = tga_redis_hash_json(r);
    freeReplyObject(r);

    forced = json_object_get(overrides, gw_id);
    if (forced == NULL) {
        forced = json_object_get(overrides, "*");
    }

#define TGA_H_INT(name)                                                      \
    (json_int_t) (json_string_value(json_object_get(h, name))                \
                  ? strtoll(json_string_value(json_object_get(h, name)),    \
                            NULL, 10) : 0)

    /* heartbeat.lua writes the hit rate per mille */
    gw = json_pack(
        "{s:s, s:s, s:I, s:b, s:I, s:f, s:I, s:I, s:I, s:I, s:s}",
        "gateway_id", gw_id, "cluster_id", cluster_id,
        "last_heartbeat_ms", (json_int_t) seen_ms,
        "alive", now_ms - (int64_t) seen_ms < TGA_GATEWAY_LIVE_MS,
        "level", TGA_H_INT("level"),
        "hit_rate", (double) TGA_H_INT("hit_rate_permille") / 1000,
        "hit_rate_permille", TGA_H_INT("hit_rate_permille"),
        "requests", TGA_H_INT("requests"),
        "rejected", TGA_H_INT("rejected"),
        "updated_ms", TGA_H_INT("updated_ms"),
        "forced_level", forced ? json_string_value(forced) : "auto");

#undef TGA_H_INT

    json_decref(h);

    return gw;
}


static void
tga_gateways_of(const char *cluster_id, json_t *overrides, json_t *items)
{
    char         key[96];
    size_t       i;
    int64_t      now_ms;
    redisReply  *r;
    const char  *argv[] = { "ZRANGE", key, "0", "-1", "WITHSCORES" };

    snprintf(key, sizeof(key), "tg:{%s}:gateways", cluster_id);
    now_ms = tga_now_ms();

    r = tga_redis_cmd(5, argv);

    for (i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements;
         i += 2)
    {
        json_array_append_new(items, tga_gateway_json(cluster_id,
                                  r->element[i]->str,
                                  atof(r->element[i + 1]->str),
                                  overrides, now_ms));
    }

    freeReplyObject(r);
}


void
tga_route_gateways(tga_req_t *r)
{
    int          rc;
    char         cluster[256];
    size_t       i;
    json_t      *ids, *id, *items, *overrides;
    redisReply  *reply;
    const char  *argv[] = { "HGETALL", "tg:degradation" };
    const char  *params[1];

    if (tga_valid_query_id(r, "cluster_id", cluster, sizeof(cluster))
        != TGA_OK)
    {
        return;
    }

    params[0] = cluster;
    ids = tga_db_json("SELECT COALESCE(json_agg(cluster_id"
                      " ORDER BY cluster_id), '[]'::json) FROM clusters"
                      " WHERE $1 = '' OR cluster_id = $1", 1, params, &rc);
    if (ids == NULL) {
        return;
    }

    reply = tga_redis_cmd(2, argv);
    if (reply == NULL) {
        json_decref(ids);
        tga_reply_error(r, 503, "unavailable", "redis does not answer");
        return;
    }

    overrides = tga_redis_hash_json(reply);
    freeReplyObject(reply);
    items = json_array();

    json_array_foreach(ids, i, id) {
        tga_gateways_of(json_string_value(id), overrides, items);
    }

    json_decref(ids);
    tga_reply(r, 200, json_pack("{s:o, s:o}", "items", items,
                                "degradation", overrides));
}


/* history ---------------------------------------------------------------- */

/* averages the samples of each step that ends in (t - step, t] */
static json_t *
tga_history_points(tga_series_t *s, int metric, int64_t start_s,
    int64_t end_s, int64_t step_s)
{
    int      n;
    double   sum;
    json_t  *points;
    int64_t  t, u;
    size_t   slot;

    points = json_array();

    for (t = start_s; s && s->ring && t <= end_s; t += step_s) {
        sum = 0;
        n = 0;

        for (u = t - step_s + 1; u <= t; u++) {
            slot = (size_t) (u % TGA_RING_S);
            if (u > 0 && s->ring_s[slot] == u
                && !isnan(s->ring[slot][metric]))
            {
                sum += s->ring[slot][metric];
                n++;
            }
        }

        if (n) {
            json_array_append_new(points, json_pack("[I, f]",
                                  (json_int_t) t, sum / n));
        }
    }

    return points;
}


static int
tga_history_metric(tga_req_t *r)
{
    int          m;
    char         buf[64];
    const char  *name;

    name = tga_req_arg(r, "metric", buf, sizeof(buf));

    for (m = 0; name && m < TGA_M_N; m++) {
        if (strcmp(name, tga_metric_names[m]) == 0) {
            return m;
        }
    }

    tga_reply_error(r, 400, "bad_request", "metric must be one of "
                    "requests_per_s, rejection_rate, usage_pct, tokens");

    return -1;
}


static int
tga_history_time(tga_req_t *r, const char *name, int64_t min, int64_t max,
    int64_t *out)
{
    char        buf[32], *end;
    long long   n;
    const char *arg;

    arg = tga_req_arg(r, name, buf, sizeof(buf));
    if (arg == NULL) {
        return TGA_OK;
    }

    n = strtoll(arg, &end, 10);

    if (*arg == '\0' || *end != '\0' || n < min || n > max) {
        tga_reply_error(r, 400, "bad_request", "%s must be an integer in "
                        "[%lld, %lld]", name, (long long) min,
                        (long long) max);
        return TGA_ERROR;
    }

    *out = n;

    return TGA_OK;
}


static void
tga_history_add(json_t *series, const char *key, int metric,
    int64_t start_s, int64_t end_s, int64_t step_s)
{
    char          cluster[TGA_ID_MAX_LEN + 1];
    const char   *slash;
    tga_series_t *s;

    s = tga_series_find(key);
    slash = strchr(key, '/');
    snprintf(cluster, sizeof(cluster), "%.*s",
             (int) (slash ? (size_t) (slash - key) : strlen(key)), key);

    json_array_append_new(series, json_pack("{s:o, s:o}",
        "labels", slash ? json_pack("{s:s, s:s}", "cluster_id", cluster,
                                    "app_id", slash + 1)
                        : json_pack("{s:s}", "cluster_id", cluster),
        "points", tga_history_points(s, metric, start_s, end_s, step_s)));
}


/* the cluster of app_id, from PostgreSQL; replies 404 when unknown */
static int
tga_history_app_cluster(tga_req_t *r, const char *app, char *cluster)
{
    int      rc;
    json_t  *row;
    const char *params[1];

    params[0] = app;
    row = tga_db_json("SELECT json_build_array(cluster_id) FROM"
                      " applications WHERE app_id = $1", 1, params, &rc);

    if (row == NULL) {
        if (rc == TGA_NOT_FOUND) {
            tga_reply_error(r, 404, "not_found", "no application \"%s\"",
                            app);
        }
        return TGA_ERROR;
    }

    snprintf(cluster, TGA_ID_MAX_LEN + 1, "%s",
             json_string_value(json_array_get(row, 0)));
    json_decref(row);

    return TGA_OK;
}


/* what usage_pct divides by: the cluster's capacity or the app's burst */
static int
tga_history_limit(const char *cluster, const char *app, json_int_t *limit)
{
    int          rc;
    json_t      *v;
    const char  *params[2];

    params[0] = cluster;
    params[1] = app;
    v = tga_db_json(app[0]
                    ? "SELECT json_build_array(burst_quota) FROM"
                      " applications WHERE cluster_id = $1 AND app_id = $2"
                    : "SELECT json_build_array(capacity) FROM clusters"
                      " WHERE cluster_id = $1 AND $2 = ''",
                    2, params, &rc);

    *limit = json_integer_value(json_array_get(v, 0));
    json_decref(v);

    return *limit > 0 ? TGA_OK : TGA_ERROR;
}


/*
 * The gateways' own counters in Prometheus, when it is configured:
 * requests and rejections per application, which Redis does not hold.
 * Balances (tokens) come from the ring buffer, which reads them from
 * Redis.  Ids are validated (letters, digits, "._-"), so they go into
 * label matchers as they are.  Returns 0 when the ring buffer answers.
 */
static int
tga_history_prometheus(tga_req_t *r, int metric, const char *cluster,
    const char *app, int64_t start_s, int64_t end_s, int64_t step_s)
{
    char        sel[200], by[32], rej[240], q[1024], w[24];
    json_int_t  limit;

    limit = 0;

    if (!tga_prom_enabled() || metric == TGA_M_TOKENS
        || (metric == TGA_M_USAGE
            && (cluster[0] == '\0'
                || tga_history_limit(cluster, app, &limit) != TGA_OK)))
    {
        return 0;
    }

    snprintf(sel, sizeof(sel), cluster[0] ? (app[0]
             ? "{cluster=\"%s\",app=\"%s\"}" : "{cluster=\"%s\"}") : "",
             cluster, app);
    snprintf(rej, sizeof(rej), cluster[0] ? (app[0]
             ? "{cluster=\"%s\",app=\"%s\",decision=\"rejected\"}"
             : "{cluster=\"%s\",decision=\"rejected\"}")
             : "{decision=\"rejected\"}", cluster, app);
    snprintf(by, sizeof(by), app[0] ? "cluster, app" : "cluster");

    /* a rate needs two scrapes: a minute covers the usual intervals */
    snprintf(w, sizeof(w), "%llds", (long long) (step_s > 60 ? step_s : 60));

    if (metric == TGA_M_RPS) {
        snprintf(q, sizeof(q), "sum by (%s) (rate(tollgate_requests_total%s"
                 "[%s]))", by, sel, w);

    } else if (metric == TGA_M_REJECT) {
        snprintf(q, sizeof(q), "sum by (%s) (rate(tollgate_requests_total%s"
                 "[%s])) / sum by (%s) (rate(tollgate_requests_total%s"
                 "[%s]))", by, rej, w, by, sel, w);

    } else {
        snprintf(q, sizeof(q), "sum by (%s) (rate(tollgate_cost_total%s"
                 "[%s])) * 100 / %lld", by, sel, w, (long long) limit);
    }

    (void) tga_prom_query_range(r, tga_metric_names[metric], q, start_s,
                                end_s, step_s);

    return 1;
}


/*
 * From Prometheus (see above), else from the ring buffer: one series
 * per cluster, or the one asked for.
 */
void
tga_route_history(tga_req_t *r)
{
    int       metric;
    char      cluster[256], app[256], key[140];
    size_t    i;
    json_t   *series;
    int64_t   now_s, start_s, end_s, step_s;

    now_s = tga_now_ms() / 1000;
    end_s = now_s;
    step_s = 15;
    start_s = -1;

    if ((metric = tga_history_metric(r)) < 0
        || tga_valid_query_id(r, "cluster_id", cluster, sizeof(cluster))
           != TGA_OK
        || tga_valid_query_id(r, "app_id", app, sizeof(app)) != TGA_OK
        || tga_history_time(r, "end", 0, now_s + 86400, &end_s) != TGA_OK
        || tga_history_time(r, "start", 0, end_s, &start_s) != TGA_OK
        || tga_history_time(r, "step", 1, 3600, &step_s) != TGA_OK
        || (app[0] && tga_history_app_cluster(r, app, cluster) != TGA_OK))
    {
        return;
    }

    start_s = start_s < 0 ? end_s - 3600 : start_s;

    if ((end_s - start_s) / step_s > 11000) {
        tga_reply_error(r, 400, "bad_request", "more than 11000 points: "
                        "raise step or narrow start..end");
        return;
    }

    if (tga_history_prometheus(r, metric, cluster, app, start_s, end_s,
                               step_s))
    {
        return;
    }

    series = json_array();

    if (cluster[0]) {
        snprintf(key, sizeof(key), app[0] ? "%s/%s" : "%s", cluster, app);
        tga_history_add(series, key, metric, start_s, end_s, step_s);

    } else {
        for (i = 0; i < TGA_SERIES_MAX; i++) {
            if (tga_series[i].key[0] && tga_series[i].ring
                && strpbrk(tga_series[i].key, "/#") == NULL)
            {
                tga_history_add(series, tga_series[i].key, metric, start_s,
                                end_s, step_s);
            }
        }
    }

    tga_reply(r, 200, json_pack("{s:s, s:s, s:o}", "source", "memory",
                                "metric", tga_metric_names[metric],
                                "series", series));
}
