/*
 * Copyright (C) Tollgate developers
 *
 * The tollgate_status (JSON) and tollgate_metrics (Prometheus text)
 * pages.  Both walk the zones under their mutex and write into a buffer
 * sized before the walk, so nothing is allocated while the lock is held.
 */


#include "ngx_http_tollgate_module.h"


/* the most one node can print, in either format */
#define NGX_HTTP_TOLLGATE_NODE_TEXT  2048


typedef struct {
    u_char                          *pos;
    u_char                          *last;
    ngx_http_tollgate_main_conf_t   *mcf;
    tg_msec_t                        now_ms;
} ngx_http_tollgate_out_t;


typedef void (*ngx_http_tollgate_node_pt)(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_node_t *tn,
    ngx_uint_t first);


static ngx_int_t ngx_http_tollgate_status(ngx_http_request_t *r,
    ngx_http_tollgate_out_t *out);
static ngx_int_t ngx_http_tollgate_metrics(ngx_http_request_t *r,
    ngx_http_tollgate_out_t *out);
static void ngx_http_tollgate_walk_locked(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone, ngx_uint_t clusters,
    ngx_http_tollgate_node_pt print);
static void ngx_http_tollgate_json_cluster(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_node_t *tn,
    ngx_uint_t first);
static void ngx_http_tollgate_json_app(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_node_t *tn,
    ngx_uint_t first);
static void ngx_http_tollgate_json_lease(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_node_t *tn, ngx_str_t *cluster_id, ngx_str_t *app_id,
    ngx_uint_t first);
static void ngx_http_tollgate_prom_redis(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone);
static void ngx_http_tollgate_prom_requests(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_node_t *tn,
    ngx_uint_t first);
static void ngx_http_tollgate_prom_cost(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_node_t *tn,
    ngx_uint_t first);
static void ngx_http_tollgate_prom_tokens(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_node_t *tn,
    ngx_uint_t first);
static void ngx_http_tollgate_prom_bound(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_node_t *tn,
    ngx_uint_t first);
static void ngx_http_tollgate_prom_cluster(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_node_t *tn,
    ngx_uint_t first);
static void ngx_http_tollgate_node_ids(ngx_http_tollgate_node_t *tn,
    ngx_str_t *cluster, ngx_str_t *app);
static int64_t ngx_http_tollgate_tokens(tg_mtok_t level_mtok);
static void ngx_http_tollgate_declared_locked(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone, ngx_log_t *log);
static void ngx_http_tollgate_refresh_locked(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_node_t *tn);


ngx_int_t
ngx_http_tollgate_report_handler(ngx_http_request_t *r)
{
    size_t                         size;
    ngx_int_t                      rc;
    ngx_uint_t                     i;
    ngx_buf_t                     *b;
    ngx_chain_t                    out_chain;
    ngx_shm_zone_t               **zones;
    ngx_http_tollgate_out_t        out;
    ngx_http_tollgate_zone_t      *zone;
    ngx_http_tollgate_loc_conf_t  *lcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_tollgate_module);

    out.mcf = ngx_http_get_module_main_conf(r, ngx_http_tollgate_module);
    out.now_ms = (tg_msec_t) ngx_current_msec;

    /*
     * Size the buffer from the node counts; nodes created between this
     * and the walk are left out rather than overflow it.
     */

    size = 8192;
    zones = out.mcf->zones.elts;

    for (i = 0; i < out.mcf->zones.nelts; i++) {
        zone = zones[i]->data;

        ngx_http_tollgate_lock(&zone->shpool->mutex);

        ngx_http_tollgate_declared_locked(&out, zone, r->connection->log);

        size += (zone->sh->apps + zone->sh->clusters + 1)
                * NGX_HTTP_TOLLGATE_NODE_TEXT;
        ngx_http_tollgate_unlock(&zone->shpool->mutex);
    }

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    out.pos = b->pos;
    out.last = b->end;

    if (lcf->handler == NGX_HTTP_TOLLGATE_HANDLER_STATUS) {
        rc = ngx_http_tollgate_status(r, &out);

    } else {
        rc = ngx_http_tollgate_metrics(r, &out);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    b->last = out.pos;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out_chain.buf = b;
    out_chain.next = NULL;

    return ngx_http_output_filter(r, &out_chain);
}


