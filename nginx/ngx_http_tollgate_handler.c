/*
 * Copyright (C) Tollgate developers
 *
 * The request path: the application id, the cost, the decision against
 * the state kept in shared memory, the refusal, and the settlement of an
 * estimated body when the request ends.  Also the zone itself: its tree of
 * clusters and applications and the eviction of idle applications.
 */


#include "ngx_http_tollgate_module.h"


/*
 * A context and its cleanup entry in one block, linked into the pool's
 * list as ngx_pool_cleanup_add() would link a separate pair.  Blocks of
 * finished requests wait in this worker's free list for the next ones:
 * the request pool is not asked for memory on every decision, and the
 * list is as long as the most requests this worker ever decided at once.
 */

typedef struct ngx_http_tollgate_ctx_block_s  ngx_http_tollgate_ctx_block_t;

struct ngx_http_tollgate_ctx_block_s {
    ngx_pool_cleanup_t              cln;
    ngx_http_tollgate_ctx_t         ctx;
    ngx_http_request_t             *r;
    ngx_http_tollgate_ctx_block_t  *next;     /* in the free list */
};


static ngx_http_tollgate_ctx_block_t  *ngx_http_tollgate_free_ctx;


static void ngx_http_tollgate_app_header(ngx_http_request_t *r,
    ngx_http_tollgate_loc_conf_t *lcf, ngx_str_t *value);
static ngx_table_elt_t *ngx_http_tollgate_header_by_var(
    ngx_http_request_t *r, ngx_http_tollgate_loc_conf_t *lcf,
    ngx_uint_t by_hash);
static ngx_http_tollgate_node_t *ngx_http_tollgate_node_cached(
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_cluster_t *cluster,
    ngx_http_tollgate_app_t *app, tg_msec_t now_ms, ngx_log_t *log);
static ngx_inline ngx_http_tollgate_ctx_t *ngx_http_tollgate_get_ctx(
    ngx_http_request_t *r);
static ngx_http_tollgate_ctx_t *ngx_http_tollgate_find_ctx(
    ngx_http_request_t *r);
static ngx_http_tollgate_ctx_t *ngx_http_tollgate_create_ctx(
    ngx_http_request_t *r);
static void ngx_http_tollgate_ctx_cleanup(void *data);
static ngx_int_t ngx_http_tollgate_add_header(ngx_http_request_t *r,
    char *name, u_char *value, size_t len);
static u_char *ngx_http_tollgate_policy(u_char *p, u_char *last,
    ngx_http_tollgate_ctx_t *ctx);
static void ngx_http_tollgate_take_batch(ngx_http_tollgate_node_t *cnode,
    ngx_http_tollgate_cluster_t *cluster, ngx_http_tollgate_sapp_t *sapp,
    ngx_http_tollgate_app_t *app, uint64_t cost_tokens, tg_msec_t now_ms,
    tg_grant_t *grant);
static uint64_t ngx_http_tollgate_remaining(tg_cluster_t *c,
    ngx_http_tollgate_sapp_t *sapp, tg_layer_e layer);
static ngx_int_t ngx_http_tollgate_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static void ngx_http_tollgate_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static void *ngx_http_tollgate_record_alloc(ngx_http_tollgate_zone_t *zone,
    size_t size);
static void ngx_http_tollgate_record_free(ngx_http_tollgate_zone_t *zone,
    void *record);
static size_t ngx_http_tollgate_node_size(size_t variant, size_t key_len);
static void ngx_http_tollgate_dextra_free_locked(
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_dextra_t *x);
static ngx_int_t ngx_http_tollgate_keycmp(ngx_http_tollgate_node_t *a,
    ngx_http_tollgate_node_t *b);
static ngx_uint_t ngx_http_tollgate_evict_locked(
    ngx_http_tollgate_zone_t *zone, tg_msec_t now_ms, ngx_log_t *log);


ngx_str_t  ngx_http_tollgate_decision_names[] = {
    ngx_string("allowed"),
    ngx_string("rejected"),
    ngx_string("dry_run"),
    ngx_string("missing_app"),
    ngx_string("invalid_app"),
    ngx_string("unknown_app"),
    ngx_null_string
};


#define NGX_HTTP_TOLLGATE_VAR_COST      0
#define NGX_HTTP_TOLLGATE_VAR_DECISION  1
#define NGX_HTTP_TOLLGATE_VAR_LAYER     2


