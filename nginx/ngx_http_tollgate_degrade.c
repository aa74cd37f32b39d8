/*
 * Copyright (C) Tollgate developers
 *
 * Degradation (DESIGN §4): every Redis reply feeds the gateway's health
 * window; the worker that syncs moves the level; operators force it
 * through Redis or through the local control endpoint; and when Redis
 * cannot decide, each application gets its local share: its quota
 * divided by the live gateways, enforced by the standalone rules.
 */


#include "ngx_http_tollgate_module.h"


ngx_http_tollgate_shctx_t         *ngx_http_tollgate_health_sh;
static ngx_slab_pool_t            *ngx_http_tollgate_health_pool;


static ngx_int_t ngx_http_tollgate_control_set(ngx_http_request_t *r,
    ngx_http_tollgate_main_conf_t *mcf, ngx_str_t *arg);
static void ngx_http_tollgate_apply_force_locked(ngx_http_tollgate_shctx_t *sh,
    tg_msec_t now_ms);
static int ngx_http_tollgate_parse_level(u_char *data, size_t len);


/* the health lives in the first zone, beside the Redis counters */

void
ngx_http_tollgate_health_attach(ngx_http_tollgate_zone_t *zone)
{
    ngx_http_tollgate_health_sh = zone->sh;
    ngx_http_tollgate_health_pool = zone->shpool;
}


void
ngx_http_tollgate_health_record(uint32_t latency_us, int outcome)
{
    ngx_http_tollgate_main_conf_t  *mcf;

    if (ngx_http_tollgate_health_sh == NULL) {
        return;
    }

    mcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                              ngx_http_tollgate_module);

    ngx_http_tollgate_lock(&ngx_http_tollgate_health_pool->mutex);
    tg_health_record(&ngx_http_tollgate_health_sh->health, &mcf->health,
                     latency_us, outcome, (tg_msec_t) ngx_current_msec);
    ngx_http_tollgate_unlock(&ngx_http_tollgate_health_pool->mutex);
}


/*
 * Called by the worker that syncs, every period: moves the level and
 * logs each transition once, with what caused it.
 */

void
ngx_http_tollgate_health_evaluate(ngx_http_tollgate_main_conf_t *mcf,
    ngx_uint_t connected)
{
    int                         from, to;
    uint32_t                    p99_us, errors_permille;
    ngx_uint_t                  log_level;
    tg_msec_t                   now_ms;
    const char                 *reason;
    ngx_http_tollgate_shctx_t  *sh;

    sh = ngx_http_tollgate_health_sh;
    if (sh == NULL) {
        return;
    }

    now_ms = (tg_msec_t) ngx_current_msec;

    ngx_http_tollgate_lock(&ngx_http_tollgate_health_pool->mutex);

    ngx_http_tollgate_apply_force_locked(sh, now_ms);

    from = sh->health.level;

    if (!tg_health_evaluate(&sh->health, &mcf->health, (int) connected,
                            now_ms, &reason))
    {
        ngx_http_tollgate_unlock(&ngx_http_tollgate_health_pool->mutex);
        return;
    }

    to = sh->health.level;
    p99_us = tg_health_p99_us(&sh->health, &mcf->health, now_ms);
    errors_permille = tg_health_error_permille(&sh->health, &mcf->health,
                                               now_ms);

    ngx_http_tollgate_unlock(&ngx_http_tollgate_health_pool->mutex);

    log_level = (to > from) ? NGX_LOG_WARN : NGX_LOG_NOTICE;

    /* a p99 past the last bucket reads as "over 1 s" */

    ngx_log_error(log_level, ngx_cycle->log,
                  0, "tollgate: gateway \"%V\" degradation level %d (%s) "
                  "-> %d (%s): %s; redis p99 %s%uD us, errors %uD.%uD %%",
                  &mcf->gateway_id, from, tg_health_level_name(from), to,
                  tg_health_level_name(to), reason,
                  p99_us == TG_HEALTH_LAT_OVER_US ? "over " : "",
                  p99_us == TG_HEALTH_LAT_OVER_US ? 1000000 : p99_us,
                  errors_permille / 10, errors_permille % 10);
}