static ngx_int_t
ngx_http_tollgate_status(ngx_http_request_t *r, ngx_http_tollgate_out_t *out)
{
    ngx_uint_t                 i;
    ngx_shm_zone_t           **zones;
    ngx_http_tollgate_zone_t  *zone;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    out->pos = ngx_slprintf(out->pos, out->last,
                            "{\"mode\":\"%s\",\"gateway_id\":\"%V\","
                            "\"degradation_level\":%i,\"zones\":[",
                            out->mcf->distributed ? "distributed"
                                                  : "standalone",
                            &out->mcf->gateway_id,
                            ngx_http_tollgate_level());

    zones = out->mcf->zones.elts;

    for (i = 0; i < out->mcf->zones.nelts; i++) {
        zone = zones[i]->data;

        ngx_http_tollgate_lock(&zone->shpool->mutex);

        out->pos = ngx_slprintf(out->pos, out->last,
                                "%s{\"name\":\"%V\",\"app_count\":%ui,"
                                "\"evictions\":%uL,\"refused\":{"
                                "\"missing_app\":%uL,\"invalid_app\":%uL,"
                                "\"unknown_app\":%uL},\"clusters\":[",
                                i ? "," : "", &zone->name, zone->sh->apps,
                                (unsigned long long) zone->sh->evictions,
                                (unsigned long long) zone->sh->refused[
                                    NGX_HTTP_TOLLGATE_MISSING_APP],
                                (unsigned long long) zone->sh->refused[
                                    NGX_HTTP_TOLLGATE_INVALID_APP],
                                (unsigned long long) zone->sh->refused[
                                    NGX_HTTP_TOLLGATE_UNKNOWN_APP]);

        ngx_http_tollgate_walk_locked(out, zone, 1,
                                      ngx_http_tollgate_json_cluster);

        out->pos = ngx_slprintf(out->pos, out->last, "],\"apps\":[");

        ngx_http_tollgate_walk_locked(out, zone, 0,
                                      ngx_http_tollgate_json_app);

        ngx_http_tollgate_unlock(&zone->shpool->mutex);

        out->pos = ngx_slprintf(out->pos, out->last, "]}");
    }

    out->pos = ngx_slprintf(out->pos, out->last, "]}\n");

    return NGX_OK;
}


static void
ngx_http_tollgate_json_cluster(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_node_t *tn,
    ngx_uint_t first)
{
    ngx_str_t                     id, none;
    ngx_uint_t                    active, usage;
    tg_cluster_t                 *c;
    ngx_http_tollgate_cluster_t  *cluster;

    ngx_http_tollgate_node_ids(tn, &id, &none);

    if (zone->distributed) {
        out->pos = ngx_slprintf(out->pos, out->last,
                                "%s{\"cluster_id\":\"%V\","
                                "\"live_gateways\":%uD,"
                                "\"config_version\":%uL,"
                                "\"emergency\":%s}",
                                first ? "" : ",", &id,
                                tn->u.dcluster.live_gateways,
                                (unsigned long long)
                                    tn->u.dcluster.config_version,
                                tn->u.dcluster.emergency ? "true" : "false");
        return;
    }

    cluster = ngx_http_tollgate_find_cluster(out->mcf, &id);
    c = &tn->u.cluster;

    out->pos = ngx_slprintf(out->pos, out->last,
                            "%s{\"cluster_id\":\"%V\",\"tokens\":%L,"
                            "\"requests\":{\"allowed\":%uL,"
                            "\"rejected\":%uL,\"dry_run\":%uL},"
                            "\"cost_total\":%uL",
                            first ? "" : ",", &id,
                            (long long) ngx_http_tollgate_tokens(
                                c->pool.level_mtok),
                            (unsigned long long) tn->requests[0],
                            (unsigned long long) tn->requests[1],
                            (unsigned long long) tn->requests[2],
                            (unsigned long long) tn->cost_tokens);

    if (cluster != NULL) {
        active = tg_cluster_emergency_active(c, &cluster->conf,
                                             out->now_ms);
        usage = tg_cluster_usage_permille(c, &cluster->conf, out->now_ms);

        out->pos = ngx_slprintf(out->pos, out->last,
                                ",\"capacity\":%uL,\"reserved_ratio\":"
                                "%ui.%03ui,\"usage_percent\":%ui.%ui,"
                                "\"emergency\":%s,\"emergency_mode\":\"%s\"",
                                (unsigned long long)
                                    cluster->conf.capacity_tps,
                                (ngx_uint_t)
                                    cluster->conf.reserved_permille / 1000,
                                (ngx_uint_t)
                                    cluster->conf.reserved_permille % 1000,
                                usage / 10, usage % 10,
                                active ? "true" : "false",
                                c->emergency == TG_EMERGENCY_MANUAL
                                ? "manual"
                                : (c->emergency == TG_EMERGENCY_AUTO
                                   ? "auto" : "off"));
    }

    out->pos = ngx_slprintf(out->pos, out->last, "}");
}