static ngx_http_variable_t  ngx_http_tollgate_vars[] = {

    { ngx_string("tollgate_cost"), NULL, ngx_http_tollgate_variable,
      NGX_HTTP_TOLLGATE_VAR_COST, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tollgate_decision"), NULL, ngx_http_tollgate_variable,
      NGX_HTTP_TOLLGATE_VAR_DECISION, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tollgate_layer"), NULL, ngx_http_tollgate_variable,
      NGX_HTTP_TOLLGATE_VAR_LAYER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/* upper bounds of the check duration histogram, in nanoseconds */

static const uint64_t  ngx_http_tollgate_hist_ns[] = {
    5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000
};


ngx_int_t
ngx_http_tollgate_handler(ngx_http_request_t *r)
{
    off_t                           body_bytes;
    uint64_t                        remaining;
    ngx_int_t                       rc;
    ngx_uint_t                      log;
    ngx_str_t                       id;
    tg_grant_t                      grant;
    ngx_http_variable_value_t      *vv;
    tg_msec_t                       now_ms;
    struct timespec                 start;
    tg_cost_profile_t              *profile;
    ngx_http_tollgate_ctx_t        *ctx;
    ngx_http_tollgate_sapp_t       *sapp;
    ngx_http_tollgate_app_t        *app;
    ngx_http_tollgate_node_t       *cnode, *anode;
    ngx_http_tollgate_zone_t       *zone;
    ngx_http_tollgate_loc_conf_t   *lcf;
    ngx_http_tollgate_main_conf_t  *mcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_tollgate_module);

    if (!lcf->enable) {
        return NGX_DECLINED;
    }

    /* a request decided before an internal redirect is not charged twice */

    ctx = ngx_http_tollgate_get_ctx(r);

    if (ctx != NULL) {
        return ctx->waiting ? ngx_http_tollgate_lease_handler(r, lcf, ctx)
                            : NGX_DECLINED;
    }

    ctx = ngx_http_tollgate_create_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (lcf->app_header.len) {
        ngx_http_tollgate_app_header(r, lcf, &id);

    } else if (lcf->app_index != NGX_ERROR) {
        vv = ngx_http_get_indexed_variable(r, lcf->app_index);

        if (vv == NULL || vv->not_found) {
            ngx_str_null(&id);

        } else {
            id.data = vv->data;
            id.len = vv->len;
        }

    } else if (ngx_http_complex_value(r, lcf->app, &id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (id.len == 0) {
        return ngx_http_tollgate_refuse(r, lcf, ctx,
                                        NGX_HTTP_TOLLGATE_MISSING_APP);
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_tollgate_module);

    if (mcf->distributed) {

        /*
         * The characters are checked only when the id is not found in
         * this worker's cache of nodes (ngx_http_tollgate_lease_decide):
         * the zone holds no invalid id.
         */

        ctx->app = id;

        if (id.len > NGX_HTTP_TOLLGATE_ID_MAX) {
            return ngx_http_tollgate_refuse(r, lcf, ctx,
                                            NGX_HTTP_TOLLGATE_INVALID_APP);
        }

        ctx->app_key = ngx_http_tollgate_id_hash(id.data, id.len);
        ctx->cluster = lcf->cluster;
        ctx->zone = lcf->shm_zone->data;
        return ngx_http_tollgate_lease_handler(r, lcf, ctx);
    }

    /*
     * A declared id was checked when nginx.conf was read: an id found
     * among them needs no check, one not found is told invalid or unknown.
     */

    app = id.len <= NGX_HTTP_TOLLGATE_ID_MAX
          ? ngx_http_tollgate_app_by_id(mcf, id.data, id.len) : NULL;

    if (app == NULL) {
        ctx->app = id;

        if (ngx_http_tollgate_valid_id(&id) != NGX_OK) {
            return ngx_http_tollgate_refuse(r, lcf, ctx,
                                            NGX_HTTP_TOLLGATE_INVALID_APP);
        }

        return ngx_http_tollgate_refuse(r, lcf, ctx,
                                        NGX_HTTP_TOLLGATE_UNKNOWN_APP);
    }

    body_bytes = ngx_http_tollgate_body_bytes(r, lcf, ctx);

    profile = app->profile ? &app->profile->cost : &lcf->cost;

    ctx->app = app->id;
    ctx->app_conf = app;
    ctx->cluster = lcf->cluster;
    ctx->zone = lcf->shm_zone->data;
    ctx->profile = profile;
    ctx->charged_bytes = body_bytes;
    ctx->cost_tokens = tg_cost_tokens(profile, (uint64_t) body_bytes);

    zone = ctx->zone;
    now_ms = (tg_msec_t) ngx_current_msec;

    (void) clock_gettime(CLOCK_MONOTONIC, &start);

    ngx_http_tollgate_lock(&zone->shpool->mutex);

    cnode = lcf->cluster->node_zone == zone
            ? lcf->cluster->node
            : ngx_http_tollgate_cluster_node_locked(zone, lcf->cluster,
                                                    now_ms,
                                                    r->connection->log);
    anode = ngx_http_tollgate_node_cached(zone, lcf->cluster, app, now_ms,
                                          r->connection->log);

    if (cnode == NULL || anode == NULL) {
        log = now_ms - zone->sh->noroom_logged_ms >= 1000;
        if (log) {
            zone->sh->noroom_logged_ms = now_ms;
        }

        zone->sh->fail_open++;

        ngx_http_tollgate_unlock(&zone->shpool->mutex);

        /*
         * No state to decide on: admit rather than fail the request.
         * Every entry owes debt; said at most once a second.
         */

        if (log) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "tollgate zone \"%V\" has no room for app \"%V\""
                          " in cluster \"%V\", request admitted; every "
                          "entry is in debt, the zone is too small",
                          &zone->name, &app->id, &lcf->cluster->id);
        }

        ctx->decision = NGX_HTTP_TOLLGATE_ALLOWED;
        return NGX_DECLINED;
    }

    sapp = &anode->u.sapp;

    if (sapp->batch_tokens >= ctx->cost_tokens) {
        sapp->batch_tokens -= ctx->cost_tokens;
        grant.granted_tokens = ctx->cost_tokens;
        grant.layer = sapp->batch_layer;

    } else {
        ngx_http_tollgate_take_batch(cnode, lcf->cluster, sapp, app,
                                     ctx->cost_tokens, now_ms, &grant);
    }

    if (grant.granted_tokens) {
        ctx->decision = NGX_HTTP_TOLLGATE_ALLOWED;
        ctx->charged = 1;
        anode->cost_tokens += ctx->cost_tokens;
        cnode->cost_tokens += ctx->cost_tokens;

    } else {
        ctx->decision = lcf->dry_run ? NGX_HTTP_TOLLGATE_DRY_RUN
                                     : NGX_HTTP_TOLLGATE_REJECTED;
    }

    anode->requests[ctx->decision]++;
    cnode->requests[ctx->decision]++;

    ctx->layer = grant.layer;

    remaining = (grant.granted_tokens == 0 || lcf->headers)
                ? ngx_http_tollgate_remaining(&cnode->u.cluster, sapp,
                                              grant.layer)
                : 0;

    ngx_http_tollgate_observe(zone->sh, &start);

    ngx_http_tollgate_unlock(&zone->shpool->mutex);

    if (ctx->decision == NGX_HTTP_TOLLGATE_REJECTED) {

        /* the quotas the refusal's RateLimit-Policy header names */

        ctx->capacity_tps = lcf->cluster->conf.capacity_tps;
        ctx->guaranteed_tps = app->conf.guaranteed_tps;
        ctx->burst_tps = app->conf.burst_tps;
        ctx->max_borrow_tokens = app->conf.max_borrow_tokens;

        return ngx_http_tollgate_reject(r, lcf, ctx, &grant, remaining);
    }

    if (ctx->decision == NGX_HTTP_TOLLGATE_DRY_RUN) {
        ngx_log_error(lcf->log_level, r->connection->log, 0,
                      "tollgate would reject app \"%V\" in cluster \"%V\" "
                      "at the %s layer, cost %uL tokens (dry run)",
                      &app->id, &lcf->cluster->id, tg_layer_name(grant.layer),
                      (unsigned long long) ctx->cost_tokens);
        return NGX_DECLINED;
    }

    if (lcf->headers) {
        u_char  buf[NGX_INT64_LEN + 64];

        rc = ngx_http_tollgate_add_header(r, "RateLimit", buf,
                 ngx_snprintf(buf, sizeof(buf), "\"%s\";r=%uL;t=1",
                              tg_layer_name(grant.layer),
                              (unsigned long long) remaining)
                 - buf);
        if (rc != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return NGX_DECLINED;
}


/*
 * $http_x_y read without the variable machinery: the first header named
 * "x-y", found by the hash nginx's parser computed for each header.  A
 * server with underscores_in_headers may also see "x_y", which has
 * another hash: there the names are compared as $http_x_y compares them.
 */

static void
ngx_http_tollgate_app_header(ngx_http_request_t *r,
    ngx_http_tollgate_loc_conf_t *lcf, ngx_str_t *value)
{
    ngx_table_elt_t           *h;
    ngx_http_core_srv_conf_t  *cscf;

    h = ngx_http_tollgate_header_by_var(r, lcf, 1);

    if (h == NULL) {
        cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);

        if (cscf->underscores_in_headers) {
            h = ngx_http_tollgate_header_by_var(r, lcf, 0);
        }
    }

    if (h != NULL) {
        *value = h->value;

    } else {
        ngx_str_null(value);
    }
}


static ngx_table_elt_t *
ngx_http_tollgate_header_by_var(ngx_http_request_t *r,
    ngx_http_tollgate_loc_conf_t *lcf, ngx_uint_t by_hash)
{
    u_char            ch;
    ngx_str_t        *name;
    ngx_uint_t        i, n;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    name = &lcf->app_header;
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        /* by hash first: one comparison rules out most headers */

        if (by_hash) {
            if (h[i].hash == lcf->app_header_hash
                && h[i].key.len == name->len
                && ngx_http_tollgate_id_equal(h[i].lowcase_key,
                                              lcf->app_header_lc.data,
                                              name->len))
            {
                return &h[i];
            }

            continue;
        }

        if (h[i].key.len != name->len || h[i].hash == 0) {
            continue;
        }

        for (n = 0; n < name->len; n++) {
            ch = h[i].lowcase_key[n];

            if ((ch == '-' ? '_' : ch) != name->data[n]) {
                break;
            }
        }

        if (n == name->len) {
            return &h[i];
        }
    }

    return NULL;
}


/*
 * When the request ends (its context's cleanup, below), a body charged
 * on an estimate or cut short is trued up: more bytes than estimated
 * become debt, fewer are given back.
 */

ngx_int_t
ngx_http_tollgate_settle(ngx_http_request_t *r, ngx_http_tollgate_ctx_t *ctx)
{
    off_t                      received_bytes;
    int64_t                    delta_tokens;
    tg_msec_t                  now_ms;
    ngx_http_tollgate_node_t  *cnode, *anode;
    ngx_http_tollgate_zone_t  *zone;

    if (ctx->estimated) {
        received_bytes = ngx_max(r->headers_in.content_length_n, 0);

    } else if (r->request_body && r->request_body->rest > 0) {
        received_bytes = ngx_max(ctx->charged_bytes
                                 - r->request_body->rest, 0);

    } else {
        return NGX_OK;
    }

    delta_tokens = (int64_t) tg_cost_tokens(ctx->profile,
                                            (uint64_t) received_bytes)
                   - (int64_t) ctx->cost_tokens;

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "tollgate settle app \"%V\": %O bytes received, "
                   "%O charged, %L tokens",
                   &ctx->app, received_bytes, ctx->charged_bytes,
                   delta_tokens);

    if (delta_tokens == 0) {
        return NGX_OK;
    }

    if (ctx->app_conf == NULL) {
        return ngx_http_tollgate_lease_settle(r, ctx, delta_tokens);
    }

    zone = ctx->zone;
    now_ms = (tg_msec_t) ngx_current_msec;

    ngx_http_tollgate_lock(&zone->shpool->mutex);

    cnode = ngx_http_tollgate_node_locked(zone, ctx->cluster, NULL, 0, NULL,
                                          now_ms, r->connection->log);
    anode = ngx_http_tollgate_node_cached(zone, ctx->cluster, ctx->app_conf,
                                          now_ms, r->connection->log);

    if (cnode != NULL && anode != NULL) {
        tg_settle(&cnode->u.cluster, &ctx->cluster->conf, &anode->u.sapp.app,
                  &ctx->app_conf->conf, delta_tokens, now_ms);

        anode->cost_tokens += delta_tokens;
        cnode->cost_tokens += delta_tokens;
    }

    ngx_http_tollgate_unlock(&zone->shpool->mutex);

    return NGX_OK;
}


