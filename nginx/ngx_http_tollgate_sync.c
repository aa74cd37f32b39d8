/*
 * Copyright (C) Tollgate developers
 *
 * Distributed mode, the Redis side: refills of leases (acquire), usage
 * reports and the return of idle tokens, the gateway heartbeat that
 * counts live gateways and notices configuration changes, and the
 * seeding of configuration declared in nginx.conf.
 *
 * Every worker runs the sync timer; the zone's next_sync_ms decides
 * which one does the work of a period, so a gateway syncs once per
 * period however many workers it has.
 *
 * Calls are what leases save, so the sync adds few of its own: a busy
 * gateway's heartbeat rides on the acquires it sends anyway, and the
 * degradation override is read when the admin announces a change of it
 * (and every few seconds in case an announcement was missed), not at
 * every beat.
 */


#include "ngx_http_tollgate_module.h"


#define NGX_HTTP_TOLLGATE_SYNC_MS        100
#define NGX_HTTP_TOLLGATE_HEARTBEAT_MS   1000
#define NGX_HTTP_TOLLGATE_BEAT_RIDE_MS   250
#define NGX_HTTP_TOLLGATE_OVERRIDE_MS    5000
#define NGX_HTTP_TOLLGATE_USAGE_MS       5000
#define NGX_HTTP_TOLLGATE_IDLE_MS        1000
#define NGX_HTTP_TOLLGATE_GATEWAY_TTL    "10000"
#define NGX_HTTP_TOLLGATE_REPORTS_MAX    256
#define NGX_HTTP_TOLLGATE_OPS_MAX        1000
#define NGX_HTTP_TOLLGATE_KEY_LEN        (NGX_HTTP_TOLLGATE_ID_MAX * 3 + 32)


/* what a reply handler needs to find its application again */

typedef struct {
    ngx_http_tollgate_zone_t       *zone;
    ngx_http_tollgate_cluster_t    *cluster;
    ngx_http_tollgate_main_conf_t  *mcf;
    uint64_t                        min_tokens;   /* of an acquire */
    ngx_uint_t                      beat;         /* it carried one */
    size_t                          app_len;
    u_char                          app[NGX_HTTP_TOLLGATE_ID_MAX];
} ngx_http_tollgate_call_t;


/* what a heartbeat sends besides the gateway id, alone or with an acquire */

typedef struct {
    ngx_str_t                       keys[3];      /* gateways, gw:G, version */
    ngx_str_t                       figures[4];   /* level, hits, counters */
    u_char                          key_bufs[3][NGX_HTTP_TOLLGATE_KEY_LEN];
    u_char                          num_bufs[4][NGX_INT64_LEN];
} ngx_http_tollgate_beat_t;


typedef struct {
    ngx_str_t                       app;
    u_char                          app_data[NGX_HTTP_TOLLGATE_ID_MAX];
    ngx_http_tollgate_cluster_t    *cluster;
    uint64_t                        seq;
    uint64_t                        used;
    uint64_t                        returned;
    uint64_t                        debt;
} ngx_http_tollgate_report_t;


static void ngx_http_tollgate_sync_handler(ngx_event_t *ev);
static ngx_uint_t ngx_http_tollgate_connected(
    ngx_http_tollgate_main_conf_t *mcf);
static void ngx_http_tollgate_say_undecided(ngx_http_tollgate_zone_t *zone,
    ngx_log_t *log);
static void ngx_http_tollgate_sync_zone(ngx_http_tollgate_main_conf_t *mcf,
    ngx_http_tollgate_zone_t *zone, ngx_uint_t *seeded);
static ngx_uint_t ngx_http_tollgate_collect_locked(
    ngx_http_tollgate_main_conf_t *mcf, ngx_http_tollgate_zone_t *zone,
    ngx_uint_t usage, ngx_http_tollgate_report_t *reports);
static void ngx_http_tollgate_heartbeat(ngx_http_tollgate_main_conf_t *mcf,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_cluster_t *cluster,
    tg_msec_t now_ms);
static void ngx_http_tollgate_beat_locked(ngx_http_tollgate_main_conf_t *mcf,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_cluster_t *cluster,
    ngx_http_tollgate_beat_t *beat);
static void ngx_http_tollgate_beat_seen_locked(ngx_http_tollgate_call_t *call,
    ngx_http_tollgate_node_t *cnode, redisReply *reply, size_t first);
static void ngx_http_tollgate_seed(ngx_http_tollgate_main_conf_t *mcf);
static void ngx_http_tollgate_on_acquire(redisReply *reply, void *data);
static void ngx_http_tollgate_on_report(redisReply *reply, void *data);
static void ngx_http_tollgate_on_heartbeat(redisReply *reply, void *data);
static void ngx_http_tollgate_on_seed(redisReply *reply, void *data);
static void ngx_http_tollgate_on_config(u_char *cluster_id, size_t len);
static void ngx_http_tollgate_read_capacity(ngx_http_tollgate_call_t *call);
static void ngx_http_tollgate_on_capacity(redisReply *reply, void *data);
static ngx_uint_t ngx_http_tollgate_declared(ngx_http_tollgate_call_t *call);
static ngx_http_tollgate_call_t *ngx_http_tollgate_call_create(
    ngx_http_tollgate_main_conf_t *mcf, ngx_http_tollgate_zone_t *zone,
    ngx_http_tollgate_cluster_t *cluster, ngx_str_t *app);
static ngx_http_tollgate_node_t *ngx_http_tollgate_call_node_locked(
    ngx_http_tollgate_call_t *call, ngx_uint_t cluster_node);
static void ngx_http_tollgate_key(ngx_str_t *key, u_char *buf,
    ngx_http_tollgate_cluster_t *cluster, const char *suffix, ngx_str_t *app);
static void ngx_http_tollgate_num(ngx_str_t *s, u_char *buf, uint64_t n);
static int64_t ngx_http_tollgate_reply_int(redisReply *reply, size_t i);
static uint32_t ngx_http_tollgate_reply_u32(redisReply *reply, size_t i);


static ngx_event_t                     ngx_http_tollgate_sync_ev;
static ngx_http_tollgate_main_conf_t  *ngx_http_tollgate_sync_mcf;
static ngx_msec_t                      ngx_http_tollgate_tick_ms;
static ngx_msec_t                      ngx_http_tollgate_seeded_ms;

/* this worker's start, and whether its Redis has answered since */
static ngx_msec_t                      ngx_http_tollgate_started_ms;
static ngx_uint_t                      ngx_http_tollgate_proven;


