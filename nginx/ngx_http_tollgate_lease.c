/*
 * Copyright (C) Tollgate developers
 *
 * Distributed mode, the request side: a request is paid from the lease
 * this gateway holds for its application in shared memory (L3).  Redis
 * is only asked, asynchronously, when the lease runs low; a request the
 * lease cannot cover waits a bounded time for the refill in flight.
 */


#include "ngx_http_tollgate_module.h"


#define NGX_HTTP_TOLLGATE_POLL_MS       2
#define NGX_HTTP_TOLLGATE_UNKNOWN_MS    1000


typedef enum {
    NGX_HTTP_TOLLGATE_LEASE_ALLOW = 0,
    NGX_HTTP_TOLLGATE_LEASE_REJECT,
    NGX_HTTP_TOLLGATE_LEASE_UNKNOWN,
    NGX_HTTP_TOLLGATE_LEASE_INVALID,
    NGX_HTTP_TOLLGATE_LEASE_WAIT
} ngx_http_tollgate_lease_rc_e;


static ngx_http_tollgate_lease_rc_e ngx_http_tollgate_lease_decide(
    ngx_http_request_t *r, ngx_http_tollgate_loc_conf_t *lcf,
    ngx_http_tollgate_ctx_t *ctx, tg_grant_t *grant, uint64_t *want,
    uint64_t *min);
static ngx_int_t ngx_http_tollgate_lease_wait(ngx_http_request_t *r,
    ngx_http_tollgate_loc_conf_t *lcf, ngx_http_tollgate_ctx_t *ctx);
static ngx_http_tollgate_lease_rc_e ngx_http_tollgate_lease_noroom(
    ngx_http_request_t *r, ngx_http_tollgate_loc_conf_t *lcf,
    ngx_http_tollgate_main_conf_t *mcf, ngx_http_tollgate_ctx_t *ctx,
    tg_grant_t *grant, ngx_http_tollgate_node_t *cnode);
static void ngx_http_tollgate_undecided_locked(
    ngx_http_tollgate_ctx_t *ctx, ngx_uint_t why);
static void ngx_http_tollgate_lease_wake(ngx_http_request_t *r);


/*
 * Whether Redis can take an acquire for this request's cluster: a fresh
 * connection may carry one before it has answered.  Asked only where a
 * refill or a wait is at stake, not on every request paid from the lease.
 */

static ngx_inline ngx_uint_t
ngx_http_tollgate_lease_ready(ngx_http_tollgate_ctx_t *ctx)
{
    return ngx_http_tollgate_redis_ready(&ctx->cluster->id, 0);
}


ngx_int_t
ngx_http_tollgate_lease_handler(ngx_http_request_t *r,
    ngx_http_tollgate_loc_conf_t *lcf, ngx_http_tollgate_ctx_t *ctx)
{
    uint64_t                       want, min;
    tg_grant_t                     grant;
    ngx_http_tollgate_lease_rc_e   rc;

    if (!ctx->waiting) {
        (void) clock_gettime(CLOCK_MONOTONIC, &ctx->start);
    }

    want = 0;
    min = 0;

    rc = ngx_http_tollgate_lease_decide(r, lcf, ctx, &grant, &want, &min);

    if (want) {
        ngx_http_tollgate_acquire(ctx->zone, ctx->cluster, &ctx->app, want,
                                  min);
    }

    switch (rc) {

    case NGX_HTTP_TOLLGATE_LEASE_ALLOW:
        ctx->waiting = 0;
        return NGX_DECLINED;

    case NGX_HTTP_TOLLGATE_LEASE_UNKNOWN:
        ctx->waiting = 0;
        return ngx_http_tollgate_refuse(r, lcf, ctx,
                                        NGX_HTTP_TOLLGATE_UNKNOWN_APP);

    case NGX_HTTP_TOLLGATE_LEASE_INVALID:
        return ngx_http_tollgate_refuse(r, lcf, ctx,
                                        NGX_HTTP_TOLLGATE_INVALID_APP);

    case NGX_HTTP_TOLLGATE_LEASE_WAIT:
        return ngx_http_tollgate_lease_wait(r, lcf, ctx);

    default: /* NGX_HTTP_TOLLGATE_LEASE_REJECT */
        ctx->waiting = 0;

        if (lcf->dry_run) {
            ctx->decision = NGX_HTTP_TOLLGATE_DRY_RUN;
            return NGX_DECLINED;
        }

        return ngx_http_tollgate_reject(r, lcf, ctx, &grant, 0);
    }
}