static void
ngx_http_tollgate_json_app(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_node_t *tn,
    ngx_uint_t first)
{
    ngx_str_t                 cluster_id, app_id;
    tg_app_t                 *a;
    ngx_http_tollgate_app_t  *app;

    ngx_http_tollgate_node_ids(tn, &cluster_id, &app_id);

    if (zone->distributed) {
        ngx_http_tollgate_json_lease(out, tn, &cluster_id, &app_id, first);
        return;
    }

    app = ngx_http_tollgate_find_app(out->mcf, &app_id);
    a = &tn->u.sapp.app;

    out->pos = ngx_slprintf(out->pos, out->last,
                            "%s{\"app_id\":\"%V\",\"cluster_id\":\"%V\","
                            "\"tokens\":{\"guaranteed\":%L,\"burst\":%L,"
                            "\"batch\":%uL},"
                            "\"debt\":%L,\"requests\":{\"allowed\":%uL,"
                            "\"rejected\":%uL,\"dry_run\":%uL},"
                            "\"cost_total\":%uL",
                            first ? "" : ",", &app_id, &cluster_id,
                            (long long) ngx_http_tollgate_tokens(
                                a->guaranteed.level_mtok),
                            (long long) ngx_http_tollgate_tokens(
                                a->burst.level_mtok),
                            (unsigned long long) tn->u.sapp.batch_tokens,
                            (long long) (a->debt_mtok + TG_MTOK_PER_TOKEN - 1)
                                / TG_MTOK_PER_TOKEN,
                            (unsigned long long) tn->requests[0],
                            (unsigned long long) tn->requests[1],
                            (unsigned long long) tn->requests[2],
                            (unsigned long long) tn->cost_tokens);

    if (app != NULL) {
        out->pos = ngx_slprintf(out->pos, out->last,
                                ",\"guaranteed_quota\":%uL,"
                                "\"burst_quota\":%uL,\"priority\":%ui,"
                                "\"max_borrow\":%uL",
                                (unsigned long long)
                                    app->conf.guaranteed_tps,
                                (unsigned long long) app->conf.burst_tps,
                                (ngx_uint_t) app->conf.priority,
                                (unsigned long long)
                                    app->conf.max_borrow_tokens);
    }

    out->pos = ngx_slprintf(out->pos, out->last, "}");
}


static void
ngx_http_tollgate_json_lease(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_node_t *tn, ngx_str_t *cluster_id, ngx_str_t *app_id,
    ngx_uint_t first)
{
    ngx_http_tollgate_dapp_t  *d;

    d = &tn->u.dapp;

    out->pos = ngx_slprintf(out->pos, out->last,
                            "%s{\"app_id\":\"%V\",\"cluster_id\":\"%V\","
                            "\"known\":%s,\"lease\":{\"balance\":%L,"
                            "\"target\":%uL,\"refill_inflight\":%s},"
                            "\"l2_remaining\":%uL,"
                            "\"requests\":{\"allowed\":%uL,"
                            "\"rejected\":%uL,\"dry_run\":%uL},"
                            "\"cost_total\":%uL,\"guaranteed_quota\":%uL,"
                            "\"burst_quota\":%uL,\"priority\":%ui,"
                            "\"max_borrow\":%uL}",
                            first ? "" : ",", app_id, cluster_id,
                            d->known ? "true" : "false",
                            (long long) d->lease.balance_tokens,
                            (unsigned long long) d->lease.target_tokens,
                            d->lease.refill_inflight ? "true" : "false",
                            (unsigned long long) d->l2_remaining_tokens,
                            (unsigned long long) tn->requests[0],
                            (unsigned long long) tn->requests[1],
                            (unsigned long long) tn->requests[2],
                            (unsigned long long) tn->cost_tokens,
                            (unsigned long long) d->guaranteed_tps,
                            (unsigned long long) d->burst_tps,
                            (ngx_uint_t) d->priority,
                            (unsigned long long) d->max_borrow_tokens);
}