/*
 * Overrides, most specific first: the local control endpoint, then
 * Redis for this gateway, then Redis for all gateways.
 */

static void
ngx_http_tollgate_apply_force_locked(ngx_http_tollgate_shctx_t *sh,
    tg_msec_t now_ms)
{
    int  want;

    want = sh->forced_local;

    if (want == TG_LEVEL_AUTO) {
        want = sh->forced_gateway;
    }

    if (want == TG_LEVEL_AUTO) {
        want = sh->forced_all;
    }

    if (want != sh->health.forced) {
        tg_health_force(&sh->health, want, now_ms);
    }
}


/* the reply of HMGET tg:degradation * G: levels as text, or nil */

void
ngx_http_tollgate_on_override(redisReply *reply, void *data)
{
    ngx_http_tollgate_shctx_t  *sh;

    sh = ngx_http_tollgate_health_sh;

    if (sh == NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2)
    {
        return;
    }

    ngx_http_tollgate_lock(&ngx_http_tollgate_health_pool->mutex);

    sh->forced_all = reply->element[0]->type == REDIS_REPLY_STRING
                     ? ngx_http_tollgate_parse_level(
                           (u_char *) reply->element[0]->str,
                           reply->element[0]->len)
                     : TG_LEVEL_AUTO;

    sh->forced_gateway = reply->element[1]->type == REDIS_REPLY_STRING
                         ? ngx_http_tollgate_parse_level(
                               (u_char *) reply->element[1]->str,
                               reply->element[1]->len)
                         : TG_LEVEL_AUTO;

    ngx_http_tollgate_unlock(&ngx_http_tollgate_health_pool->mutex);
}


void
ngx_http_tollgate_read_override(ngx_http_tollgate_main_conf_t *mcf)
{
    ngx_str_t  argv[4], key;

    ngx_str_set(&argv[0], "HMGET");
    ngx_str_set(&argv[1], "tg:degradation");
    ngx_str_set(&argv[2], "*");
    argv[3] = mcf->gateway_id;

    /* the key has no hash tag: its slot is that of the whole name */

    key = argv[1];

    (void) ngx_http_tollgate_redis_call(NGX_HTTP_TOLLGATE_COMMAND, &key, 0, 4,
                                        argv, ngx_http_tollgate_on_override,
                                        NULL);
}


static int
ngx_http_tollgate_parse_level(u_char *data, size_t len)
{
    ngx_int_t  n;

    n = ngx_atoi(data, len);

    if (n == NGX_ERROR || n > TG_LEVEL_FAIL_LOCAL) {
        return TG_LEVEL_AUTO;     /* "auto", or anything else */
    }

    return (int) n;
}


/*
 * The local share, for when Redis cannot decide: an application may use
 * its quota divided by the live gateways, last known, by the standalone
 * rules, in this gateway's shared memory.  What it uses is counted and
 * reported once Redis answers again.  Returns NGX_OK for a decision,
 * NGX_DECLINED for an admission without one (fail mode open, or no
 * quota known yet) and NGX_BUSY when the zone had no room for the share.
 */