ngx_int_t
ngx_http_tollgate_sync_init(ngx_cycle_t *cycle)
{
    ngx_shm_zone_t                **zones;
    ngx_http_tollgate_zone_t       *zone;
    ngx_http_tollgate_main_conf_t  *mcf;

    if (ngx_get_conf(cycle->conf_ctx, ngx_http_module) == NULL) {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_tollgate_module);

    if (mcf == NULL || !mcf->distributed || mcf->zones.nelts == 0) {
        return NGX_OK;
    }

    /* the Redis counters live in the first zone, shared by the workers */

    zones = mcf->zones.elts;
    zone = zones[0]->data;

    if (ngx_http_tollgate_redis_init(cycle, &mcf->redis, &zone->sh->redis)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_tollgate_sync_mcf = mcf;
    ngx_http_tollgate_started_ms = ngx_current_msec;
    ngx_http_tollgate_proven = 0;
    ngx_http_tollgate_health_attach(zone);

    /* the admin announces each change: look at once, not at the beat */
    ngx_http_tollgate_redis_subscribe("tg:config",
                                      ngx_http_tollgate_on_config);

    ngx_http_tollgate_sync_ev.handler = ngx_http_tollgate_sync_handler;
    ngx_http_tollgate_sync_ev.log = cycle->log;
    ngx_http_tollgate_sync_ev.data = mcf;
    ngx_http_tollgate_sync_ev.cancelable = 1;

    ngx_add_timer(&ngx_http_tollgate_sync_ev, NGX_HTTP_TOLLGATE_SYNC_MS);

    return NGX_OK;
}


void
ngx_http_tollgate_sync_exit(ngx_cycle_t *cycle)
{
    if (ngx_http_tollgate_sync_ev.timer_set) {
        ngx_del_timer(&ngx_http_tollgate_sync_ev);
    }

    ngx_http_tollgate_redis_exit();
    ngx_http_tollgate_sync_mcf = NULL;
}


/*
 * Redis is reachable when every cluster's keys are: with Redis Cluster a
 * dead master cuts off its slots while the other nodes answer.
 */

ngx_uint_t
ngx_http_tollgate_reachable(ngx_http_tollgate_main_conf_t *mcf)
{
    ngx_uint_t                     i;
    ngx_http_tollgate_cluster_t  **clusters;

    if (!ngx_http_tollgate_redis_ready(NULL, 1)) {
        return 0;
    }

    clusters = mcf->clusters.elts;

    for (i = 0; i < mcf->clusters.nelts; i++) {
        if (!ngx_http_tollgate_redis_ready(&clusters[i]->id, 1)) {
            return 0;
        }
    }

    return 1;
}


/*
 * What the health judge is told.  A worker just started (or reloaded) is
 * still making its first connection: Redis is not called unreachable
 * before that attempt has failed or had the time to end (with Sentinel,
 * two rounds), or every start would put the gateway in fail-local for
 * the holds it takes to come back.
 */

static ngx_uint_t
ngx_http_tollgate_connected(ngx_http_tollgate_main_conf_t *mcf)
{
    ngx_msec_t  grace_ms;

    if (ngx_http_tollgate_reachable(mcf)) {
        ngx_http_tollgate_proven = 1;
        return 1;
    }

    if (ngx_http_tollgate_proven || ngx_http_tollgate_redis_failures) {
        return 0;
    }

    grace_ms = 2 * (mcf->redis.connect_timeout_ms + mcf->redis.timeout_ms);

    return ngx_current_msec - ngx_http_tollgate_started_ms < grace_ms;
}


/* the request path asks for an early sync after many operations */

void
ngx_http_tollgate_sync_soon(void)
{
    if (ngx_http_tollgate_sync_mcf != NULL
        && !ngx_http_tollgate_sync_ev.posted)
    {
        ngx_post_event(&ngx_http_tollgate_sync_ev, &ngx_posted_events);
    }
}


static void
ngx_http_tollgate_sync_handler(ngx_event_t *ev)
{
    ngx_uint_t                      i;
    ngx_shm_zone_t                **zones;
    ngx_http_tollgate_main_conf_t  *mcf;

    /* the connection count seeded last: a fresh connection seeds again */
    static ngx_uint_t               seeded;

    mcf = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (ngx_current_msec - ngx_http_tollgate_tick_ms
        >= NGX_HTTP_TOLLGATE_HEARTBEAT_MS)
    {
        ngx_http_tollgate_tick_ms = ngx_current_msec;
        ngx_http_tollgate_redis_tick();
    }

    /*
     * Every worker judges the degradation at its tick, by its own
     * connection: one whose connection is down holds the gateway at
     * level 3 even while another's sits idle and looks well in front of
     * a frozen Redis.
     */

    ngx_http_tollgate_health_evaluate(mcf, ngx_http_tollgate_connected(mcf));

    zones = mcf->zones.elts;

    for (i = 0; i < mcf->zones.nelts; i++) {
        ngx_http_tollgate_sync_zone(mcf, zones[i]->data, &seeded);
        ngx_http_tollgate_say_undecided(zones[i]->data, ev->log);
    }

    if (!ngx_http_tollgate_sync_ev.timer_set) {
        ngx_add_timer(&ngx_http_tollgate_sync_ev, NGX_HTTP_TOLLGATE_SYNC_MS);
    }
}


/*
 * Says how many requests the zone admitted without a decision since it
 * last did, at most once a second, naming the last of them: one line
 * each would flood the log in an outage, and the request path is no
 * place to write it.  Whichever worker's tick comes first says it.
 */

static void
ngx_http_tollgate_say_undecided(ngx_http_tollgate_zone_t *zone,
    ngx_log_t *log)
{
    size_t                      app_len, cluster_len;
    uint64_t                    undecided;
    tg_msec_t                   now_ms;
    ngx_uint_t                  why;
    ngx_int_t                   level;
    ngx_http_tollgate_shctx_t  *sh;
    u_char                      app[NGX_HTTP_TOLLGATE_ID_MAX];
    u_char                      cluster[NGX_HTTP_TOLLGATE_ID_MAX];

    static const char  *whys[] = {
        "fail mode open",
        "no quota known for it yet",
        "no room in the zone for its local share",
        "no room in the zone for it, every record is in use"
    };

    sh = zone->sh;
    now_ms = (tg_msec_t) ngx_current_msec;

    /* read without the lock first: most ticks have nothing to say */

    if (sh->fail_open == sh->fail_open_said
        || now_ms - sh->fail_open_said_ms < 1000)
    {
        return;
    }

    ngx_http_tollgate_lock(&zone->shpool->mutex);

    /* again under the lock: another worker's tick may have said it */

    if (now_ms - sh->fail_open_said_ms < 1000) {
        ngx_http_tollgate_unlock(&zone->shpool->mutex);
        return;
    }

    undecided = sh->fail_open - sh->fail_open_said;
    sh->fail_open_said = sh->fail_open;
    sh->fail_open_said_ms = now_ms;

    app_len = sh->fail_open_app_len;
    ngx_memcpy(app, sh->fail_open_app, app_len);
    cluster_len = sh->fail_open_cluster_len;
    ngx_memcpy(cluster, sh->fail_open_cluster, cluster_len);
    why = ngx_min(sh->fail_open_why, sizeof(whys) / sizeof(whys[0]) - 1);
    level = sh->fail_open_level;

    ngx_http_tollgate_unlock(&zone->shpool->mutex);

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "tollgate admitted %uL requests without a decision in "
                  "zone \"%V\" since the last such line, the last of app "
                  "\"%*s\" in cluster \"%*s\" at level %i: %s", undecided,
                  &zone->name, app_len, app, cluster_len, cluster, level,
                  whys[why]);
}