static ngx_int_t
ngx_http_tollgate_metrics(ngx_http_request_t *r, ngx_http_tollgate_out_t *out)
{
    uint64_t                   hist[NGX_HTTP_TOLLGATE_HIST_BUCKETS + 1];
    uint64_t                   refused[NGX_HTTP_TOLLGATE_DECISIONS];
    uint64_t                   sum_ns, count;
    ngx_uint_t                 i, z, family;
    ngx_shm_zone_t           **zones;
    ngx_http_tollgate_zone_t  *zone;

    static ngx_http_tollgate_node_pt  per_app[] = {
        ngx_http_tollgate_prom_requests,
        ngx_http_tollgate_prom_cost,
        ngx_http_tollgate_prom_tokens,
        ngx_http_tollgate_prom_bound
    };

    static const char  *headers[] = {
        "# HELP tollgate_requests_total Requests decided, by application "
        "and decision.\n# TYPE tollgate_requests_total counter\n",
        "# HELP tollgate_cost_total Cost tokens charged to admitted "
        "requests.\n# TYPE tollgate_cost_total counter\n",
        "# HELP tollgate_tokens Tokens available, by layer; the cluster "
        "pool has layer=\"cluster\".\n# TYPE tollgate_tokens gauge\n",
        "# HELP tollgate_overshoot_bound_tokens Tokens this gateway holds "
        "in leases (0 in standalone mode).\n"
        "# TYPE tollgate_overshoot_bound_tokens gauge\n"
    };

    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    zones = out->mcf->zones.elts;

    ngx_memzero(hist, sizeof(hist));
    ngx_memzero(refused, sizeof(refused));
    sum_ns = 0;

    for (family = 0; family < 4; family++) {
        out->pos = ngx_slprintf(out->pos, out->last, "%s", headers[family]);

        for (z = 0; z < out->mcf->zones.nelts; z++) {
            zone = zones[z]->data;

            ngx_http_tollgate_lock(&zone->shpool->mutex);

            if (family == 0) {
                for (i = 0; i < NGX_HTTP_TOLLGATE_DECISIONS; i++) {
                    refused[i] += zone->sh->refused[i];
                }

                for (i = 0; i <= NGX_HTTP_TOLLGATE_HIST_BUCKETS; i++) {
                    hist[i] += zone->sh->hist[i];
                }

                sum_ns += zone->sh->hist_sum_ns;
            }

            if (family == 2) {
                ngx_http_tollgate_walk_locked(out, zone, 1,
                                              ngx_http_tollgate_prom_tokens);
            }

            ngx_http_tollgate_walk_locked(out, zone, 0, per_app[family]);

            ngx_http_tollgate_unlock(&zone->shpool->mutex);
        }

        if (family == 0) {
            for (i = NGX_HTTP_TOLLGATE_MISSING_APP;
                 i < NGX_HTTP_TOLLGATE_DECISIONS;
                 i++)
            {
                out->pos = ngx_slprintf(out->pos, out->last,
                                        "tollgate_requests_total{cluster=\"\","
                                        "app=\"\",decision=\"%V\"} %uL\n",
                                        &ngx_http_tollgate_decision_names[i],
                                        (unsigned long long) refused[i]);
            }
        }
    }

    out->pos = ngx_slprintf(out->pos, out->last,
                            "# HELP tollgate_emergency_mode 1 while the "
                            "cluster is in emergency mode.\n"
                            "# TYPE tollgate_emergency_mode gauge\n");

    for (z = 0; z < out->mcf->zones.nelts; z++) {
        zone = zones[z]->data;

        ngx_http_tollgate_lock(&zone->shpool->mutex);
        ngx_http_tollgate_walk_locked(out, zone, 1,
                                      ngx_http_tollgate_prom_cluster);
        ngx_http_tollgate_unlock(&zone->shpool->mutex);
    }

    out->pos = ngx_slprintf(out->pos, out->last,
                            "# HELP tollgate_check_duration_seconds Time "
                            "spent deciding a request.\n"
                            "# TYPE tollgate_check_duration_seconds "
                            "histogram\n");

    count = 0;

    for (i = 0; i < NGX_HTTP_TOLLGATE_HIST_BUCKETS; i++) {
        count += hist[i];
        out->pos = ngx_slprintf(out->pos, out->last,
                                "tollgate_check_duration_seconds_bucket"
                                "{le=\"%uL.%06uL\"} %uL\n",
                                (unsigned long long)
                                    (ngx_http_tollgate_hist_bound_ns(i)
                                     / 1000000000),
                                (unsigned long long)
                                    (ngx_http_tollgate_hist_bound_ns(i)
                                     % 1000000000 / 1000),
                                (unsigned long long) count);
    }

    count += hist[NGX_HTTP_TOLLGATE_HIST_BUCKETS];

    out->pos = ngx_slprintf(out->pos, out->last,
                            "tollgate_check_duration_seconds_bucket"
                            "{le=\"+Inf\"} %uL\n"
                            "tollgate_check_duration_seconds_sum "
                            "%uL.%09uL\n"
                            "tollgate_check_duration_seconds_count %uL\n"
                            "# HELP tollgate_degradation_level Degradation "
                            "level, 0 (normal) to 3 (fail-local).\n"
                            "# TYPE tollgate_degradation_level gauge\n"
                            "tollgate_degradation_level %i\n"
                            "# HELP tollgate_fail_open_active 1 while "
                            "requests are admitted without a decision.\n"
                            "# TYPE tollgate_fail_open_active gauge\n"
                            "tollgate_fail_open_active %d\n",
                            (unsigned long long) count,
                            (unsigned long long) (sum_ns / 1000000000),
                            (unsigned long long) (sum_ns % 1000000000),
                            (unsigned long long) count,
                            ngx_http_tollgate_level(),
                            (ngx_http_tollgate_level() == TG_LEVEL_FAIL_LOCAL
                             && out->mcf->fail_mode
                                == NGX_HTTP_TOLLGATE_FAIL_OPEN) ? 1 : 0);

    out->pos = ngx_slprintf(out->pos, out->last,
                            "# HELP tollgate_zone_apps Applications with "
                            "state in the zone.\n"
                            "# TYPE tollgate_zone_apps gauge\n");

    for (z = 0; z < out->mcf->zones.nelts; z++) {
        zone = zones[z]->data;
        out->pos = ngx_slprintf(out->pos, out->last,
                                "tollgate_zone_apps{zone=\"%V\"} %ui\n",
                                &zone->name, zone->sh->apps);
    }

    out->pos = ngx_slprintf(out->pos, out->last,
                            "# HELP tollgate_zone_evictions_total "
                            "Applications evicted from a full zone.\n"
                            "# TYPE tollgate_zone_evictions_total counter\n");

    for (z = 0; z < out->mcf->zones.nelts; z++) {
        zone = zones[z]->data;
        out->pos = ngx_slprintf(out->pos, out->last,
                                "tollgate_zone_evictions_total{zone=\"%V\"} "
                                "%uL\n", &zone->name,
                                (unsigned long long) zone->sh->evictions);
    }

    if (out->mcf->distributed && out->mcf->zones.nelts) {
        ngx_http_tollgate_prom_redis(out, zones[0]->data);
    }

    return NGX_OK;
}