ngx_int_t
ngx_http_tollgate_local_locked(ngx_http_tollgate_main_conf_t *mcf,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_node_t *cnode,
    ngx_http_tollgate_dapp_t *d, uint64_t cost_tokens, tg_msec_t now_ms,
    tg_grant_t *grant)
{
    uint32_t                       live;
    tg_app_conf_t                  ac;
    tg_cluster_conf_t              cc;
    ngx_http_tollgate_dextra_t    *x;
    ngx_http_tollgate_dcluster_t  *dc;

    dc = &cnode->u.dcluster;

    /* closed refuses whatever Redis cannot decide, known or not */

    if (mcf->fail_mode == NGX_HTTP_TOLLGATE_FAIL_CLOSED) {
        grant->granted_tokens = 0;
        grant->layer = TG_LAYER_LOCAL;
        grant->retry_after_ms = 1000;
        return NGX_OK;
    }

    if (mcf->fail_mode == NGX_HTTP_TOLLGATE_FAIL_OPEN || !d->known) {
        /* an application never heard of has no known share: admitted */
        grant->granted_tokens = cost_tokens;
        grant->layer = TG_LAYER_LOCAL;
        return NGX_DECLINED;
    }

    live = dc->live_gateways ? dc->live_gateways : 1;

    tg_app_conf_default(&ac);
    ac.guaranteed_tps = d->guaranteed_tps / live;
    ac.burst_tps = ngx_max(d->burst_tps / live, ac.guaranteed_tps);
    ac.priority = d->priority;

    /* in a known emergency, as in Redis: priority 1 gets no burst */

    if (dc->emergency && d->priority >= 1) {
        ac.burst_tps = ac.guaranteed_tps;
    }

    /* the cluster's pool is Redis's; locally only the shares bind */

    tg_cluster_conf_default(&cc);
    cc.capacity_tps = TG_TOKENS_MAX / 1024;
    cc.reserved_permille = 0;
    cc.emergency_permille = 0;

    /* the share's buckets are kept apart, made when first needed */

    x = ngx_http_tollgate_dextra_get_locked(zone, d, 1);

    if (x == NULL) {
        /* the zone has no room for them: admitted undecided */
        grant->granted_tokens = cost_tokens;
        grant->layer = TG_LAYER_LOCAL;
        return NGX_BUSY;
    }

    if (!x->local_ready) {
        tg_app_init(&x->local, &ac, now_ms);
        x->local_ready = 1;
    }

    if (!dc->local_ready) {
        tg_cluster_init(&dc->local, &cc, now_ms);
        dc->local_ready = 1;
    }

    /* in a known emergency, priority 2 waits for Redis */

    if (dc->emergency && d->priority >= 2) {
        grant->granted_tokens = 0;
        grant->layer = TG_LAYER_CLUSTER;
        grant->retry_after_ms = 1000;
        grant->emergency = 1;
        return NGX_OK;
    }

    return tg_acquire(&dc->local, &cc, &x->local, &ac, cost_tokens,
                      cost_tokens, now_ms, grant) == TG_OK
           ? NGX_OK : NGX_ERROR;
}


/*
 * tollgate_control: GET shows the level and what forces it; POST with
 * level=0..3 or level=auto forces or releases it for this gateway.  It
 * works with Redis down, which is when it is needed.
 */