static void
ngx_http_tollgate_sync_zone(ngx_http_tollgate_main_conf_t *mcf,
    ngx_http_tollgate_zone_t *zone, ngx_uint_t *seeded)
{
    u_char                        nums[4][NGX_INT64_LEN];
    ngx_str_t                     argv[10];
    ngx_uint_t                    i, n, heartbeat, usage, override;
    tg_msec_t                     now_ms;
    ngx_http_tollgate_call_t     *call;
    ngx_http_tollgate_cluster_t  *cluster, **clusters;
    u_char                        keys[5][NGX_HTTP_TOLLGATE_KEY_LEN];

    static ngx_http_tollgate_report_t  reports[NGX_HTTP_TOLLGATE_REPORTS_MAX];

    now_ms = (tg_msec_t) ngx_current_msec;

    ngx_http_tollgate_lock(&zone->shpool->mutex);

    if (now_ms < zone->sh->next_sync_ms
        && zone->sh->ops_since_sync < NGX_HTTP_TOLLGATE_OPS_MAX)
    {
        ngx_http_tollgate_unlock(&zone->shpool->mutex);
        return;
    }

    /* this worker does the period's work; the others skip it */

    zone->sh->next_sync_ms = now_ms + NGX_HTTP_TOLLGATE_SYNC_MS;
    zone->sh->ops_since_sync = 0;

    /* time to look for clusters due a heartbeat of their own */

    heartbeat = now_ms >= zone->sh->next_heartbeat_ms;
    if (heartbeat) {
        zone->sh->next_heartbeat_ms = now_ms + NGX_HTTP_TOLLGATE_HEARTBEAT_MS;
    }

    /*
     * The admin announces an override ("*" on tg:config); the slow poll
     * is for an announcement this gateway missed, its subscriber being
     * away at the time.
     */

    override = now_ms >= zone->sh->next_override_ms;
    if (override) {
        zone->sh->next_override_ms = now_ms + NGX_HTTP_TOLLGATE_OVERRIDE_MS;
    }

    /*
     * Plain usage is only counted in Redis (L2 was charged when the lease
     * was granted), so it goes every few seconds: each report is a call,
     * and calls are what leases are there to save.
     */

    usage = now_ms >= zone->sh->next_usage_ms;
    if (usage) {
        zone->sh->next_usage_ms = now_ms + NGX_HTTP_TOLLGATE_USAGE_MS;
    }

    n = ngx_http_tollgate_collect_locked(mcf, zone, usage, reports);

    ngx_http_tollgate_unlock(&zone->shpool->mutex);

    /* Redis may have restarted empty: seed again after each reconnect */

    if (*seeded != ngx_http_tollgate_redis_connects
        && ngx_http_tollgate_redis_ready(NULL, 1))
    {
        *seeded = ngx_http_tollgate_redis_connects;
        ngx_http_tollgate_seed(mcf);

        /* announcements made while disconnected were lost */
        override = 1;
    }

    /* one call per application with news, pipelined on one connection */

    for (i = 0; i < n; i++) {
        call = ngx_http_tollgate_call_create(mcf, zone, reports[i].cluster,
                                             &reports[i].app);
        if (call == NULL) {
            continue;
        }

        cluster = reports[i].cluster;

        ngx_http_tollgate_key(&argv[0], keys[0], cluster, "cluster", NULL);
        ngx_http_tollgate_key(&argv[1], keys[1], cluster, "app:",
                              &reports[i].app);
        ngx_http_tollgate_key(&argv[2], keys[2], cluster, "pool", NULL);
        ngx_http_tollgate_key(&argv[3], keys[3], cluster, "state:",
                              &reports[i].app);
        ngx_http_tollgate_key(&argv[4], keys[4], cluster, "rep:",
                              &mcf->gateway_id);

        argv[5] = mcf->gateway_id;
        ngx_http_tollgate_num(&argv[6], nums[0], reports[i].seq);
        ngx_http_tollgate_num(&argv[7], nums[1], reports[i].used);
        ngx_http_tollgate_num(&argv[8], nums[2], reports[i].returned);
        ngx_http_tollgate_num(&argv[9], nums[3], reports[i].debt);

        if (ngx_http_tollgate_redis_call(NGX_HTTP_TOLLGATE_SCRIPT_REPORT,
                                         &cluster->id, 5, 10, argv,
                                         ngx_http_tollgate_on_report, call)
            != NGX_OK)
        {
            ngx_http_tollgate_on_report(NULL, call);
        }
    }

    if (override) {
        ngx_http_tollgate_read_override(mcf);
    }

    if (!heartbeat) {
        return;
    }

    /* the heartbeat doubles as the probe that sees Redis come back */

    clusters = mcf->clusters.elts;

    for (i = 0; i < mcf->clusters.nelts; i++) {
        ngx_http_tollgate_heartbeat(mcf, zone, clusters[i], now_ms);
    }
}


/*
 * Picks what to report: debt and returned tokens at once, plain usage
 * every NGX_HTTP_TOLLGATE_USAGE_MS.  An application whose lease sat
 * idle gives its tokens back, so they are not stranded in this gateway.
 * A report that failed is sent again unchanged, under the same sequence
 * number, so that Redis counts it once whether or not the first one
 * arrived.
 */