/*
 * The context must outlive an internal redirect, which clears r->ctx:
 * a pool cleanup holds it and is searched for when r->ctx lost it.
 */

static ngx_inline ngx_http_tollgate_ctx_t *
ngx_http_tollgate_get_ctx(ngx_http_request_t *r)
{
    ngx_http_tollgate_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tollgate_module);

    if (ctx != NULL || !r->internal) {
        return ctx;
    }

    return ngx_http_tollgate_find_ctx(r);
}


static ngx_http_tollgate_ctx_t *
ngx_http_tollgate_find_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_tollgate_ctx_t  *ctx;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_tollgate_ctx_cleanup) {
            ctx = &((ngx_http_tollgate_ctx_block_t *) cln->data)->ctx;
            ngx_http_set_ctx(r, ctx, ngx_http_tollgate_module);
            return ctx;
        }
    }

    return NULL;
}


static ngx_http_tollgate_ctx_t *
ngx_http_tollgate_create_ctx(ngx_http_request_t *r)
{
    ngx_http_tollgate_ctx_block_t  *b;

    b = ngx_http_tollgate_free_ctx;

    if (b != NULL) {
        ngx_http_tollgate_free_ctx = b->next;

    } else {
        b = ngx_alloc(sizeof(ngx_http_tollgate_ctx_block_t),
                      r->connection->log);
        if (b == NULL) {
            return NULL;
        }
    }

    ngx_memzero(&b->ctx, offsetof(ngx_http_tollgate_ctx_t, app_key));

    b->r = r;
    b->cln.handler = ngx_http_tollgate_ctx_cleanup;
    b->cln.data = b;
    b->cln.next = r->pool->cleanup;
    r->pool->cleanup = &b->cln;

    ngx_http_set_ctx(r, &b->ctx, ngx_http_tollgate_module);

    return &b->ctx;
}