/*
 * Takes the cost from the lease under the zone lock.  Sets *want when
 * this request must start a refill: at most one is in flight per
 * application and gateway, whichever worker started it.  *grant is
 * filled only where a refusal may follow (a request paid from the lease
 * leaves it alone).
 */

static ngx_http_tollgate_lease_rc_e
ngx_http_tollgate_lease_decide(ngx_http_request_t *r,
    ngx_http_tollgate_loc_conf_t *lcf, ngx_http_tollgate_ctx_t *ctx,
    tg_grant_t *grant, uint64_t *want, uint64_t *min)
{
    off_t                           body_bytes;
    ngx_int_t                       level;
    ngx_uint_t                      was_inflight, decision, sync_now;
    ngx_uint_t                      local;
    ngx_int_t                       local_rc;
    ngx_uint_t                      why;
    tg_msec_t                       now_ms, stale_ms;
    tg_lease_t                     *lease;
    tg_lease_conf_t                 lc, *lcp;
    ngx_http_tollgate_dapp_t       *d;
    ngx_http_tollgate_node_t       *cnode, *anode;
    ngx_http_tollgate_zone_t       *zone;
    ngx_http_tollgate_main_conf_t  *mcf;
    ngx_http_tollgate_lease_rc_e    rc;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_tollgate_module);

    zone = ctx->zone;
    now_ms = (tg_msec_t) ngx_current_msec;
    sync_now = 0;

    ngx_http_tollgate_lock(&zone->shpool->mutex);

    cnode = ctx->cluster->node_zone == zone
            ? ctx->cluster->node
            : ngx_http_tollgate_cluster_node_locked(zone, ctx->cluster,
                                                    now_ms,
                                                    r->connection->log);
    anode = ngx_http_tollgate_node_hit_locked(zone, ctx->cluster, &ctx->app,
                                             ctx->app_key, now_ms);

    if (anode == NULL) {

        /* not seen lately: the id is checked before it takes a node */

        if (ngx_http_tollgate_valid_id(&ctx->app) != NGX_OK) {
            ngx_http_tollgate_unlock(&zone->shpool->mutex);
            return NGX_HTTP_TOLLGATE_LEASE_INVALID;
        }

        anode = ngx_http_tollgate_node_fill_locked(zone, ctx->cluster,
                                                   &ctx->app, ctx->app_key,
                                                   now_ms, r->connection->log);
    }

    if (cnode == NULL || anode == NULL) {
        return ngx_http_tollgate_lease_noroom(r, lcf, mcf, ctx, grant,
                                              cnode);
    }

    d = &anode->u.dapp;
    lease = &d->lease;

    if (lease->target_tokens == 0) {
        tg_lease_init(lease, &mcf->lease, now_ms);
    }

    if (d->unknown && now_ms < d->unknown_until_ms) {
        ngx_http_tollgate_unlock(&zone->shpool->mutex);
        return NGX_HTTP_TOLLGATE_LEASE_UNKNOWN;
    }

    /* the cost is computed once, from the profile Redis names */

    if (!ctx->waiting) {
        body_bytes = ngx_http_tollgate_body_bytes(r, lcf, ctx);

        ctx->profile = ngx_http_tollgate_dapp_cost(mcf, d, &lcf->cost);
        ctx->charged_bytes = body_bytes;
        ctx->cost_tokens = tg_cost_tokens(ctx->profile,
                                          (uint64_t) body_bytes);
    }

    was_inflight = lease->refill_inflight;

    /* a refill started by a worker that died is taken over */

    stale_ms = (tg_msec_t) (2 * mcf->redis.timeout_ms
                            + mcf->redis.connect_timeout_ms);

    if (was_inflight
        && (uint32_t) ((uint32_t) now_ms - d->inflight_since_ms)
           > (uint64_t) stale_ms)
    {
        lease->refill_inflight = 0;
        was_inflight = 0;
    }

    /*
     * Conserving: larger leases, so fewer calls reach a slow Redis.  The
     * longer horizon is not stretched further: the stretch is judged
     * (in the sync, against what L2 has left) for the usual horizon.
     */

    level = ngx_http_tollgate_level();
    lcp = &mcf->lease;

    if (level >= TG_LEVEL_CONSERVE) {
        lc = mcf->lease;
        lc.horizon_ms *= 4;
        lc.stretch_max = 1;
        lcp = &lc;
    }

    decision = tg_lease_take_inline(lease, lcp, ctx->cost_tokens, now_ms);
    local = 0;

    if (!ctx->waiting) {
        zone->sh->decisions++;
    }

    switch (decision) {

    case TG_LEASE_HIT:
    case TG_LEASE_HIT_REFILL:
        zone->sh->l3_hits++;
        rc = NGX_HTTP_TOLLGATE_LEASE_ALLOW;
        break;

    case TG_LEASE_DENIED:
        ngx_memzero(grant, sizeof(tg_grant_t));
        grant->layer = d->denied_layer ? (tg_layer_e) d->denied_layer
                                       : TG_LAYER_GUARANTEED;
        grant->retry_after_ms = lease->denied_until_ms - now_ms;
        grant->emergency = cnode->u.dcluster.emergency;
        rc = NGX_HTTP_TOLLGATE_LEASE_REJECT;
        break;

    default: /* TG_LEASE_MISS */
        ngx_memzero(grant, sizeof(tg_grant_t));
        zone->sh->l3_misses++;
        rc = NGX_HTTP_TOLLGATE_LEASE_WAIT;

        if (now_ms < d->retry_at_ms) {
            grant->layer = d->denied_layer ? (tg_layer_e) d->denied_layer
                                           : TG_LAYER_GUARANTEED;
            grant->retry_after_ms = d->retry_at_ms - now_ms;
            grant->emergency = cnode->u.dcluster.emergency;
            rc = NGX_HTTP_TOLLGATE_LEASE_REJECT;
            break;
        }

        /* from local-first on, and without Redis, nobody waits on it */

        if (level >= TG_LEVEL_LOCAL_FIRST
            || !ngx_http_tollgate_lease_ready(ctx))
        {
            local = 1;
            break;
        }

        if (!ctx->waiting) {
            ctx->waiting = 1;
            ctx->wait_until_ms = now_ms + (tg_msec_t) lcf->wait_ms;

        } else if (now_ms >= ctx->wait_until_ms) {
            local = 1;
        }

        break;
    }

    if (local) {
        local_rc = ngx_http_tollgate_local_locked(mcf, zone, cnode, d,
                                                  ctx->cost_tokens, now_ms,
                                                  grant);

        if (grant->granted_tokens == 0) {
            rc = NGX_HTTP_TOLLGATE_LEASE_REJECT;

        } else {
            rc = NGX_HTTP_TOLLGATE_LEASE_ALLOW;

            if (local_rc != NGX_OK) {
                why = (local_rc == NGX_BUSY)
                      ? NGX_HTTP_TOLLGATE_UNDECIDED_NOSHARE
                      : (mcf->fail_mode == NGX_HTTP_TOLLGATE_FAIL_OPEN)
                        ? NGX_HTTP_TOLLGATE_UNDECIDED_OPEN
                        : NGX_HTTP_TOLLGATE_UNDECIDED_NEW;

                ngx_http_tollgate_undecided_locked(ctx, why);
            }
        }
    }

    if (rc == NGX_HTTP_TOLLGATE_LEASE_ALLOW) {
        d->used_tokens = ngx_http_tollgate_add32(d->used_tokens,
                                                 ctx->cost_tokens);
        d->last_take_ms = (uint32_t) now_ms;
        anode->requests[NGX_HTTP_TOLLGATE_ALLOWED]++;
        anode->cost_tokens += ctx->cost_tokens;

        ctx->decision = NGX_HTTP_TOLLGATE_ALLOWED;
        ctx->layer = TG_LAYER_LOCAL;
        ctx->charged = 1;
    }

    if (rc == NGX_HTTP_TOLLGATE_LEASE_REJECT) {

        /* the quotas the refusal's RateLimit-Policy header names */

        ctx->capacity_tps = cnode->u.dcluster.capacity_tps
                            ? cnode->u.dcluster.capacity_tps
                            : ctx->cluster->conf.capacity_tps;
        ctx->guaranteed_tps = d->guaranteed_tps;
        ctx->burst_tps = d->burst_tps;
        ctx->max_borrow_tokens = d->max_borrow_tokens;

        zone->sh->refused[NGX_HTTP_TOLLGATE_REJECTED]++;
        anode->requests[lcf->dry_run ? NGX_HTTP_TOLLGATE_DRY_RUN
                                     : NGX_HTTP_TOLLGATE_REJECTED]++;
        ctx->decision = lcf->dry_run ? NGX_HTTP_TOLLGATE_DRY_RUN
                                     : NGX_HTTP_TOLLGATE_REJECTED;
        ctx->layer = grant->layer;
    }

    /*
     * Start a refill when the take asked for one, unless L2 refused a
     * moment ago or Redis is away: then the flag is dropped, and the
     * next take raises it again.
     */

    if (!was_inflight && lease->refill_inflight) {
        if (now_ms >= d->retry_at_ms && level < TG_LEVEL_FAIL_LOCAL
            && ngx_http_tollgate_lease_ready(ctx))
        {
            *min = 1;

            if (decision == TG_LEASE_MISS
                && lease->balance_tokens < (int64_t) ctx->cost_tokens)
            {
                *min = ctx->cost_tokens - ngx_max(lease->balance_tokens, 0);
            }

            *want = ngx_max(tg_lease_want(lease, lcp,
                                          d->known ? d->l2_remaining_tokens
                                                   : TG_TOKENS_MAX,
                                          cnode->u.dcluster.live_gateways),
                            *min);

            d->inflight_since_ms = (uint32_t) now_ms;

        } else {
            lease->refill_inflight = 0;
        }
    }

    if (++zone->sh->ops_since_sync == 1000) {
        sync_now = 1;
    }

    if (rc != NGX_HTTP_TOLLGATE_LEASE_WAIT) {
        ngx_http_tollgate_observe(zone->sh, &ctx->start);
    }

    ngx_http_tollgate_unlock(&zone->shpool->mutex);

    /* usage is reported every 100 ms, or every 1000 operations */

    if (sync_now) {
        ngx_http_tollgate_sync_soon();
    }

    return rc;
}