static ngx_uint_t
ngx_http_tollgate_collect_locked(ngx_http_tollgate_main_conf_t *mcf,
    ngx_http_tollgate_zone_t *zone, ngx_uint_t usage,
    ngx_http_tollgate_report_t *reports)
{
    ngx_str_t                     cluster_id;
    ngx_uint_t                    n, full;
    ngx_queue_t                  *q;
    tg_msec_t                     now_ms;
    ngx_http_tollgate_dapp_t     *d;
    ngx_http_tollgate_node_t     *tn;
    ngx_http_tollgate_dextra_t   *x;
    ngx_http_tollgate_report_t   *rep;

    n = 0;
    now_ms = (tg_msec_t) ngx_current_msec;

    /*
     * The LRU list runs from the most recently used.  Most periods walk
     * it only while entries were used in the last two seconds, which
     * covers every lease that may fall idle and every fresh debt; once
     * a second, or while usage is due, the whole list, so that a report
     * that failed on an older entry is sent again.
     */

    full = usage || now_ms >= zone->sh->next_full_walk_ms;
    if (full) {
        zone->sh->next_full_walk_ms = now_ms + NGX_HTTP_TOLLGATE_IDLE_MS;
    }

    for (q = ngx_queue_head(&zone->sh->lru);
         q != ngx_queue_sentinel(&zone->sh->lru)
         && n < NGX_HTTP_TOLLGATE_REPORTS_MAX;
         q = ngx_queue_next(q))
    {
        tn = ngx_queue_data(q, ngx_http_tollgate_node_t, queue);
        d = &tn->u.dapp;

        if (!full
            && (uint32_t) ((uint32_t) now_ms - tn->last_ms)
               > 2 * NGX_HTTP_TOLLGATE_IDLE_MS)
        {
            break;
        }

        if (d->reporting || !d->known) {
            continue;
        }

        if ((uint32_t) ((uint32_t) now_ms - d->last_take_ms)
            >= NGX_HTTP_TOLLGATE_IDLE_MS
            && d->lease.balance_tokens > 0 && !d->lease.refill_inflight)
        {
            d->returned_tokens = ngx_http_tollgate_add32(
                                     d->returned_tokens,
                                     (uint64_t) d->lease.balance_tokens);
            d->lease.balance_tokens = 0;
        }

        x = ngx_http_tollgate_dextra(zone, d);

        if (x == NULL || (x->report_used == 0 && x->report_returned == 0
                          && x->report_debt == 0))
        {
            if (d->debt_tokens == 0 && d->returned_tokens == 0
                && !(usage && d->used_tokens))
            {
                continue;
            }

            /*
             * No room for the report now: it waits for the next period,
             * once replies free what earlier reports took.  Nothing is
             * evicted for it: this walk is on the list eviction cuts.
             */

            x = ngx_http_tollgate_dextra_get_locked(zone, d, 0);
            if (x == NULL) {
                continue;
            }

            d->report_seq++;
            x->report_used = d->used_tokens;
            x->report_returned = d->returned_tokens;
            x->report_debt = d->debt_tokens;
            d->used_tokens = 0;
            d->returned_tokens = 0;
            d->debt_tokens = 0;
        }

        cluster_id.data = tn->key;
        cluster_id.len = tn->cluster_len;

        rep = &reports[n];

        rep->cluster = ngx_http_tollgate_find_cluster(mcf, &cluster_id);
        if (rep->cluster == NULL) {
            continue;
        }

        rep->app.data = rep->app_data;
        rep->app.len = tn->app_len;
        ngx_memcpy(rep->app_data, tn->key + tn->cluster_len, tn->app_len);

        rep->seq = d->report_seq;
        rep->used = x->report_used;
        rep->returned = x->report_returned;
        rep->debt = x->report_debt;

        d->reporting = 1;
        n++;
    }

    return n;
}


/*
 * A heartbeat of its own, for a cluster no call has carried one to for
 * NGX_HTTP_TOLLGATE_HEARTBEAT_MS: a gateway with little traffic there,
 * or a change announced.
 */

static void
ngx_http_tollgate_heartbeat(ngx_http_tollgate_main_conf_t *mcf,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_cluster_t *cluster,
    tg_msec_t now_ms)
{
    ngx_str_t                  argv[11];
    tg_msec_t                  due_ms;
    ngx_http_tollgate_beat_t   beat;
    ngx_http_tollgate_call_t  *call;
    ngx_http_tollgate_node_t  *cnode;
    u_char                     key[NGX_HTTP_TOLLGATE_KEY_LEN];

    ngx_http_tollgate_lock(&zone->shpool->mutex);

    cnode = ngx_http_tollgate_cluster_node_locked(zone, cluster, now_ms,
                                                  ngx_cycle->log);
    if (cnode == NULL) {
        ngx_http_tollgate_unlock(&zone->shpool->mutex);
        return;
    }

    due_ms = cnode->u.dcluster.beat_ms + NGX_HTTP_TOLLGATE_HEARTBEAT_MS;

    if (now_ms < due_ms) {
        if (due_ms < zone->sh->next_heartbeat_ms) {
            zone->sh->next_heartbeat_ms = due_ms;
        }

        ngx_http_tollgate_unlock(&zone->shpool->mutex);
        return;
    }

    cnode->u.dcluster.beat_ms = now_ms;
    ngx_http_tollgate_beat_locked(mcf, zone, cluster, &beat);

    ngx_http_tollgate_unlock(&zone->shpool->mutex);

    call = ngx_http_tollgate_call_create(mcf, zone, cluster, NULL);
    if (call == NULL) {
        return;
    }

    argv[0] = beat.keys[0];
    argv[1] = beat.keys[1];
    argv[2] = beat.keys[2];
    ngx_http_tollgate_key(&argv[3], key, cluster, "emergency", NULL);

    argv[4] = mcf->gateway_id;
    ngx_memcpy(&argv[5], beat.figures, sizeof(beat.figures));
    ngx_str_set(&argv[9], "");
    ngx_str_set(&argv[10], NGX_HTTP_TOLLGATE_GATEWAY_TTL);

    if (ngx_http_tollgate_redis_call(NGX_HTTP_TOLLGATE_SCRIPT_HEARTBEAT,
                                     &cluster->id, 4, 11, argv,
                                     ngx_http_tollgate_on_heartbeat, call)
        != NGX_OK)
    {
        ngx_free(call);
    }
}


/*
 * The heartbeat's keys and the figures it reports, from the zone's
 * counters; the strings point into *beat.
 */

static void
ngx_http_tollgate_beat_locked(ngx_http_tollgate_main_conf_t *mcf,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_cluster_t *cluster,
    ngx_http_tollgate_beat_t *beat)
{
    uint64_t  hits, total;

    ngx_http_tollgate_key(&beat->keys[0], beat->key_bufs[0], cluster,
                          "gateways", NULL);
    ngx_http_tollgate_key(&beat->keys[1], beat->key_bufs[1], cluster, "gw:",
                          &mcf->gateway_id);
    ngx_http_tollgate_key(&beat->keys[2], beat->key_bufs[2], cluster,
                          "version", NULL);

    hits = zone->sh->l3_hits;
    total = hits + zone->sh->l3_misses;

    ngx_http_tollgate_num(&beat->figures[0], beat->num_bufs[0],
                          (uint64_t) ngx_http_tollgate_level());
    ngx_http_tollgate_num(&beat->figures[1], beat->num_bufs[1],
                          total ? hits * 1000 / total : 1000);

    /* every decision, refusals from a cached denial included */
    ngx_http_tollgate_num(&beat->figures[2], beat->num_bufs[2],
                          zone->sh->decisions);
    ngx_http_tollgate_num(&beat->figures[3], beat->num_bufs[3],
                          zone->sh->refused[NGX_HTTP_TOLLGATE_REJECTED]);
}