ngx_int_t
ngx_http_tollgate_control_handler(ngx_http_request_t *r)
{
    u_char                         *p;
    size_t                          len;
    ngx_int_t                       rc;
    ngx_str_t                       arg, type;
    tg_msec_t                       now_ms;
    ngx_table_elt_t                *h;
    ngx_http_complex_value_t        cv;
    ngx_http_tollgate_shctx_t      *sh;
    ngx_http_tollgate_loc_conf_t   *lcf;
    ngx_http_tollgate_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_tollgate_module);
    lcf = ngx_http_get_module_loc_conf(r, ngx_http_tollgate_module);

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_str_set(&type, "application/json");
    ngx_memzero(&cv, sizeof(ngx_http_complex_value_t));

    if (lcf->control_secret.len) {
        h = ngx_http_tollgate_find_header(r, "X-Tollgate-Secret");

        if (h == NULL || h->value.len != lcf->control_secret.len
            || ngx_memcmp(h->value.data, lcf->control_secret.data,
                          h->value.len) != 0)
        {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "tollgate control refused: wrong or missing "
                          "X-Tollgate-Secret");
            ngx_str_set(&cv.value, "{\"error\":\"unauthorized\",\"message\":"
                                   "\"X-Tollgate-Secret is missing or "
                                   "wrong\"}\n");
            return ngx_http_send_response(r, NGX_HTTP_UNAUTHORIZED, &type,
                                          &cv);
        }
    }

    sh = ngx_http_tollgate_health_sh;

    if (sh == NULL || !mcf->distributed) {
        ngx_str_set(&cv.value, "{\"error\":\"standalone\",\"message\":"
                               "\"degradation applies with tollgate_redis "
                               "only\"}\n");
        return ngx_http_send_response(r, NGX_HTTP_CONFLICT, &type, &cv);
    }

    if (r->method == NGX_HTTP_POST || r->method == NGX_HTTP_PUT) {
        if (ngx_http_arg(r, (u_char *) "level", 5, &arg) != NGX_OK) {
            ngx_str_set(&cv.value, "{\"error\":\"bad_request\",\"message\":"
                                   "\"level=0..3 or level=auto is "
                                   "required\"}\n");
            return ngx_http_send_response(r, NGX_HTTP_BAD_REQUEST, &type,
                                          &cv);
        }

        rc = ngx_http_tollgate_control_set(r, mcf, &arg);
        if (rc != NGX_OK) {
            ngx_str_set(&cv.value, "{\"error\":\"bad_request\",\"message\":"
                                   "\"level is 0, 1, 2, 3 or auto\"}\n");
            return ngx_http_send_response(r, NGX_HTTP_BAD_REQUEST, &type,
                                          &cv);
        }

    } else if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    len = 512;
    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    now_ms = (tg_msec_t) ngx_current_msec;

    ngx_http_tollgate_lock(&ngx_http_tollgate_health_pool->mutex);

    cv.value.data = p;
    cv.value.len = ngx_snprintf(p, len,
                       "{\"gateway_id\":\"%V\",\"level\":%d,"
                       "\"level_name\":\"%s\",\"forced\":%d,"
                       "\"forced_local\":%d,\"forced_gateway\":%d,"
                       "\"forced_all\":%d,\"target\":%d,"
                       "\"redis_p99_us\":%uD,\"redis_errors_permille\":%uD,"
                       "\"transitions\":%uD,\"fail_mode\":\"%s\"}\n",
                       &mcf->gateway_id, (int) sh->health.level,
                       tg_health_level_name(sh->health.level),
                       (int) sh->health.forced, (int) sh->forced_local,
                       (int) sh->forced_gateway, (int) sh->forced_all,
                       tg_health_target(&sh->health, &mcf->health,
                           (int) ngx_http_tollgate_redis_ready(NULL, 1),
                           now_ms),
                       tg_health_p99_us(&sh->health, &mcf->health, now_ms),
                       tg_health_error_permille(&sh->health, &mcf->health,
                                                now_ms),
                       sh->health.transitions,
                       mcf->fail_mode == NGX_HTTP_TOLLGATE_FAIL_OPEN
                       ? "open"
                       : (mcf->fail_mode == NGX_HTTP_TOLLGATE_FAIL_CLOSED
                          ? "closed" : "local"))
                   - p;

    ngx_http_tollgate_unlock(&ngx_http_tollgate_health_pool->mutex);

    return ngx_http_send_response(r, NGX_HTTP_OK, &type, &cv);
}


static ngx_int_t
ngx_http_tollgate_control_set(ngx_http_request_t *r,
    ngx_http_tollgate_main_conf_t *mcf, ngx_str_t *arg)
{
    int                         level;
    ngx_http_tollgate_shctx_t  *sh;

    if (arg->len == 4 && ngx_strncmp(arg->data, "auto", 4) == 0) {
        level = TG_LEVEL_AUTO;

    } else {
        level = ngx_http_tollgate_parse_level(arg->data, arg->len);

        if (level == TG_LEVEL_AUTO) {
            return NGX_ERROR;
        }
    }

    sh = ngx_http_tollgate_health_sh;

    ngx_http_tollgate_lock(&ngx_http_tollgate_health_pool->mutex);
    sh->forced_local = (int8_t) level;
    ngx_http_tollgate_apply_force_locked(sh, (tg_msec_t) ngx_current_msec);
    ngx_http_tollgate_unlock(&ngx_http_tollgate_health_pool->mutex);

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "tollgate: gateway \"%V\" degradation %s%d by the local "
                  "control endpoint", &mcf->gateway_id,
                  level == TG_LEVEL_AUTO ? "released, was " : "forced to ",
                  level == TG_LEVEL_AUTO ? (int) sh->health.level : level);

    /* take effect now, not at the next sync period */

    ngx_http_tollgate_health_evaluate(mcf,
                                      ngx_http_tollgate_redis_ready(NULL, 1));

    return NGX_OK;
}


ngx_table_elt_t *
ngx_http_tollgate_find_header(ngx_http_request_t *r, char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}