/*
 * The zone has no record to spare for this application: each holds a
 * lease, a report or a local share in use (Redis is behind, or the zone
 * is too small).  With nothing to decide on, the fail mode says what
 * happens, as when Redis cannot answer.  Called with the zone locked;
 * unlocks it.
 */

static ngx_http_tollgate_lease_rc_e
ngx_http_tollgate_lease_noroom(ngx_http_request_t *r,
    ngx_http_tollgate_loc_conf_t *lcf, ngx_http_tollgate_main_conf_t *mcf,
    ngx_http_tollgate_ctx_t *ctx, tg_grant_t *grant,
    ngx_http_tollgate_node_t *cnode)
{
    ngx_http_tollgate_zone_t  *zone;

    zone = ctx->zone;

    ngx_memzero(grant, sizeof(tg_grant_t));
    grant->layer = TG_LAYER_LOCAL;
    ctx->layer = TG_LAYER_LOCAL;

    if (mcf->fail_mode == NGX_HTTP_TOLLGATE_FAIL_CLOSED) {
        grant->retry_after_ms = 1000;

        /* the refusal's RateLimit-Policy names what is known: the pool */

        ctx->capacity_tps = (cnode != NULL && cnode->u.dcluster.capacity_tps)
                            ? cnode->u.dcluster.capacity_tps
                            : ctx->cluster->conf.capacity_tps;

        zone->sh->refused[NGX_HTTP_TOLLGATE_REJECTED]++;
        ctx->decision = lcf->dry_run ? NGX_HTTP_TOLLGATE_DRY_RUN
                                     : NGX_HTTP_TOLLGATE_REJECTED;

        ngx_http_tollgate_unlock(&zone->shpool->mutex);

        return NGX_HTTP_TOLLGATE_LEASE_REJECT;
    }

    ngx_http_tollgate_undecided_locked(ctx,
                                       NGX_HTTP_TOLLGATE_UNDECIDED_NOROOM);
    ctx->decision = NGX_HTTP_TOLLGATE_ALLOWED;

    ngx_http_tollgate_unlock(&zone->shpool->mutex);

    return NGX_HTTP_TOLLGATE_LEASE_ALLOW;
}