/* configuration as code: nginx.conf seeds what Redis does not have */

static void
ngx_http_tollgate_seed(ngx_http_tollgate_main_conf_t *mcf)
{
    u_char                        nums[6][NGX_INT64_LEN];
    ngx_str_t                     argv[16], none;
    ngx_uint_t                    i, j;
    ngx_http_tollgate_app_t      *app;
    ngx_http_tollgate_cluster_t  *cluster, **clusters;
    u_char                        keys[4][NGX_HTTP_TOLLGATE_KEY_LEN];
    u_char                        ratio[16];

    ngx_str_null(&none);

    clusters = mcf->clusters.elts;
    app = mcf->apps.elts;

    for (i = 0; i < mcf->clusters.nelts; i++) {
        cluster = clusters[i];

        if (!cluster->declared) {
            continue;
        }

        /*
         * KEYS: cluster, app (a key of the same slot and no app id when
         * only the cluster is seeded), apps, version; ARGV: capacity,
         * reserved_ratio, window_ms, version, then the application:
         * app_id, cluster_id, guaranteed, burst, priority, max_borrow,
         * cost_profile, version.  Seeds carry version 0, so that any
         * write by the admin replaces them.
         */

        ngx_http_tollgate_key(&argv[0], keys[0], cluster, "cluster", NULL);
        ngx_http_tollgate_key(&argv[1], keys[1], cluster, "app:", NULL);
        ngx_http_tollgate_key(&argv[2], keys[2], cluster, "apps", NULL);
        ngx_http_tollgate_key(&argv[3], keys[3], cluster, "version", NULL);

        ngx_http_tollgate_num(&argv[4], nums[0], cluster->conf.capacity_tps);
        argv[5].data = ratio;
        argv[5].len = ngx_sprintf(ratio, "%ui.%03ui",
                                  (ngx_uint_t) cluster->conf
                                      .reserved_permille / 1000,
                                  (ngx_uint_t) cluster->conf
                                      .reserved_permille % 1000)
                      - ratio;
        ngx_http_tollgate_num(&argv[6], nums[1],
                              (uint64_t) cluster->conf.window_ms);
        ngx_str_set(&argv[7], "0");

        argv[8] = none;
        argv[9] = cluster->id;

        for (j = 10; j < 15; j++) {
            argv[j] = none;
        }

        ngx_str_set(&argv[15], "0");

        if (ngx_http_tollgate_redis_call(NGX_HTTP_TOLLGATE_SCRIPT_SEED,
                                         &cluster->id, 4, 16, argv,
                                         ngx_http_tollgate_on_seed, NULL)
            != NGX_OK)
        {
            return;
        }

        for (j = 0; j < mcf->apps.nelts; j++) {
            if (app[j].cluster != cluster) {
                continue;
            }

            ngx_http_tollgate_key(&argv[1], keys[1], cluster, "app:",
                                  &app[j].id);

            argv[8] = app[j].id;
            ngx_http_tollgate_num(&argv[10], nums[2],
                                  app[j].conf.guaranteed_tps);
            ngx_http_tollgate_num(&argv[11], nums[3], app[j].conf.burst_tps);
            ngx_http_tollgate_num(&argv[12], nums[4], app[j].conf.priority);
            ngx_http_tollgate_num(&argv[13], nums[5],
                                  app[j].conf.max_borrow_tokens);

            if (app[j].profile) {
                argv[14] = app[j].profile->name;

            } else {
                ngx_str_set(&argv[14], "standard");
            }

            if (ngx_http_tollgate_redis_call(NGX_HTTP_TOLLGATE_SCRIPT_SEED,
                                             &cluster->id, 4, 16, argv,
                                             ngx_http_tollgate_on_seed, NULL)
                != NGX_OK)
            {
                return;
            }
        }
    }
}


void
ngx_http_tollgate_acquire(ngx_http_tollgate_zone_t *zone,
    ngx_http_tollgate_cluster_t *cluster, ngx_str_t *app_id,
    uint64_t want_tokens, uint64_t min_tokens)
{
    u_char                          nums[2][NGX_INT64_LEN];
    ngx_str_t                       argv[18];
    tg_msec_t                       now_ms;
    ngx_uint_t                      nkeys, argc;
    ngx_http_tollgate_beat_t        beat;
    ngx_http_tollgate_call_t       *call;
    ngx_http_tollgate_node_t       *cnode;
    ngx_http_tollgate_main_conf_t  *mcf;
    u_char                          keys[6][NGX_HTTP_TOLLGATE_KEY_LEN];

    mcf = ngx_http_tollgate_sync_mcf;

    call = ngx_http_tollgate_call_create(mcf, zone, cluster, app_id);
    if (call == NULL) {
        ngx_http_tollgate_on_acquire(NULL, NULL);
        return;
    }

    /*
     * The heartbeat rides along once a quarter of its period has passed:
     * with refills less than 750 ms apart, the last beat is never a
     * period old, so the cluster needs no heartbeat of its own, and a
     * ride costs Redis a few writes, not a call.
     */

    now_ms = (tg_msec_t) ngx_current_msec;

    ngx_http_tollgate_lock(&zone->shpool->mutex);

    cnode = ngx_http_tollgate_cluster_node_locked(zone, cluster, now_ms,
                                                  ngx_cycle->log);

    if (cnode != NULL
        && now_ms - cnode->u.dcluster.beat_ms
           >= NGX_HTTP_TOLLGATE_BEAT_RIDE_MS)
    {
        cnode->u.dcluster.beat_ms = now_ms;
        ngx_http_tollgate_beat_locked(mcf, zone, cluster, &beat);
        call->beat = 1;
    }

    ngx_http_tollgate_unlock(&zone->shpool->mutex);

    ngx_http_tollgate_key(&argv[0], keys[0], cluster, "cluster", NULL);
    ngx_http_tollgate_key(&argv[1], keys[1], cluster, "app:", app_id);
    ngx_http_tollgate_key(&argv[2], keys[2], cluster, "pool", NULL);
    ngx_http_tollgate_key(&argv[3], keys[3], cluster, "state:", app_id);
    ngx_http_tollgate_key(&argv[4], keys[4], cluster, "emergency", NULL);
    ngx_http_tollgate_key(&argv[5], keys[5], cluster, "events", NULL);

    call->min_tokens = min_tokens;
    nkeys = 6;

    if (call->beat) {
        ngx_memcpy(&argv[6], beat.keys, sizeof(beat.keys));
        nkeys = 9;
    }

    ngx_http_tollgate_num(&argv[nkeys], nums[0], want_tokens);
    ngx_http_tollgate_num(&argv[nkeys + 1], nums[1], min_tokens);
    ngx_str_set(&argv[nkeys + 2], "");
    argv[nkeys + 3] = mcf->gateway_id;
    argc = nkeys + 4;

    if (call->beat) {
        ngx_memcpy(&argv[argc], beat.figures, sizeof(beat.figures));
        ngx_str_set(&argv[argc + 4], NGX_HTTP_TOLLGATE_GATEWAY_TTL);
        argc += 5;
    }

    if (ngx_http_tollgate_redis_call(NGX_HTTP_TOLLGATE_SCRIPT_ACQUIRE,
                                     &cluster->id, nkeys, argc, argv,
                                     ngx_http_tollgate_on_acquire, call)
        != NGX_OK)
    {
        ngx_http_tollgate_on_acquire(NULL, call);
    }
}