static void
ngx_http_tollgate_prom_redis(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone)
{
    uint64_t                          hits, misses, count;
    ngx_uint_t                        i, s, r;
    ngx_shm_zone_t                  **zones;
    ngx_http_tollgate_zone_t         *z;
    ngx_http_tollgate_redis_stats_t  *st;

    static const char  *results[] = { "ok", "error", "failed" };

    hits = 0;
    misses = 0;
    zones = out->mcf->zones.elts;

    for (i = 0; i < out->mcf->zones.nelts; i++) {
        z = zones[i]->data;
        hits += z->sh->l3_hits;
        misses += z->sh->l3_misses;
    }

    out->pos = ngx_slprintf(out->pos, out->last,
                            "# HELP tollgate_degradation_transitions_total "
                            "Changes of the degradation level.\n"
                            "# TYPE tollgate_degradation_transitions_total "
                            "counter\n"
                            "tollgate_degradation_transitions_total %uD\n"
                            "# HELP tollgate_fail_open_total Requests "
                            "admitted without a decision (fail mode open, "
                            "an application never heard of, a full zone).\n"
                            "# TYPE tollgate_fail_open_total counter\n"
                            "tollgate_fail_open_total %uL\n",
                            zone->sh->health.transitions,
                            (unsigned long long) zone->sh->fail_open);

    out->pos = ngx_slprintf(out->pos, out->last,
                            "# HELP tollgate_l3_hits_total Requests paid "
                            "from the gateway's lease.\n"
                            "# TYPE tollgate_l3_hits_total counter\n"
                            "tollgate_l3_hits_total %uL\n"
                            "# HELP tollgate_l3_misses_total Requests the "
                            "lease could not pay at once.\n"
                            "# TYPE tollgate_l3_misses_total counter\n"
                            "tollgate_l3_misses_total %uL\n"
                            "# HELP tollgate_redis_calls_total Redis calls, "
                            "by script and result.\n"
                            "# TYPE tollgate_redis_calls_total counter\n",
                            (unsigned long long) hits,
                            (unsigned long long) misses);

    st = &zone->sh->redis;

    for (s = 0; s <= NGX_HTTP_TOLLGATE_SCRIPTS; s++) {
        for (r = 0; r < NGX_HTTP_TOLLGATE_RESULTS; r++) {
            out->pos = ngx_slprintf(out->pos, out->last,
                                    "tollgate_redis_calls_total{script="
                                    "\"%s\",result=\"%s\"} %uA\n",
                                    ngx_http_tollgate_script_names[s],
                                    results[r], st->calls[s][r]);
        }
    }

    out->pos = ngx_slprintf(out->pos, out->last,
                            "# HELP tollgate_redis_latency_seconds Time "
                            "from sending a Redis call to its reply.\n"
                            "# TYPE tollgate_redis_latency_seconds "
                            "histogram\n");

    count = 0;

    for (i = 0; i < NGX_HTTP_TOLLGATE_LAT_BUCKETS; i++) {
        count += st->latency[i];
        out->pos = ngx_slprintf(out->pos, out->last,
                                "tollgate_redis_latency_seconds_bucket"
                                "{le=\"%M.%06M\"} %uL\n",
                                ngx_http_tollgate_redis_lat_bounds_us[i]
                                / 1000000,
                                ngx_http_tollgate_redis_lat_bounds_us[i]
                                % 1000000,
                                (unsigned long long) count);
    }

    count += st->latency[NGX_HTTP_TOLLGATE_LAT_BUCKETS];

    out->pos = ngx_slprintf(out->pos, out->last,
                            "tollgate_redis_latency_seconds_bucket"
                            "{le=\"+Inf\"} %uL\n"
                            "tollgate_redis_latency_seconds_sum %uA.%06uA\n"
                            "tollgate_redis_latency_seconds_count %uL\n",
                            (unsigned long long) count,
                            st->latency_sum_us / 1000000,
                            st->latency_sum_us % 1000000,
                            (unsigned long long) count);
}