/*
 * Counts a request admitted without a decision and keeps what the log
 * will say of the last one (the sync timer's
 * ngx_http_tollgate_say_undecided()).  Zone locked.
 */

static void
ngx_http_tollgate_undecided_locked(ngx_http_tollgate_ctx_t *ctx,
    ngx_uint_t why)
{
    ngx_http_tollgate_shctx_t  *sh;

    sh = ctx->zone->sh;
    sh->fail_open++;

    sh->fail_open_app_len = (uint8_t) ngx_min(ctx->app.len,
                                              NGX_HTTP_TOLLGATE_ID_MAX);
    ngx_memcpy(sh->fail_open_app, ctx->app.data, sh->fail_open_app_len);

    sh->fail_open_cluster_len = (uint8_t) ngx_min(ctx->cluster->id.len,
                                                  NGX_HTTP_TOLLGATE_ID_MAX);
    ngx_memcpy(sh->fail_open_cluster, ctx->cluster->id.data,
               sh->fail_open_cluster_len);

    sh->fail_open_why = (uint8_t) why;
    sh->fail_open_level = (int8_t) ngx_http_tollgate_level();
}


static ngx_int_t
ngx_http_tollgate_lease_wait(ngx_http_request_t *r,
    ngx_http_tollgate_loc_conf_t *lcf, ngx_http_tollgate_ctx_t *ctx)
{
    ngx_event_t  *wev;

    /*
     * Polled rather than woken: the refill may arrive in another
     * worker, and a miss is rare once leases follow demand.
     */

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_tollgate_lease_wake;

    wev = r->connection->write;
    wev->delayed = 1;
    ngx_add_timer(wev, NGX_HTTP_TOLLGATE_POLL_MS);

    return NGX_AGAIN;
}