/*
 * The reply of acquire: {code, granted, layer, retry_after_ms,
 * remaining_tokens, emergency, guaranteed, burst, priority, max_borrow,
 * cost_profile, version}, then the heartbeat's reply when it carried
 * one; code 1 is an unknown application, 2 an unknown cluster.
 */

static void
ngx_http_tollgate_on_acquire(redisReply *reply, void *data)
{
    int64_t                        code, granted, retry_ms;
    ngx_str_t                      profile;
    ngx_uint_t                     i;
    tg_msec_t                      now_ms;
    ngx_http_tollgate_dapp_t      *d;
    ngx_http_tollgate_node_t      *cnode, *anode;
    ngx_http_tollgate_call_t      *call;
    ngx_http_tollgate_profile_t   *p;

    call = data;
    if (call == NULL) {
        return;
    }

    now_ms = (tg_msec_t) ngx_current_msec;

    ngx_http_tollgate_lock(&call->zone->shpool->mutex);

    cnode = ngx_http_tollgate_call_node_locked(call, 1);
    anode = ngx_http_tollgate_call_node_locked(call, 0);

    if (cnode == NULL || anode == NULL) {
        goto done;
    }

    d = &anode->u.dapp;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 12)
    {
        /* Redis failed: nothing granted, the next take asks again */
        d->lease.refill_inflight = 0;
        goto done;
    }

    /* first, so that a new version returns leases before this grant */

    if (call->beat && reply->elements >= 15) {
        ngx_http_tollgate_beat_seen_locked(call, cnode, reply, 12);
    }

    code = ngx_http_tollgate_reply_int(reply, 0);

    if (code != 0
        && (ngx_http_tollgate_declared(call)
            || (code == 2 && call->cluster->declared)))
    {
        /*
         * nginx.conf declares it (the application, or the cluster Redis
         * says it lacks): Redis has not been seeded yet (it started
         * empty, or the seed is still on its way, or the first acquires
         * went out before it).  Seeding on this connection comes before
         * the next acquire; the application is not told unknown.
         */

        d->lease.refill_inflight = 0;
        ngx_http_tollgate_unlock(&call->zone->shpool->mutex);

        /* at most twice a second: a seed writes every declared app */

        if (ngx_current_msec - ngx_http_tollgate_seeded_ms >= 500) {
            ngx_http_tollgate_seeded_ms = ngx_current_msec;
            ngx_http_tollgate_seed(call->mcf);
        }

        ngx_free(call);
        return;
    }

    if (code != 0) {
        if (!d->unknown) {
            if (code == 1) {
                ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                              "tollgate: redis has no app \"%*s\" in "
                              "cluster \"%V\"", call->app_len, call->app,
                              &call->cluster->id);

            } else {
                ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                              "tollgate: redis has no cluster \"%V\" "
                              "(asked for app \"%*s\")",
                              &call->cluster->id, call->app_len, call->app);
            }
        }

        d->unknown = 1;
        d->unknown_until_ms = now_ms + 1000;
        d->lease.refill_inflight = 0;
        goto done;
    }

    d->unknown = 0;
    d->known = 1;

    granted = ngx_http_tollgate_reply_int(reply, 1);
    retry_ms = ngx_http_tollgate_reply_int(reply, 3);

    d->l2_remaining_tokens = ngx_http_tollgate_sat32((uint64_t) ngx_max(
                                 ngx_http_tollgate_reply_int(reply, 4), 0));
    cnode->u.dcluster.emergency = ngx_http_tollgate_reply_int(reply, 5) != 0;

    tg_lease_l2_left(&d->lease, &call->mcf->lease, d->l2_remaining_tokens,
                     cnode->u.dcluster.live_gateways);

    d->guaranteed_tps = ngx_http_tollgate_reply_u32(reply, 6);
    d->burst_tps = ngx_http_tollgate_reply_u32(reply, 7);
    d->priority = ngx_min(ngx_http_tollgate_reply_u32(reply, 8),
                          TG_PRIORITY_MAX);
    d->max_borrow_tokens = ngx_http_tollgate_reply_u32(reply, 9);

    /*
     * The profile is named in Redis and defined in nginx.conf; the
     * record keeps its key (0: a name not defined here, the built-in
     * default).
     */

    d->profile = 0;

    if (reply->element[10]->type == REDIS_REPLY_STRING) {
        profile.data = (u_char *) reply->element[10]->str;
        profile.len = reply->element[10]->len;

        p = call->mcf->profiles.elts;
        for (i = 0; i < call->mcf->profiles.nelts; i++) {
            if (p[i].name.len == profile.len
                && ngx_strncmp(p[i].name.data, profile.data, profile.len)
                   == 0)
            {
                d->profile = p[i].key;
                break;
            }
        }
    }

    d->cost_known = 1;

    if (granted > 0) {
        tg_lease_granted(&d->lease, (uint64_t) granted, now_ms);
        d->retry_at_ms = 0;
        goto done;
    }

    d->denied_layer = ngx_min(ngx_http_tollgate_reply_u32(reply, 2),
                              TG_LAYER_LOCAL);
    retry_ms = ngx_max(retry_ms, 1000);

    /*
     * Retry-After is whole seconds, but the application's own bucket
     * has what this gateway asked for much sooner at its rate: asking
     * again then keeps gateways from all pausing a full second, then
     * emptying the bucket together.  Not before 100 ms, which bounds
     * the calls a refused application costs to ten a second per
     * gateway.  Refusals by the cluster or for debt keep the script's
     * time.
     */

    if ((d->denied_layer == TG_LAYER_GUARANTEED
         || d->denied_layer == TG_LAYER_BURST)
        && d->guaranteed_tps > 0)
    {
        retry_ms = ngx_min(retry_ms,
                           (int64_t) ngx_max((call->min_tokens * 1000
                                              + d->guaranteed_tps - 1)
                                             / d->guaranteed_tps, 100));
    }

    if (d->lease.balance_tokens > 0) {
        /* what the lease still holds is spent; no new ask until then */
        d->retry_at_ms = now_ms + retry_ms;
        d->lease.refill_inflight = 0;

    } else {
        tg_lease_denied(&d->lease, now_ms + retry_ms);
    }