/*
 * The request's pool is going, after the log phase: a body charged is
 * settled (the request is still whole while its pool's cleanups run),
 * and the context waits for another request.  Settling here rather than
 * in a log phase handler spares every other request a call.
 */

static void
ngx_http_tollgate_ctx_cleanup(void *data)
{
    ngx_http_tollgate_ctx_block_t  *b = data;

    if (b->ctx.charged && b->ctx.charged_bytes != 0) {
        (void) ngx_http_tollgate_settle(b->r, &b->ctx);
    }

    b->next = ngx_http_tollgate_free_ctx;
    ngx_http_tollgate_free_ctx = b;
}


ngx_int_t
ngx_http_tollgate_refuse(ngx_http_request_t *r,
    ngx_http_tollgate_loc_conf_t *lcf, ngx_http_tollgate_ctx_t *ctx,
    ngx_http_tollgate_decision_e decision)
{
    ngx_str_t                  body;
    ngx_uint_t                 status;
    ngx_http_tollgate_zone_t  *zone;

    ctx->decision = decision;

    zone = lcf->shm_zone->data;

    ngx_http_tollgate_lock(&zone->shpool->mutex);
    zone->sh->refused[decision]++;
    ngx_http_tollgate_unlock(&zone->shpool->mutex);

    switch (decision) {

    case NGX_HTTP_TOLLGATE_MISSING_APP:
        status = lcf->missing_status;
        ngx_str_set(&body, "{\"error\":\"missing_app\",\"message\":"
                           "\"the request names no application\"}\n");
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "tollgate refused a request with no application id");
        break;

    case NGX_HTTP_TOLLGATE_INVALID_APP:
        status = lcf->missing_status;
        ngx_str_set(&body, "{\"error\":\"invalid_app\",\"message\":"
                           "\"an application id is 1 to 64 characters of "
                           "A-Z a-z 0-9 . _ -\"}\n");
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "tollgate refused a malformed application id "
                      "of %uz bytes", ngx_min(ctx->app.len, 4096));
        break;

    default: /* NGX_HTTP_TOLLGATE_UNKNOWN_APP */
        status = lcf->unknown_status;
        ngx_str_set(&body, "{\"error\":\"unknown_app\",\"message\":"
                           "\"the application is not declared\"}\n");
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "tollgate refused unknown app \"%V\"", &ctx->app);
        break;
    }

    return ngx_http_tollgate_send_json(r, status, body.data, body.len);
}


ngx_int_t
ngx_http_tollgate_reject(ngx_http_request_t *r,
    ngx_http_tollgate_loc_conf_t *lcf, ngx_http_tollgate_ctx_t *ctx,
    tg_grant_t *grant, uint64_t remaining_tokens)
{
    u_char       *p, *last, *body;
    size_t        len;
    ngx_int_t     rc;
    const char   *layer;
    ngx_msec_t    retry_s;

    layer = tg_layer_name(grant->layer);

    /* whole seconds, rounded up, never below one (RFC 9110 Retry-After) */

    retry_s = (ngx_msec_t) ((grant->retry_after_ms + 999) / 1000);
    if (retry_s == 0) {
        retry_s = 1;
    }

    ngx_log_error(lcf->log_level, r->connection->log, 0,
                  "tollgate rejected app \"%V\" in cluster \"%V\" at the "
                  "%s layer, cost %uL tokens, retry in %M s%s",
                  &ctx->app, &ctx->cluster->id, layer,
                  (unsigned long long) ctx->cost_tokens, retry_s,
                  grant->emergency ? " (emergency)" : "");

    len = 512;

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = body + len;

    p = ngx_snprintf(body, last - body, "%M", retry_s);
    rc = ngx_http_tollgate_add_header(r, "Retry-After", body, p - body);
    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_http_tollgate_policy(body, last, ctx);

    /* refused undecided (fail mode closed): a local policy of nothing */

    if (grant->layer == TG_LAYER_LOCAL) {
        p = ngx_slprintf(p, last, ", \"local\";q=0;w=1");
    }

    rc = ngx_http_tollgate_add_header(r, "RateLimit-Policy", body, p - body);
    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_snprintf(body, last - body, "\"%s\";r=%uL;t=%M", layer,
                     (unsigned long long) remaining_tokens, retry_s);
    rc = ngx_http_tollgate_add_header(r, "RateLimit", body, p - body);
    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the header values were copied: the buffer is free for the body */

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_snprintf(body, len,
                     "{\"error\":\"rate_limited\",\"app\":\"%V\","
                     "\"layer\":\"%s\",\"retry_after\":%M%s}\n",
                     &ctx->app, layer, retry_s,
                     grant->emergency ? ",\"emergency\":true" : "");

    return ngx_http_tollgate_send_json(r, lcf->reject_status, body, p - body);
}


/*
 * Sends a complete JSON response from a phase handler.  The request is
 * finalized here, so the caller returns NGX_DONE and the phase engine
 * stops.
 */