static void
ngx_http_tollgate_prom_requests(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_node_t *tn,
    ngx_uint_t first)
{
    ngx_str_t   cluster_id, app_id;
    ngx_uint_t  i;

    ngx_http_tollgate_node_ids(tn, &cluster_id, &app_id);

    for (i = 0; i <= NGX_HTTP_TOLLGATE_DRY_RUN; i++) {
        out->pos = ngx_slprintf(out->pos, out->last,
                                "tollgate_requests_total{cluster=\"%V\","
                                "app=\"%V\",decision=\"%V\"} %uL\n",
                                &cluster_id, &app_id,
                                &ngx_http_tollgate_decision_names[i],
                                (unsigned long long) tn->requests[i]);
    }
}


static void
ngx_http_tollgate_prom_cost(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_node_t *tn,
    ngx_uint_t first)
{
    ngx_str_t  cluster_id, app_id;

    ngx_http_tollgate_node_ids(tn, &cluster_id, &app_id);

    out->pos = ngx_slprintf(out->pos, out->last,
                            "tollgate_cost_total{cluster=\"%V\",app=\"%V\"}"
                            " %uL\n", &cluster_id, &app_id,
                            (unsigned long long) tn->cost_tokens);
}


static void
ngx_http_tollgate_prom_tokens(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_node_t *tn,
    ngx_uint_t first)
{
    ngx_str_t  cluster_id, app_id;

    ngx_http_tollgate_node_ids(tn, &cluster_id, &app_id);

    if (zone->distributed) {
        if (!tn->is_cluster) {
            out->pos = ngx_slprintf(out->pos, out->last,
                                    "tollgate_tokens{cluster=\"%V\","
                                    "app=\"%V\",layer=\"local\"} %L\n",
                                    &cluster_id, &app_id,
                                    (long long)
                                        tn->u.dapp.lease.balance_tokens);
        }

        return;
    }

    if (tn->is_cluster) {
        out->pos = ngx_slprintf(out->pos, out->last,
                                "tollgate_tokens{cluster=\"%V\",app=\"\","
                                "layer=\"cluster\"} %L\n", &cluster_id,
                                (long long) ngx_http_tollgate_tokens(
                                    tn->u.cluster.pool.level_mtok));
        return;
    }

    out->pos = ngx_slprintf(out->pos, out->last,
                            "tollgate_tokens{cluster=\"%V\",app=\"%V\","
                            "layer=\"guaranteed\"} %L\n"
                            "tollgate_tokens{cluster=\"%V\",app=\"%V\","
                            "layer=\"burst\"} %L\n"
                            "tollgate_tokens{cluster=\"%V\",app=\"%V\","
                            "layer=\"debt\"} %L\n",
                            &cluster_id, &app_id,
                            (long long) ngx_http_tollgate_tokens(
                                tn->u.sapp.app.guaranteed.level_mtok),
                            &cluster_id, &app_id,
                            (long long) ngx_http_tollgate_tokens(
                                tn->u.sapp.app.burst.level_mtok),
                            &cluster_id, &app_id,
                            (long long) ngx_http_tollgate_tokens(
                                tn->u.sapp.app.debt_mtok));
}