done:

    ngx_http_tollgate_unlock(&call->zone->shpool->mutex);
    ngx_free(call);
}


static void
ngx_http_tollgate_on_report(redisReply *reply, void *data)
{
    ngx_http_tollgate_dapp_t    *d;
    ngx_http_tollgate_node_t    *cnode, *anode;
    ngx_http_tollgate_call_t    *call;
    ngx_http_tollgate_dextra_t  *x;

    call = data;

    ngx_http_tollgate_lock(&call->zone->shpool->mutex);

    cnode = ngx_http_tollgate_call_node_locked(call, 1);
    anode = ngx_http_tollgate_call_node_locked(call, 0);

    if (anode != NULL) {
        d = &anode->u.dapp;
        d->reporting = 0;

        /* a failed report is kept as it is, to be sent again */

        if (reply != NULL && reply->type == REDIS_REPLY_ARRAY) {
            x = ngx_http_tollgate_dextra(call->zone, d);

            if (x != NULL) {
                x->report_used = 0;
                x->report_returned = 0;
                x->report_debt = 0;
                ngx_http_tollgate_dextra_release_locked(call->zone, d);
            }

            if (reply->elements >= 2) {
                d->l2_remaining_tokens = ngx_http_tollgate_sat32(
                    (uint64_t) ngx_max(
                        ngx_http_tollgate_reply_int(reply, 1), 0));

                tg_lease_l2_left(&d->lease, &call->mcf->lease,
                                 d->l2_remaining_tokens,
                                 cnode ? cnode->u.dcluster.live_gateways
                                       : 1);
            }
        }
    }

    ngx_http_tollgate_unlock(&call->zone->shpool->mutex);
    ngx_free(call);
}


/* {live_gateways, config_version, emergency_active} */

static void
ngx_http_tollgate_on_heartbeat(redisReply *reply, void *data)
{
    ngx_http_tollgate_node_t  *cnode;
    ngx_http_tollgate_call_t  *call;

    call = data;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 3)
    {
        ngx_free(call);
        return;
    }

    ngx_http_tollgate_lock(&call->zone->shpool->mutex);

    cnode = ngx_http_tollgate_call_node_locked(call, 1);

    if (cnode != NULL) {
        ngx_http_tollgate_beat_seen_locked(call, cnode, reply, 0);
    }

    ngx_http_tollgate_unlock(&call->zone->shpool->mutex);
    ngx_free(call);
}


/*
 * What a heartbeat learned, from reply->element[first] on: {live
 * gateways, configuration version, emergency active}, whether it was
 * sent alone or carried by an acquire.
 */

static void
ngx_http_tollgate_beat_seen_locked(ngx_http_tollgate_call_t *call,
    ngx_http_tollgate_node_t *cnode, redisReply *reply, size_t first)
{
    uint64_t                       version;
    ngx_queue_t                   *q;
    ngx_http_tollgate_node_t      *tn;
    ngx_http_tollgate_dcluster_t  *dc;

    dc = &cnode->u.dcluster;

    dc->live_gateways = (uint32_t) ngx_max(
                            ngx_http_tollgate_reply_int(reply, first), 1);
    dc->emergency = ngx_http_tollgate_reply_int(reply, first + 2) != 0;

    version = (uint64_t) ngx_http_tollgate_reply_int(reply, first + 1);

    if (version != dc->config_version || dc->capacity_tps == 0) {
        ngx_http_tollgate_read_capacity(call);
    }

    if (version == dc->config_version) {
        return;
    }

    /*
     * The configuration changed: refusals cached under the old quotas
     * are forgotten, so a raised quota is felt at once, and leases taken
     * under them are returned, so a lowered one is too.
     */

    if (dc->config_version != 0) {
        for (q = ngx_queue_head(&call->zone->sh->lru);
             q != ngx_queue_sentinel(&call->zone->sh->lru);
             q = ngx_queue_next(q))
        {
            tn = ngx_queue_data(q, ngx_http_tollgate_node_t, queue);

            if (tn->cluster_len != call->cluster->id.len
                || ngx_memcmp(tn->key, call->cluster->id.data,
                              tn->cluster_len) != 0)
            {
                continue;
            }

            tn->u.dapp.lease.denied_until_ms = TG_MSEC_NEVER;
            tn->u.dapp.retry_at_ms = 0;
            tn->u.dapp.unknown_until_ms = 0;

            /* no stretch until a grant under the new quotas says so */
            tg_lease_l2_left(&tn->u.dapp.lease, &call->mcf->lease, 0, 1);

            /* leased under the old quotas: given back, asked anew */

            if (tn->u.dapp.lease.balance_tokens > 0) {
                tn->u.dapp.returned_tokens = ngx_http_tollgate_add32(
                    tn->u.dapp.returned_tokens,
                    (uint64_t) tn->u.dapp.lease.balance_tokens);
                tn->u.dapp.lease.balance_tokens = 0;
            }
        }
    }

    dc->config_version = version;
}


/*
 * The admin announced a change on tg:config.  A cluster id: that
 * cluster's heartbeat goes at once, reads the new version and forgets
 * refusals cached under the old one.  "*": a global hash changed; of
 * those the gateway reads only the degradation override, at once.
 */