ngx_int_t
ngx_http_tollgate_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len)
{
    ngx_int_t                 rc;
    ngx_str_t                 type = ngx_string("application/json");
    ngx_http_complex_value_t  cv;

    ngx_memzero(&cv, sizeof(ngx_http_complex_value_t));

    cv.value.data = body;
    cv.value.len = len;

    rc = ngx_http_send_response(r, status, &type, &cv);

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


static ngx_int_t
ngx_http_tollgate_add_header(ngx_http_request_t *r, char *name,
    u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->value.data = ngx_pnalloc(r->pool, len);
    if (h->value.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(h->value.data, value, len);
    h->value.len = len;

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);

    return NGX_OK;
}


/* one named policy per layer that applies to the application */

static u_char *
ngx_http_tollgate_policy(u_char *p, u_char *last, ngx_http_tollgate_ctx_t *ctx)
{
    p = ngx_slprintf(p, last, "\"guaranteed\";q=%uL;w=1",
                     (unsigned long long) ctx->guaranteed_tps);

    if (ctx->burst_tps > ctx->guaranteed_tps) {
        p = ngx_slprintf(p, last, ", \"burst\";q=%uL;w=1",
                         (unsigned long long) ctx->burst_tps);
    }

    if (ctx->max_borrow_tokens) {
        p = ngx_slprintf(p, last, ", \"debt\";q=%uL",
                         (unsigned long long) ctx->max_borrow_tokens);
    }

    return ngx_slprintf(p, last, ", \"cluster\";q=%uL;w=1",
                        (unsigned long long) ctx->capacity_tps);
}


/*
 * Standalone mode runs the full rules (tg_acquire) once per batch, not
 * once per request: a request that its node's batch cannot pay takes
 * its cost plus about NGX_HTTP_TOLLGATE_BATCH_MS of the application's
 * top rate, and the next requests are paid from what is left.  The
 * buckets hold a second of rate, so over any period an application is
 * admitted at most that many milliseconds of its rate more than the
 * rules would admit request by request, and never more over time; a
 * rate too small to fill a batch is decided request by request.
 */

static void
ngx_http_tollgate_take_batch(ngx_http_tollgate_node_t *cnode,
    ngx_http_tollgate_cluster_t *cluster, ngx_http_tollgate_sapp_t *sapp,
    ngx_http_tollgate_app_t *app, uint64_t cost_tokens, tg_msec_t now_ms,
    tg_grant_t *grant)
{
    uint64_t  need_tokens, batch_tokens;

    /* what the batch still holds pays first: only the rest is asked for */
    need_tokens = cost_tokens - sapp->batch_tokens;

    /* nor more than the same milliseconds of the cluster's capacity */
    batch_tokens = ngx_min(app->batch_tokens,
                           ngx_http_tollgate_batch(cluster->conf.capacity_tps));

    (void) tg_acquire(&cnode->u.cluster, &cluster->conf, &sapp->app,
                      &app->conf, need_tokens + batch_tokens, need_tokens,
                      now_ms, grant);

    if (grant->granted_tokens == 0) {
        return;
    }

    sapp->batch_tokens += grant->granted_tokens - need_tokens;
    sapp->batch_layer = (uint8_t) grant->layer;
}


/* what is left, in whole tokens, at the layer that decided */

static uint64_t
ngx_http_tollgate_remaining(tg_cluster_t *c, ngx_http_tollgate_sapp_t *sapp,
    tg_layer_e layer)
{
    tg_app_t   *a;
    tg_mtok_t   level_mtok;

    a = &sapp->app;

    switch (layer) {

    case TG_LAYER_CLUSTER:
        level_mtok = c->pool.level_mtok;
        break;

    case TG_LAYER_BURST:
        level_mtok = a->burst.level_mtok;
        break;

    case TG_LAYER_DEBT:
        level_mtok = 0;
        break;

    default:
        level_mtok = a->guaranteed.level_mtok;
        break;
    }

    /* tokens already taken for the application's next requests count */
    return (level_mtok > 0 ? (uint64_t) level_mtok / TG_MTOK_PER_TOKEN : 0)
           + (layer != TG_LAYER_CLUSTER ? sapp->batch_tokens : 0);
}


/*
 * Called by ngx_http_tollgate_unlock() after it freed the lock and saw
 * workers asleep on it: takes one off the count of sleepers and posts
 * the semaphore for it, as ngx_http_tollgate_unlock() would have done.
 */

void
ngx_http_tollgate_wake_one(ngx_shmtx_t *mtx)
{
#if (NGX_HAVE_ATOMIC_OPS && NGX_HAVE_POSIX_SEM)

    ngx_atomic_uint_t  sleepers;

    do {
        sleepers = *mtx->wait;

        if ((ngx_atomic_int_t) sleepers <= 0) {
            return;     /* another release woke the last one */
        }

    } while (!ngx_atomic_cmp_set(mtx->wait, sleepers, sleepers - 1));

    if (sem_post(&mtx->sem) == -1) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                      "tollgate: sem_post() failed waking a worker "
                      "waiting for the zone lock");
    }

#endif
}


void
ngx_http_tollgate_observe(ngx_http_tollgate_shctx_t *sh,
    struct timespec *start)
{
    int64_t          ns;
    ngx_uint_t       i;
    struct timespec  end;

    (void) clock_gettime(CLOCK_MONOTONIC, &end);

    ns = (int64_t) (end.tv_sec - start->tv_sec) * 1000000000
         + (end.tv_nsec - start->tv_nsec);

    if (ns < 0) {
        ns = 0;
    }

    for (i = 0; i < NGX_HTTP_TOLLGATE_HIST_BUCKETS; i++) {
        if ((uint64_t) ns <= ngx_http_tollgate_hist_ns[i]) {
            break;
        }
    }

    sh->hist[i]++;
    sh->hist_sum_ns += (uint64_t) ns;
}


uint64_t
ngx_http_tollgate_hist_bound_ns(ngx_uint_t i)
{
    return ngx_http_tollgate_hist_ns[i];
}