static void
ngx_http_tollgate_prom_bound(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_node_t *tn,
    ngx_uint_t first)
{
    ngx_str_t  cluster_id, app_id;

    ngx_http_tollgate_node_ids(tn, &cluster_id, &app_id);

    /*
     * What this gateway holds in its lease may be spent here while other
     * gateways spend theirs: the live term of the over-admission bound.
     * Standalone mode holds no leases: every decision is exact.
     */

    out->pos = ngx_slprintf(out->pos, out->last,
                            "tollgate_overshoot_bound_tokens{cluster=\"%V\","
                            "app=\"%V\"} %L\n", &cluster_id, &app_id,
                            (long long) (zone->distributed
                                ? ngx_max(tn->u.dapp.lease.balance_tokens, 0)
                                : 0));
}


static void
ngx_http_tollgate_prom_cluster(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_node_t *tn,
    ngx_uint_t first)
{
    ngx_str_t                     cluster_id, none;
    ngx_uint_t                    active;
    ngx_http_tollgate_cluster_t  *cluster;

    ngx_http_tollgate_node_ids(tn, &cluster_id, &none);

    cluster = ngx_http_tollgate_find_cluster(out->mcf, &cluster_id);
    if (cluster == NULL) {
        return;
    }

    active = zone->distributed
             ? tn->u.dcluster.emergency
             : tg_cluster_emergency_active(&tn->u.cluster, &cluster->conf,
                                           out->now_ms);

    out->pos = ngx_slprintf(out->pos, out->last,
                            "tollgate_emergency_mode{cluster=\"%V\"} %ui\n",
                            &cluster_id, active);
}