static void
ngx_http_tollgate_on_config(u_char *cluster_id, size_t len)
{
    ngx_str_t                       id;
    ngx_uint_t                      i, global;
    ngx_shm_zone_t                **zones;
    ngx_http_tollgate_node_t       *cnode;
    ngx_http_tollgate_zone_t       *zone;
    ngx_http_tollgate_cluster_t    *cluster;
    ngx_http_tollgate_main_conf_t  *mcf;

    mcf = ngx_http_tollgate_sync_mcf;
    if (mcf == NULL) {
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "tollgate: configuration of \"%*s\" changed",
                   len, cluster_id);

    id.data = cluster_id;
    id.len = len;

    global = (len == 1 && cluster_id[0] == '*');
    cluster = global ? NULL : ngx_http_tollgate_find_cluster(mcf, &id);

    if (!global && cluster == NULL) {
        return;     /* a cluster this gateway does not serve */
    }

    zones = mcf->zones.elts;

    for (i = 0; i < mcf->zones.nelts; i++) {
        zone = zones[i]->data;

        ngx_http_tollgate_lock(&zone->shpool->mutex);

        if (global) {
            zone->sh->next_override_ms = 0;

        } else {
            cnode = ngx_http_tollgate_cluster_node_locked(
                        zone, cluster, (tg_msec_t) ngx_current_msec,
                        ngx_cycle->log);
            if (cnode != NULL) {
                cnode->u.dcluster.beat_ms = 0;
            }

            zone->sh->next_heartbeat_ms = 0;
        }

        zone->sh->next_sync_ms = 0;

        ngx_http_tollgate_unlock(&zone->shpool->mutex);
    }

    ngx_http_tollgate_sync_soon();
}


/* the capacity, for the "cluster" policy of RateLimit-Policy */

static void
ngx_http_tollgate_read_capacity(ngx_http_tollgate_call_t *call)
{
    ngx_str_t                  argv[3];
    ngx_http_tollgate_call_t  *copy;
    u_char                     key[NGX_HTTP_TOLLGATE_KEY_LEN];

    copy = ngx_http_tollgate_call_create(call->mcf, call->zone,
                                         call->cluster, NULL);
    if (copy == NULL) {
        return;
    }

    ngx_str_set(&argv[0], "HGET");
    ngx_http_tollgate_key(&argv[1], key, call->cluster, "cluster", NULL);
    ngx_str_set(&argv[2], "capacity");

    if (ngx_http_tollgate_redis_call(NGX_HTTP_TOLLGATE_COMMAND,
                                     &call->cluster->id, 0, 3, argv,
                                     ngx_http_tollgate_on_capacity, copy)
        != NGX_OK)
    {
        ngx_free(copy);
    }
}


static void
ngx_http_tollgate_on_capacity(redisReply *reply, void *data)
{
    ngx_int_t                  n;
    ngx_http_tollgate_node_t  *cnode;
    ngx_http_tollgate_call_t  *call;

    call = data;

    if (reply != NULL && reply->type == REDIS_REPLY_STRING) {
        n = ngx_atoi((u_char *) reply->str, reply->len);

        if (n != NGX_ERROR) {
            ngx_http_tollgate_lock(&call->zone->shpool->mutex);

            cnode = ngx_http_tollgate_call_node_locked(call, 1);
            if (cnode != NULL) {
                cnode->u.dcluster.capacity_tps = (uint64_t) n;
            }

            ngx_http_tollgate_unlock(&call->zone->shpool->mutex);
        }
    }

    ngx_free(call);
}


static void
ngx_http_tollgate_on_seed(redisReply *reply, void *data)
{
    /* failures are logged by the client; a later start seeds again */
}


/* the application of a call is declared by a tollgate_app line */

static ngx_uint_t
ngx_http_tollgate_declared(ngx_http_tollgate_call_t *call)
{
    ngx_str_t                 id;
    ngx_http_tollgate_app_t  *app;

    id.data = call->app;
    id.len = call->app_len;

    app = ngx_http_tollgate_find_app(call->mcf, &id);

    return app != NULL && app->cluster == call->cluster
           && call->cluster->declared;
}


static ngx_http_tollgate_call_t *
ngx_http_tollgate_call_create(ngx_http_tollgate_main_conf_t *mcf,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_cluster_t *cluster,
    ngx_str_t *app)
{
    ngx_http_tollgate_call_t  *call;

    call = ngx_alloc(sizeof(ngx_http_tollgate_call_t), ngx_cycle->log);
    if (call == NULL) {
        return NULL;
    }

    call->mcf = mcf;
    call->zone = zone;
    call->cluster = cluster;
    call->min_tokens = 0;
    call->beat = 0;
    call->app_len = app ? app->len : 0;

    if (app) {
        ngx_memcpy(call->app, app->data, app->len);
    }

    return call;
}


static ngx_http_tollgate_node_t *
ngx_http_tollgate_call_node_locked(ngx_http_tollgate_call_t *call,
    ngx_uint_t cluster_node)
{
    ngx_str_t  app;

    if (cluster_node) {
        return ngx_http_tollgate_node_locked(call->zone, call->cluster, NULL,
                                             0, NULL,
                                             (tg_msec_t) ngx_current_msec,
                                             ngx_cycle->log);
    }

    app.data = call->app;
    app.len = call->app_len;

    return ngx_http_tollgate_node_locked(call->zone, call->cluster, &app,
                                         ngx_hash_key(app.data, app.len),
                                         NULL, (tg_msec_t) ngx_current_msec,
                                         ngx_cycle->log);
}


/* "tg:{cluster}:suffix" followed by the application or gateway id */

static void
ngx_http_tollgate_key(ngx_str_t *key, u_char *buf,
    ngx_http_tollgate_cluster_t *cluster, const char *suffix, ngx_str_t *app)
{
    u_char  *p;

    p = ngx_cpymem(buf, "tg:{", 4);
    p = ngx_cpymem(p, cluster->id.data, cluster->id.len);
    *p++ = '}';
    *p++ = ':';
    p = ngx_cpymem(p, suffix, ngx_strlen(suffix));

    if (app) {
        p = ngx_cpymem(p, app->data, app->len);
    }

    key->data = buf;
    key->len = p - buf;
}


static void
ngx_http_tollgate_num(ngx_str_t *s, u_char *buf, uint64_t n)
{
    s->data = buf;
    s->len = ngx_http_tollgate_decimal(buf, n) - buf;
}


/* Lua numbers reach us as integers; a string of digits is read too */

static int64_t
ngx_http_tollgate_reply_int(redisReply *reply, size_t i)
{
    ngx_int_t    n;
    redisReply  *e;

    e = reply->element[i];

    if (e->type == REDIS_REPLY_INTEGER) {
        return (int64_t) e->integer;
    }

    if (e->type == REDIS_REPLY_STRING) {
        n = ngx_atoi((u_char *) e->str, e->len);
        return n == NGX_ERROR ? 0 : (int64_t) n;
    }

    return 0;
}


/* the same, for a record field of 32 bits: negative is 0, huge the most */

static uint32_t
ngx_http_tollgate_reply_u32(redisReply *reply, size_t i)
{
    int64_t  n;

    n = ngx_http_tollgate_reply_int(reply, i);

    return n < 0 ? 0 : ngx_http_tollgate_sat32((uint64_t) n);
}