ngx_int_t
ngx_http_tollgate_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_tollgate_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tollgate_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                   *p;
    const char               *name;
    ngx_http_tollgate_ctx_t  *ctx;

    ctx = ngx_http_tollgate_get_ctx(r->main);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    switch (data) {

    case NGX_HTTP_TOLLGATE_VAR_COST:
        p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->data = p;
        v->len = ngx_sprintf(p, "%uL", (unsigned long long) ctx->cost_tokens)
                 - p;
        break;

    case NGX_HTTP_TOLLGATE_VAR_DECISION:
        v->data = ngx_http_tollgate_decision_names[ctx->decision].data;
        v->len = ngx_http_tollgate_decision_names[ctx->decision].len;
        break;

    default: /* NGX_HTTP_TOLLGATE_VAR_LAYER */
        name = ctx->layer == TG_LAYER_NONE ? "" : tg_layer_name(ctx->layer);
        v->data = (u_char *) name;
        v->len = ngx_strlen(name);
        break;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* the zone */

ngx_int_t
ngx_http_tollgate_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_tollgate_zone_t  *ozone = data;

    size_t                     len;
    ngx_http_tollgate_zone_t  *zone;

    zone = shm_zone->data;

    /* a reload keeps the state: the new cycle adopts the old zone */

    if (ozone) {
        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;
        return NGX_OK;
    }

    zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zone->sh = zone->shpool->data;
        return NGX_OK;
    }

    zone->sh = ngx_slab_alloc(zone->shpool,
                              sizeof(ngx_http_tollgate_shctx_t));
    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(zone->sh, sizeof(ngx_http_tollgate_shctx_t));

    zone->shpool->data = zone->sh;

    ngx_rbtree_init(&zone->sh->rbtree, &zone->sh->sentinel,
                    ngx_http_tollgate_rbtree_insert_value);

    tg_health_init(&zone->sh->health, (tg_msec_t) ngx_current_msec);
    zone->sh->forced_local = TG_LEVEL_AUTO;
    zone->sh->forced_gateway = TG_LEVEL_AUTO;
    zone->sh->forced_all = TG_LEVEL_AUTO;

    ngx_queue_init(&zone->sh->lru);

    len = sizeof(" in tollgate zone \"\"") + shm_zone->shm.name.len;

    zone->shpool->log_ctx = ngx_slab_alloc(zone->shpool, len);
    if (zone->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(zone->shpool->log_ctx, " in tollgate zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is reported once by the eviction, not by the slab */

    zone->shpool->log_nomem = 0;

    return NGX_OK;
}


ngx_http_tollgate_node_t *
ngx_http_tollgate_cluster_node_locked(ngx_http_tollgate_zone_t *zone,
    ngx_http_tollgate_cluster_t *cluster, tg_msec_t now_ms, ngx_log_t *log)
{
    ngx_http_tollgate_node_t  *tn;

    if (cluster->node_zone == zone) {
        return cluster->node;
    }

    tn = ngx_http_tollgate_node_locked(zone, cluster, NULL, 0, NULL, now_ms,
                                       log);

    if (tn != NULL) {
        cluster->node = tn;
        cluster->node_zone = zone;
    }

    return tn;
}


/*
 * A declared application's node, from this worker's pointer when the
 * zone has evicted nothing since the pointer was taken: only eviction
 * frees application nodes, so an unchanged count proves it alive.
 */

static ngx_http_tollgate_node_t *
ngx_http_tollgate_node_cached(ngx_http_tollgate_zone_t *zone,
    ngx_http_tollgate_cluster_t *cluster, ngx_http_tollgate_app_t *app,
    tg_msec_t now_ms, ngx_log_t *log)
{
    ngx_http_tollgate_node_t  *tn;

    if (app->node_zone == zone && app->node_cluster == cluster
        && app->node_evictions == zone->sh->evictions)
    {
        tn = app->node;

        ngx_http_tollgate_node_touch(zone, tn, now_ms);
        return tn;
    }

    tn = ngx_http_tollgate_node_locked(zone, cluster, &app->id, app->hash,
                                       &app->conf, now_ms, log);

    if (tn != NULL) {
        app->node = tn;
        app->node_cluster = cluster;
        app->node_zone = zone;
        app->node_evictions = zone->sh->evictions;
    }

    return tn;
}


/*
 * An application's node by its id after a miss in this worker's cache of
 * nodes (ngx_http_tollgate_node_hit_locked() in the header): found, or
 * made, in the zone's tree, and kept in the cache's entry for the id.
 */

ngx_http_tollgate_node_cache_t
    ngx_http_tollgate_node_cache[NGX_HTTP_TOLLGATE_NODE_CACHE];


ngx_http_tollgate_node_t *
ngx_http_tollgate_node_fill_locked(ngx_http_tollgate_zone_t *zone,
    ngx_http_tollgate_cluster_t *cluster, ngx_str_t *app_id,
    ngx_uint_t app_key, tg_msec_t now_ms, ngx_log_t *log)
{
    ngx_http_tollgate_node_t        *tn;
    ngx_http_tollgate_node_cache_t  *e;

    e = &ngx_http_tollgate_node_cache[app_key % NGX_HTTP_TOLLGATE_NODE_CACHE];

    /* the tree orders applications by ngx_hash_key(), not by this hash */

    tn = ngx_http_tollgate_node_locked(zone, cluster, app_id,
                                       ngx_hash_key(app_id->data,
                                                    app_id->len),
                                       NULL, now_ms, log);

    if (tn != NULL) {
        e->node = tn;
        e->zone = zone;
        e->cluster = cluster;
        e->evictions = zone->sh->evictions;
    }

    return tn;
}


/*
 * Finds, or creates, the node of a cluster (app == NULL) or of an
 * application within a cluster.  The zone mutex must be held; nodes are
 * only valid until it is released, since another worker may evict them.
 */

ngx_http_tollgate_node_t *
ngx_http_tollgate_node_locked(ngx_http_tollgate_zone_t *zone,
    ngx_http_tollgate_cluster_t *cluster, ngx_str_t *app_id,
    ngx_uint_t app_hash, tg_app_conf_t *app_conf, tg_msec_t now_ms,
    ngx_log_t *log)
{
    size_t                     n, variant, key_len;
    u_char                    *key;
    uint32_t                   hash;
    ngx_int_t                  rc;
    ngx_uint_t                 tries;
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_http_tollgate_node_t  *tn, probe;

    probe.is_cluster = app_id == NULL;
    probe.cluster_len = (u_char) cluster->id.len;
    probe.app_len = app_id ? (u_char) app_id->len : 0;

    hash = (uint32_t) cluster->hash;
    if (app_id) {
        hash = hash * 31 + (uint32_t) app_hash;
    }

    node = zone->sh->rbtree.root;
    sentinel = zone->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        tn = (ngx_http_tollgate_node_t *) &node->color;

        rc = ngx_http_tollgate_keycmp(&probe, tn);

        if (rc == 0) {
            rc = ngx_memcmp(cluster->id.data, tn->key, cluster->id.len);
        }

        if (rc == 0 && app_id) {
            rc = ngx_memcmp(app_id->data, tn->key + tn->cluster_len,
                            app_id->len);
        }

        if (rc == 0) {
            if (app_id) {
                ngx_queue_remove(&tn->queue);
                ngx_queue_insert_head(&zone->sh->lru, &tn->queue);
            }

            tn->last_ms = (uint32_t) now_ms;
            return tn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    /* an application's node ends with its mode's variant (module.h) */

    key_len = probe.cluster_len + probe.app_len;

    if (app_id == NULL) {
        variant = sizeof(((ngx_http_tollgate_node_t *) NULL)->u);
        n = key_len;

    } else {
        variant = zone->distributed ? sizeof(ngx_http_tollgate_dapp_t)
                                    : sizeof(ngx_http_tollgate_sapp_t);
        n = NGX_HTTP_TOLLGATE_KEY_INLINE;
    }

    n = ngx_http_tollgate_node_size(variant, n);

    key = NULL;

    for (tries = 0; /* void */; tries++) {
        node = app_id ? ngx_http_tollgate_record_alloc(zone, n)
                      : ngx_slab_alloc_locked(zone->shpool, n);

        if (node != NULL && key_len > NGX_HTTP_TOLLGATE_KEY_INLINE
            && app_id != NULL)
        {
            key = ngx_slab_alloc_locked(zone->shpool, key_len);

            if (key == NULL) {
                ngx_http_tollgate_record_free(zone, node);
                node = NULL;
            }
        }

        if (node != NULL || tries == 3
            || ngx_http_tollgate_evict_locked(zone, now_ms, log) == 0)
        {
            break;
        }
    }

    if (node == NULL) {
        return NULL;
    }

    node->key = hash;

    tn = (ngx_http_tollgate_node_t *) &node->color;

    ngx_memzero(&tn->u, variant);
    ngx_memzero(tn->requests, sizeof(tn->requests));

    tn->key_apart = key != NULL;
    tn->key = key ? key : (u_char *) &tn->u + variant;

    tn->is_cluster = probe.is_cluster;
    tn->cluster_len = probe.cluster_len;
    tn->app_len = probe.app_len;
    tn->last_ms = (uint32_t) now_ms;
    tn->cost_tokens = 0;

    ngx_memcpy(tn->key, cluster->id.data, cluster->id.len);

    if (app_id) {
        ngx_memcpy(tn->key + tn->cluster_len, app_id->data, app_id->len);

        /* distributed mode starts from an empty lease: zeroed state */
        if (app_conf) {
            tg_app_init(&tn->u.sapp.app, app_conf, now_ms);
        }

        ngx_queue_insert_head(&zone->sh->lru, &tn->queue);
        zone->sh->apps++;

    } else {
        /* clusters are few and never evicted */
        if (app_conf == NULL && zone->distributed == 0) {
            tg_cluster_init(&tn->u.cluster, &cluster->conf, now_ms);
        }

        ngx_queue_init(&tn->queue);
        zone->sh->clusters++;
    }

    ngx_rbtree_insert(&zone->sh->rbtree, node);

    return tn;
}


/*
 * Makes room by dropping the least recently used applications that owe
 * nothing: no debt, nothing in flight.  Dropping one forgives at most
 * the part of a second's refill it had spent; an application in debt is
 * kept, or evicting it would forgive the debt.
 */

static ngx_uint_t
ngx_http_tollgate_evict_locked(ngx_http_tollgate_zone_t *zone,
    tg_msec_t now_ms, ngx_log_t *log)
{
    ngx_uint_t                   n, scanned;
    ngx_queue_t                 *q, *prev;
    ngx_rbtree_node_t           *node;
    ngx_http_tollgate_dapp_t    *d;
    ngx_http_tollgate_node_t    *tn;
    ngx_http_tollgate_dextra_t  *x;

    if (zone->no_evict) {
        return 0;
    }

    if (!zone->sh->full_logged) {
        zone->sh->full_logged = 1;
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "tollgate zone \"%V\" is full, evicting the least "
                      "recently used applications at rest; a larger zone "
                      "keeps more state", &zone->name);
    }

    n = 0;
    scanned = 0;

    /* the most recently used is spared: it may be the caller's */

    for (q = ngx_queue_last(&zone->sh->lru);
         q != ngx_queue_sentinel(&zone->sh->lru)
         && q != ngx_queue_head(&zone->sh->lru) && n < 2 && scanned < 32;
         q = prev)
    {
        prev = ngx_queue_prev(q);
        scanned++;

        tn = ngx_queue_data(q, ngx_http_tollgate_node_t, queue);

        if (zone->distributed) {
            d = &tn->u.dapp;

            /*
             * Lease tokens and plain usage may go with the entry: Redis
             * charged them when it granted them, so dropping them only
             * under-admits.  Debt not yet reported would be forgiven,
             * and a call in flight would come back to a stranger.
             */

            x = ngx_http_tollgate_dextra(zone, d);

            if (d->lease.refill_inflight || d->reporting || d->debt_tokens
                || (x != NULL && x->report_debt))
            {
                continue;
            }

            if (x != NULL) {
                ngx_http_tollgate_dextra_free_locked(zone, x);
            }

        } else if (tn->u.sapp.app.debt_mtok > 0) {
            continue;
        }

        ngx_queue_remove(q);

        node = (ngx_rbtree_node_t *)
                   ((u_char *) tn - offsetof(ngx_rbtree_node_t, color));

        ngx_rbtree_delete(&zone->sh->rbtree, node);

        if (tn->key_apart) {
            ngx_slab_free_locked(zone->shpool, tn->key);
        }

        ngx_http_tollgate_record_free(zone, node);

        zone->sh->apps--;
        zone->sh->evictions++;
        n++;
    }

    return n;
}


/* an rbtree node with a Tollgate node of this variant and key length */

static size_t
ngx_http_tollgate_node_size(size_t variant, size_t key_len)
{
    return ngx_align(offsetof(ngx_rbtree_node_t, color)
                     + offsetof(ngx_http_tollgate_node_t, u) + variant
                     + key_len,
                     sizeof(void *));
}


/*
 * Application records come from whole pages of the zone, carved in
 * records of one size and kept in a free list when evicted: a record
 * is not rounded up to the slab's next power of two.  A reload that
 * changes the mode changes the size: the records of the old size that
 * were free then are left unused (the old mode's live nodes would need
 * a restart anyway).
 */

static void *
ngx_http_tollgate_record_alloc(ngx_http_tollgate_zone_t *zone, size_t size)
{
    u_char  *page, *p;
    void   **rec;

    if (zone->sh->record_size != size) {
        zone->sh->record_size = size;
        zone->sh->free_records = NULL;
    }

    if (zone->sh->free_records == NULL) {

        /*
         * The zone's last pages are left to the slab (the reserve is set
         * with the zone): a zone full of records evicts one instead.
         */

        if (zone->shpool->pfree <= zone->reserve_pages) {
            return NULL;
        }

        page = ngx_slab_alloc_locked(zone->shpool, ngx_pagesize);
        if (page == NULL) {
            return NULL;
        }

        for (p = page; p + size <= page + ngx_pagesize; p += size) {
            ngx_http_tollgate_record_free(zone, p);
        }
    }

    rec = zone->sh->free_records;
    zone->sh->free_records = *rec;

    return rec;
}


static void
ngx_http_tollgate_record_free(ngx_http_tollgate_zone_t *zone, void *record)
{
    *(void **) record = zone->sh->free_records;
    zone->sh->free_records = record;
}


/*
 * An application's extra record (module.h), made when first needed:
 * from the slab, which the records leave a few pages to (see
 * ngx_http_tollgate_record_alloc), else in a free application record.
 * May evict: the least recently used applications at rest give up their
 * records; never the one most recently used, the caller's.  NULL when
 * the zone has no room.
 */

ngx_http_tollgate_dextra_t *
ngx_http_tollgate_dextra_get_locked(ngx_http_tollgate_zone_t *zone,
    ngx_http_tollgate_dapp_t *d, ngx_uint_t may_evict)
{
    void                        **rec;
    ngx_uint_t                    tries;
    ngx_http_tollgate_dextra_t   *x;

    if (d->extra) {
        return ngx_http_tollgate_dextra(zone, d);
    }

    for (tries = 0; /* void */; tries++) {
        x = ngx_slab_calloc_locked(zone->shpool,
                                   sizeof(ngx_http_tollgate_dextra_t));
        if (x != NULL) {
            break;
        }

        /* only a distributed record: one freed goes back to their list */

        rec = zone->sh->free_records;

        if (rec != NULL
            && zone->sh->record_size
               == ngx_http_tollgate_node_size(
                      sizeof(ngx_http_tollgate_dapp_t),
                      NGX_HTTP_TOLLGATE_KEY_INLINE))
        {
            zone->sh->free_records = *rec;

            x = (ngx_http_tollgate_dextra_t *) rec;
            ngx_memzero(x, sizeof(ngx_http_tollgate_dextra_t));
            x->in_record = 1;
            break;
        }

        if (!may_evict || tries == 1
            || ngx_http_tollgate_evict_locked(zone, (tg_msec_t)
                                              ngx_current_msec,
                                              ngx_cycle->log) == 0)
        {
            return NULL;
        }
    }

    d->extra = (uint32_t) (((u_char *) x - (u_char *) zone->shpool) >> 3);

    return x;
}


static void
ngx_http_tollgate_dextra_free_locked(ngx_http_tollgate_zone_t *zone,
    ngx_http_tollgate_dextra_t *x)
{
    if (x->in_record) {
        ngx_http_tollgate_record_free(zone, x);

    } else {
        ngx_slab_free_locked(zone->shpool, x);
    }
}


/* frees the extra record once nothing in it is needed */

void
ngx_http_tollgate_dextra_release_locked(ngx_http_tollgate_zone_t *zone,
    ngx_http_tollgate_dapp_t *d)
{
    ngx_http_tollgate_dextra_t  *x;

    x = ngx_http_tollgate_dextra(zone, d);

    if (x == NULL || x->local_ready || x->report_used || x->report_returned
        || x->report_debt)
    {
        return;
    }

    ngx_http_tollgate_dextra_free_locked(zone, x);
    d->extra = 0;
}


static ngx_int_t
ngx_http_tollgate_keycmp(ngx_http_tollgate_node_t *a,
    ngx_http_tollgate_node_t *b)
{
    if (a->is_cluster != b->is_cluster) {
        return (ngx_int_t) a->is_cluster - (ngx_int_t) b->is_cluster;
    }

    if (a->cluster_len != b->cluster_len) {
        return (ngx_int_t) a->cluster_len - (ngx_int_t) b->cluster_len;
    }

    return (ngx_int_t) a->app_len - (ngx_int_t) b->app_len;
}


static void
ngx_http_tollgate_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_int_t                  rc;
    ngx_rbtree_node_t        **p;
    ngx_http_tollgate_node_t  *tn, *tt;

    for ( ;; ) {

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            tn = (ngx_http_tollgate_node_t *) &node->color;
            tt = (ngx_http_tollgate_node_t *) &temp->color;

            rc = ngx_http_tollgate_keycmp(tn, tt);

            if (rc == 0) {
                rc = ngx_memcmp(tn->key, tt->key,
                                tn->cluster_len + tn->app_len);
            }

            p = (rc < 0) ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}