/* calls print for each cluster node, or each application node */

static void
ngx_http_tollgate_walk_locked(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone, ngx_uint_t clusters,
    ngx_http_tollgate_node_pt print)
{
    ngx_uint_t                 first;
    ngx_rbtree_t              *tree;
    ngx_rbtree_node_t         *node;
    ngx_http_tollgate_node_t  *tn;

    tree = &zone->sh->rbtree;

    if (tree->root == tree->sentinel) {
        return;
    }

    first = 1;

    for (node = ngx_rbtree_min(tree->root, tree->sentinel);
         node != NULL;
         node = ngx_rbtree_next(tree, node))
    {
        tn = (ngx_http_tollgate_node_t *) &node->color;

        if (tn->is_cluster != clusters) {
            continue;
        }

        /* keep room for the closing brackets of the document */

        if (out->last - out->pos < NGX_HTTP_TOLLGATE_NODE_TEXT) {
            return;
        }

        ngx_http_tollgate_refresh_locked(out, tn);

        print(out, zone, tn, first);
        first = 0;
    }
}


/*
 * Declared clusters and applications have series from the start, so an
 * alert on an idle cluster sees a 0 rather than nothing.
 */

static void
ngx_http_tollgate_declared_locked(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_zone_t *zone, ngx_log_t *log)
{
    ngx_uint_t                     i;
    ngx_http_tollgate_app_t       *app;
    ngx_http_tollgate_cluster_t  **clusters;

    if (zone->distributed) {
        return;
    }

    clusters = out->mcf->clusters.elts;

    for (i = 0; i < out->mcf->clusters.nelts; i++) {
        (void) ngx_http_tollgate_node_locked(zone, clusters[i], NULL, 0,
                                             NULL, out->now_ms, log);
    }

    /*
     * Only free room takes the declared applications: a scrape must not
     * evict an application that is spending to show one that is idle.
     */

    zone->no_evict = 1;

    app = out->mcf->apps.elts;

    for (i = 0; i < out->mcf->apps.nelts; i++) {
        if (app[i].cluster == NULL) {
            continue;
        }

        if (ngx_http_tollgate_node_locked(zone, app[i].cluster, &app[i].id,
                                          app[i].hash, &app[i].conf,
                                          out->now_ms, log)
            == NULL)
        {
            break;
        }
    }

    zone->no_evict = 0;
}


/* brings balances up to now, so that a quiet application reads full */

static void
ngx_http_tollgate_refresh_locked(ngx_http_tollgate_out_t *out,
    ngx_http_tollgate_node_t *tn)
{
    ngx_str_t                     cluster_id, app_id;
    ngx_http_tollgate_app_t      *app;
    ngx_http_tollgate_cluster_t  *cluster;

    if (out->mcf->distributed) {
        return;
    }

    ngx_http_tollgate_node_ids(tn, &cluster_id, &app_id);

    if (!tn->is_cluster) {
        app = ngx_http_tollgate_find_app(out->mcf, &app_id);

        if (app != NULL) {
            tg_app_refill(&tn->u.sapp.app, &app->conf, out->now_ms);
        }

        return;
    }

    cluster = ngx_http_tollgate_find_cluster(out->mcf, &cluster_id);

    if (cluster != NULL) {
        (void) tg_bucket_refill(&tn->u.cluster.pool,
                                cluster->conf.capacity_tps,
                                (tg_mtok_t) cluster->conf.capacity_tps
                                * TG_MTOK_PER_TOKEN,
                                out->now_ms);
    }
}


static void
ngx_http_tollgate_node_ids(ngx_http_tollgate_node_t *tn, ngx_str_t *cluster,
    ngx_str_t *app)
{
    cluster->data = tn->key;
    cluster->len = tn->cluster_len;

    app->data = tn->key + tn->cluster_len;
    app->len = tn->app_len;
}


static int64_t
ngx_http_tollgate_tokens(tg_mtok_t level_mtok)
{
    /* whole tokens, rounded toward zero as the buckets hand them out */
    return level_mtok / TG_MTOK_PER_TOKEN;
}