static void
ngx_http_tollgate_lease_wake(ngx_http_request_t *r)
{
    ngx_event_t  *wev;

    wev = r->connection->write;

    if (wev->delayed) {
        if (ngx_handle_write_event(wev, 0) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        return;
    }

    if (ngx_handle_read_event(r->connection->read, 0) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_core_run_phases(r);
}


/*
 * A body settled when its request ended: the excess is reported to L2 as debt
 * with the next report, a refund goes back into the lease.
 */

ngx_int_t
ngx_http_tollgate_lease_settle(ngx_http_request_t *r,
    ngx_http_tollgate_ctx_t *ctx, int64_t delta_tokens)
{
    tg_msec_t                  now_ms;
    ngx_http_tollgate_node_t  *anode;
    ngx_http_tollgate_zone_t  *zone;

    zone = ctx->zone;
    now_ms = (tg_msec_t) ngx_current_msec;

    ngx_http_tollgate_lock(&zone->shpool->mutex);

    anode = ngx_http_tollgate_node_by_id_locked(zone, ctx->cluster,
                                                &ctx->app, ctx->app_key,
                                                now_ms, r->connection->log);

    if (anode != NULL) {
        if (delta_tokens > 0) {
            anode->u.dapp.debt_tokens = ngx_http_tollgate_add32(
                                            anode->u.dapp.debt_tokens,
                                            (uint64_t) delta_tokens);

        } else {
            anode->u.dapp.lease.balance_tokens += -delta_tokens;
        }

        anode->cost_tokens += delta_tokens;
    }

    ngx_http_tollgate_unlock(&zone->shpool->mutex);

    return NGX_OK;
}
