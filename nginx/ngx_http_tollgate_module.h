/*
 * Copyright (C) Tollgate developers
 */


#ifndef _NGX_HTTP_TOLLGATE_MODULE_H_INCLUDED_
#define _NGX_HTTP_TOLLGATE_MODULE_H_INCLUDED_


#include <time.h>

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "tg_core.h"
#include "ngx_http_tollgate_redis.h"


#define NGX_HTTP_TOLLGATE_ID_MAX      64

/* a standalone batch: this many ms of a rate (ngx_http_tollgate_batch) */
#define NGX_HTTP_TOLLGATE_BATCH_MS    10
#define ngx_http_tollgate_batch(rate_tps)                                     \
    ((uint64_t) (rate_tps) / (1000 / NGX_HTTP_TOLLGATE_BATCH_MS))

/* buckets of tollgate_check_duration_seconds, in microseconds */
#define NGX_HTTP_TOLLGATE_HIST_BUCKETS  8


typedef enum {
    NGX_HTTP_TOLLGATE_ALLOWED = 0,
    NGX_HTTP_TOLLGATE_REJECTED,
    NGX_HTTP_TOLLGATE_DRY_RUN,
    NGX_HTTP_TOLLGATE_MISSING_APP,
    NGX_HTTP_TOLLGATE_INVALID_APP,
    NGX_HTTP_TOLLGATE_UNKNOWN_APP,
    NGX_HTTP_TOLLGATE_DECISIONS
} ngx_http_tollgate_decision_e;


/*
 * A cost profile.  Its key, a 16-bit hash of its name (never 0), is how
 * an application's record in the zone names it: the zone outlives a
 * reload, which may reorder or change the profiles, and the workers of
 * the old and the new configuration share it while the old ones finish.
 */

typedef struct {
    ngx_str_t                    name;
    tg_cost_profile_t            cost;
    uint16_t                     key;
} ngx_http_tollgate_profile_t;


typedef struct {
    ngx_str_t                    id;
    ngx_uint_t                   hash;
    tg_cluster_conf_t            conf;
    ngx_flag_t                   declared;    /* by tollgate_cluster_capacity */

    /*
     * This worker's pointer to the cluster's node in node_zone: cluster
     * nodes are never evicted, so it stays valid for the zone's life.
     */
    struct ngx_http_tollgate_node_s  *node;
    void                        *node_zone;
} ngx_http_tollgate_cluster_t;


typedef struct {
    ngx_str_t                    id;
    ngx_uint_t                   hash;
    tg_app_conf_t                conf;
    ngx_http_tollgate_profile_t *profile;   /* NULL: the context's cost */
    ngx_str_t                    cluster_id;
    ngx_http_tollgate_cluster_t *cluster;   /* where it is seeded */
    uint64_t                     batch_tokens;  /* standalone, see handler */

    /*
     * This worker's pointer to the application's node: valid while the
     * zone has evicted nothing since it was found (see node_cached).
     */
    struct ngx_http_tollgate_node_s  *node;
    ngx_http_tollgate_cluster_t *node_cluster;
    void                        *node_zone;
    uint64_t                     node_evictions;
} ngx_http_tollgate_app_t;


/*
 * Standalone mode: an application's buckets, and the tokens taken from
 * them ahead for its next requests (see ngx_http_tollgate_take_batch).
 */

typedef struct {
    tg_app_t                     app;
    uint64_t                     batch_tokens;
    uint8_t                      batch_layer;   /* tg_layer_e they came from */
} ngx_http_tollgate_sapp_t;


/*
 * Distributed mode: what a gateway keeps of an application.  The quota
 * itself lives in Redis; here are the lease, what Redis last said of the
 * application, and the usage not yet reported.  The record is kept to
 * 112 bytes, so that with the node's header and a short key it fills
 * 240 of a page's 4096 (issue 7: at most 256 bytes per application):
 * counts of tokens between two reports, and the quotas, are held in 32
 * bits, saturating (docs/limitations.md); times that only measure how
 * long ago something happened keep the low 32 bits of the clock, whose
 * difference is exact for 49 days; and what only some applications
 * need at a time (a report being sent, a local share while Redis is
 * away) is in a record of its own, ngx_http_tollgate_dextra_t.
 */

typedef struct {
    tg_lease_t                   lease;

    /* while unknown: when to ask Redis again; else L2 refused until */
    union {
        tg_msec_t                unknown_until_ms;
        tg_msec_t                retry_at_ms;
    };

    /* usage counted since the last report (saturating) */
    uint32_t                     used_tokens;
    uint32_t                     returned_tokens;
    uint32_t                     debt_tokens;
    uint32_t                     report_seq;

    /* as Redis last sent them (saturating) */
    uint32_t                     guaranteed_tps;
    uint32_t                     burst_tps;
    uint32_t                     max_borrow_tokens;
    uint32_t                     l2_remaining_tokens;

    uint32_t                     last_take_ms;      /* low 32 bits */
    uint32_t                     inflight_since_ms; /* low 32 bits */

    /* the extra record, in 8-byte units from the zone's start; 0: none */
    uint32_t                     extra;

    uint16_t                     profile;   /* its key, 0: the default */
    unsigned                     priority:2;
    unsigned                     denied_layer:3;
    unsigned                     known:1;        /* Redis answered */
    unsigned                     cost_known:1;
    unsigned                     unknown:1;      /* Redis has no such app */
    unsigned                     reporting:1;
} ngx_http_tollgate_dapp_t;


/*
 * What an application needs only at times, allocated when first needed
 * and freed when no longer: the report in flight, kept until Redis has
 * it, and the local share used while Redis cannot be asked.
 */

typedef struct {
    tg_app_t                     local;          /* the local share */
    uint32_t                     report_used;
    uint32_t                     report_returned;
    uint32_t                     report_debt;
    unsigned                     local_ready:1;
    unsigned                     in_record:1;    /* a spare app record */
} ngx_http_tollgate_dextra_t;


typedef struct {
    tg_cluster_t                 local;          /* for the local shares */
    uint64_t                     capacity_tps;   /* as Redis has it */
    uint64_t                     config_version;
    tg_msec_t                    beat_ms;        /* last heartbeat sent */
    uint32_t                     live_gateways;
    unsigned                     emergency:1;
    unsigned                     local_ready:1;
} ngx_http_tollgate_dcluster_t;


/*
 * shared memory: one node per cluster and per (cluster, application).
 * An application's node is a record as long as its mode's variant of
 * the union and no longer, followed by room for a short key (cluster id,
 * application id); a longer key takes a slab chunk of its own.  Records
 * are carved from whole pages (see ngx_http_tollgate_record_alloc), so
 * they are not rounded up to the slab's powers of two.
 */

#define NGX_HTTP_TOLLGATE_KEY_INLINE  32

typedef struct ngx_http_tollgate_node_s {
    u_char                       color;
    u_char                       is_cluster:1;
    u_char                       key_apart:1;  /* key in a chunk of its own */
    u_char                       cluster_len;
    u_char                       app_len;
    uint32_t                     last_ms;      /* low 32 bits of the clock */
    ngx_queue_t                  queue;        /* LRU, applications only */

    uint64_t                     requests[NGX_HTTP_TOLLGATE_DRY_RUN + 1];
    uint64_t                     cost_tokens;

    u_char                      *key;          /* cluster id, app id */

    union {
        tg_cluster_t             cluster;
        ngx_http_tollgate_sapp_t sapp;
        ngx_http_tollgate_dcluster_t  dcluster;
        ngx_http_tollgate_dapp_t      dapp;
    } u;                                       /* last: see above */
} ngx_http_tollgate_node_t;


typedef struct {
    ngx_rbtree_t                 rbtree;
    ngx_rbtree_node_t            sentinel;
    ngx_queue_t                  lru;

    ngx_uint_t                   apps;
    ngx_uint_t                   clusters;
    uint64_t                     evictions;
    ngx_uint_t                   full_logged;   /* logged once per zone */

    /* application records not in use, each pointing to the next */
    void                        *free_records;
    size_t                       record_size;
    tg_msec_t                    noroom_logged_ms;

    /* requests refused before any application state was touched */
    uint64_t                     refused[NGX_HTTP_TOLLGATE_DECISIONS];

    uint64_t                     hist[NGX_HTTP_TOLLGATE_HIST_BUCKETS + 1];
    uint64_t                     hist_sum_ns;

    /* distributed mode */
    uint64_t                     decisions;
    uint64_t                     l3_hits;
    uint64_t                     l3_misses;
    uint64_t                     fail_open;
    ngx_uint_t                   ops_since_sync;
    tg_msec_t                    next_sync_ms;
    tg_msec_t                    next_heartbeat_ms;
    tg_msec_t                    next_override_ms;
    tg_msec_t                    next_usage_ms;
    tg_msec_t                    next_full_walk_ms;
    ngx_http_tollgate_redis_stats_t  redis;

    /* degradation, kept in the first zone */
    tg_health_t                  health;
    int8_t                       forced_local;    /* control endpoint */
    int8_t                       forced_gateway;  /* Redis, this gateway */
    int8_t                       forced_all;      /* Redis, all gateways */

    /*
     * Requests admitted without a decision, summed up in the log by the
     * sync timer at most once a second, with the last one's names: the
     * request path only counts and copies, in its rare branch.
     */
    uint64_t                     fail_open_said;
    tg_msec_t                    fail_open_said_ms;
    u_char                       fail_open_app[NGX_HTTP_TOLLGATE_ID_MAX];
    u_char                       fail_open_cluster[NGX_HTTP_TOLLGATE_ID_MAX];
    uint8_t                      fail_open_app_len;
    uint8_t                      fail_open_cluster_len;
    uint8_t                      fail_open_why;
    int8_t                       fail_open_level;
} ngx_http_tollgate_shctx_t;


/* why a request was admitted without a decision */
#define NGX_HTTP_TOLLGATE_UNDECIDED_OPEN      0   /* fail mode open */
#define NGX_HTTP_TOLLGATE_UNDECIDED_NEW       1   /* no quota known yet */
#define NGX_HTTP_TOLLGATE_UNDECIDED_NOSHARE   2   /* no room for a share */
#define NGX_HTTP_TOLLGATE_UNDECIDED_NOROOM    3   /* no record at all */


typedef struct {
    ngx_http_tollgate_shctx_t   *sh;
    ngx_slab_pool_t             *shpool;
    ngx_str_t                    name;
    ngx_flag_t                   distributed;
    ngx_flag_t                   no_evict;    /* while only room may serve */
    ngx_uint_t                   reserve_pages;   /* records leave free */
} ngx_http_tollgate_zone_t;


/*
 * The declared applications by id: open addressing in at least twice as
 * many slots as applications, so that a probe always ends on an empty
 * one (see ngx_http_tollgate_app_by_id).
 */

typedef struct {
    uint32_t                     hash;
    uint32_t                     len;
    ngx_http_tollgate_app_t     *app;
} ngx_http_tollgate_app_slot_t;


typedef struct {
    ngx_array_t                  profiles;    /* ngx_http_tollgate_profile_t */
    tg_cost_profile_t            default_cost;  /* a name not defined here */

    /* the profiles by key, open addressing as app_slots */
    ngx_http_tollgate_profile_t **profile_slots;
    ngx_uint_t                   profile_mask;

    /*
     * The profile the last lookup found, kept by each worker in its own
     * copy of this configuration: most requests name the one before's.
     */
    uint32_t                     last_profile_key;
    tg_cost_profile_t           *last_profile;
    ngx_array_t                  clusters;    /* ngx_http_tollgate_cluster_t */
    ngx_array_t                  apps;        /* ngx_http_tollgate_app_t */
    ngx_array_t                  zones;       /* declared, ngx_shm_zone_t * */
    ngx_array_t                  zone_refs;   /* named by "tollgate" */
    ngx_http_tollgate_app_slot_t  *app_slots;  /* declared, by id */
    ngx_uint_t                   app_mask;    /* slots - 1, a power of 2 */

    ngx_http_tollgate_redis_conf_t  redis;     /* mode set: distributed */
    ngx_flag_t                   distributed;
    ngx_str_t                    gateway_id;
    tg_lease_conf_t              lease;
    ngx_flag_t                   lease_set;
    tg_health_conf_t             health;
    ngx_flag_t                   health_set;
    ngx_uint_t                   fail_mode;
} ngx_http_tollgate_main_conf_t;


#define NGX_HTTP_TOLLGATE_FAIL_LOCAL   0
#define NGX_HTTP_TOLLGATE_FAIL_OPEN    1
#define NGX_HTTP_TOLLGATE_FAIL_CLOSED  2


typedef struct {
    ngx_shm_zone_t              *shm_zone;    /* NULL: limiting off */
    ngx_http_complex_value_t    *app;
    ngx_int_t                    app_index;   /* app=$var: its index */
    ngx_str_t                    app_header;  /* app=$http_x_y: "x_y" */
    ngx_str_t                    app_header_lc;    /* "x-y" */
    ngx_uint_t                   app_header_hash;  /* as nginx hashes it */
    ngx_str_t                    cluster_id;
    ngx_http_tollgate_cluster_t *cluster;

    tg_cost_profile_t            cost;
    ngx_flag_t                   cost_set;
    ngx_flag_t                   enable;      /* NGX_CONF_UNSET: inherit */
    ngx_flag_t                   dry_run;
    ngx_flag_t                   headers;
    ngx_uint_t                   missing_status;
    ngx_uint_t                   unknown_status;
    ngx_uint_t                   reject_status;
    ngx_uint_t                   log_level;
    off_t                        chunked_estimate;
    ngx_msec_t                   wait_ms;     /* for a refill in flight */

    ngx_str_t                    control_secret;

    ngx_uint_t                   handler;     /* status or metrics */
} ngx_http_tollgate_loc_conf_t;


#define NGX_HTTP_TOLLGATE_HANDLER_STATUS   1
#define NGX_HTTP_TOLLGATE_HANDLER_METRICS  2
#define NGX_HTTP_TOLLGATE_HANDLER_CONTROL  3


/* what the request path decided, kept for variables and the log phase */

typedef struct {
    /*
     * Zeroed when a context is made: variables, the log phase and a
     * refusal may read these before anything else sets them.
     */
    ngx_str_t                    app;
    ngx_http_tollgate_decision_e decision;
    tg_layer_e                   layer;
    uint64_t                     cost_tokens;
    off_t                        charged_bytes;
    ngx_http_tollgate_app_t     *app_conf;
    unsigned                     charged:1;     /* tokens were taken */
    unsigned                     estimated:1;   /* no Content-Length */
    unsigned                     waiting:1;     /* for a lease refill */

    /* not zeroed (see create_ctx): each is set before it is read */
    ngx_uint_t                   app_key;       /* id_hash() of app */
    ngx_http_tollgate_cluster_t *cluster;
    ngx_http_tollgate_zone_t    *zone;
    tg_cost_profile_t           *profile;
    tg_msec_t                    wait_until_ms;
    struct timespec              start;

    /* the quotas named by the RateLimit-Policy header */
    uint64_t                     capacity_tps;
    uint64_t                     guaranteed_tps;
    uint64_t                     burst_tps;
    uint64_t                     max_borrow_tokens;
} ngx_http_tollgate_ctx_t;


extern ngx_module_t  ngx_http_tollgate_module;

extern ngx_str_t  ngx_http_tollgate_decision_names[];


ngx_int_t ngx_http_tollgate_init_zone(ngx_shm_zone_t *shm_zone, void *data);
ngx_http_tollgate_node_t *ngx_http_tollgate_cluster_node_locked(
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_cluster_t *cluster,
    tg_msec_t now_ms, ngx_log_t *log);
ngx_http_tollgate_node_t *ngx_http_tollgate_node_locked(
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_cluster_t *cluster,
    ngx_str_t *app_id, ngx_uint_t app_hash, tg_app_conf_t *app_conf,
    tg_msec_t now_ms, ngx_log_t *log);

ngx_http_tollgate_node_t *ngx_http_tollgate_node_fill_locked(
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_cluster_t *cluster,
    ngx_str_t *app_id, ngx_uint_t app_key, tg_msec_t now_ms, ngx_log_t *log);
ngx_int_t ngx_http_tollgate_lease_handler(ngx_http_request_t *r,
    ngx_http_tollgate_loc_conf_t *lcf, ngx_http_tollgate_ctx_t *ctx);
ngx_int_t ngx_http_tollgate_lease_settle(ngx_http_request_t *r,
    ngx_http_tollgate_ctx_t *ctx, int64_t delta_tokens);
ngx_int_t ngx_http_tollgate_sync_init(ngx_cycle_t *cycle);
void ngx_http_tollgate_acquire(ngx_http_tollgate_zone_t *zone,
    ngx_http_tollgate_cluster_t *cluster, ngx_str_t *app_id,
    uint64_t want_tokens, uint64_t min_tokens);
void ngx_http_tollgate_sync_exit(ngx_cycle_t *cycle);
void ngx_http_tollgate_sync_soon(void);
ngx_uint_t ngx_http_tollgate_reachable(ngx_http_tollgate_main_conf_t *mcf);
ngx_int_t ngx_http_tollgate_send_json(ngx_http_request_t *r,
    ngx_uint_t status, u_char *body, size_t len);
ngx_int_t ngx_http_tollgate_reject(ngx_http_request_t *r,
    ngx_http_tollgate_loc_conf_t *lcf, ngx_http_tollgate_ctx_t *ctx,
    tg_grant_t *grant, uint64_t remaining_tokens);
ngx_int_t ngx_http_tollgate_refuse(ngx_http_request_t *r,
    ngx_http_tollgate_loc_conf_t *lcf, ngx_http_tollgate_ctx_t *ctx,
    ngx_http_tollgate_decision_e decision);
void ngx_http_tollgate_observe(ngx_http_tollgate_shctx_t *sh,
    struct timespec *start);

void ngx_http_tollgate_health_attach(ngx_http_tollgate_zone_t *zone);
void ngx_http_tollgate_health_evaluate(ngx_http_tollgate_main_conf_t *mcf,
    ngx_uint_t connected);
void ngx_http_tollgate_read_override(ngx_http_tollgate_main_conf_t *mcf);
void ngx_http_tollgate_on_override(redisReply *reply, void *data);
ngx_int_t ngx_http_tollgate_local_locked(ngx_http_tollgate_main_conf_t *mcf,
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_node_t *cnode,
    ngx_http_tollgate_dapp_t *d, uint64_t cost_tokens, tg_msec_t now_ms,
    tg_grant_t *grant);
ngx_int_t ngx_http_tollgate_control_handler(ngx_http_request_t *r);
ngx_table_elt_t *ngx_http_tollgate_find_header(ngx_http_request_t *r,
    char *name);

ngx_int_t ngx_http_tollgate_handler(ngx_http_request_t *r);
void ngx_http_tollgate_wake_one(ngx_shmtx_t *mtx);
ngx_http_tollgate_dextra_t *ngx_http_tollgate_dextra_get_locked(
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_dapp_t *d,
    ngx_uint_t may_evict);
void ngx_http_tollgate_dextra_release_locked(ngx_http_tollgate_zone_t *zone,
    ngx_http_tollgate_dapp_t *d);
ngx_int_t ngx_http_tollgate_settle(ngx_http_request_t *r,
    ngx_http_tollgate_ctx_t *ctx);
ngx_int_t ngx_http_tollgate_add_variables(ngx_conf_t *cf);

ngx_int_t ngx_http_tollgate_report_handler(ngx_http_request_t *r);
uint64_t ngx_http_tollgate_hist_bound_ns(ngx_uint_t i);

ngx_http_tollgate_app_t *ngx_http_tollgate_find_app(
    ngx_http_tollgate_main_conf_t *mcf, ngx_str_t *id);
ngx_int_t ngx_http_tollgate_valid_id(ngx_str_t *id);
ngx_http_tollgate_cluster_t *ngx_http_tollgate_find_cluster(
    ngx_http_tollgate_main_conf_t *mcf, ngx_str_t *id);


/*
 * The zone lock.  Every request takes it once, and nginx's own lock and
 * unlock are calls into the binary that cost about 55 instructions
 * together even when nobody else holds it; the uncontended case is
 * decided here inline, on the same lock word with the same protocol
 * (the holder's pid), so that both can be mixed and the master still
 * frees the lock of a worker that died holding it.  A busy lock is left
 * to ngx_shmtx_lock(), which spins and then sleeps on the semaphore; a
 * release that finds sleepers wakes one (ngx_http_tollgate_wake_one).
 */

static ngx_inline void
ngx_http_tollgate_lock(ngx_shmtx_t *mtx)
{
#if (NGX_HAVE_ATOMIC_OPS)

    if (*mtx->lock == 0 && ngx_atomic_cmp_set(mtx->lock, 0, ngx_pid)) {
        return;
    }

#endif

    ngx_shmtx_lock(mtx);
}


static ngx_inline void
ngx_http_tollgate_unlock(ngx_shmtx_t *mtx)
{
#if (NGX_HAVE_ATOMIC_OPS)

    if (!ngx_atomic_cmp_set(mtx->lock, ngx_pid, 0)) {
        return;
    }

#if (NGX_HAVE_POSIX_SEM)

    /* the lock word is free before the sleepers are counted, see above */

    if (mtx->semaphore && (ngx_atomic_int_t) *mtx->wait > 0) {
        ngx_http_tollgate_wake_one(mtx);
    }

#endif

#else

    ngx_shmtx_unlock(mtx);

#endif
}


/* an application's extra record, or NULL (see ngx_http_tollgate_dapp_t) */

static ngx_inline ngx_http_tollgate_dextra_t *
ngx_http_tollgate_dextra(ngx_http_tollgate_zone_t *zone,
    ngx_http_tollgate_dapp_t *d)
{
    if (d->extra == 0) {
        return NULL;
    }

    return (ngx_http_tollgate_dextra_t *)
               ((u_char *) zone->shpool + ((size_t) d->extra << 3));
}


/* a count of tokens kept in 32 bits: a + b, or the most it holds */

static ngx_inline uint32_t
ngx_http_tollgate_add32(uint32_t a, uint64_t b)
{
    uint64_t  sum;

    sum = (uint64_t) a + ngx_min(b, (uint64_t) UINT32_MAX);

    return sum > UINT32_MAX ? UINT32_MAX : (uint32_t) sum;
}


static ngx_inline uint32_t
ngx_http_tollgate_sat32(uint64_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t) v;
}


/*
 * The cost profile Redis named for the application: the one of that
 * name in this nginx.conf, the built-in default for a name not defined
 * here (or defined by a configuration since reloaded), and fallback
 * while Redis has not named one.
 */

static ngx_inline tg_cost_profile_t *
ngx_http_tollgate_dapp_cost(ngx_http_tollgate_main_conf_t *mcf,
    ngx_http_tollgate_dapp_t *d, tg_cost_profile_t *fallback)
{
    ngx_uint_t                    i;
    ngx_http_tollgate_profile_t  *p;

    if (!d->cost_known) {
        return fallback;
    }

    if (d->profile == mcf->last_profile_key) {
        return mcf->last_profile;
    }

    mcf->last_profile_key = d->profile;
    mcf->last_profile = &mcf->default_cost;

    if (d->profile != 0) {
        for (i = d->profile & mcf->profile_mask;
             (p = mcf->profile_slots[i]) != NULL;
             i = (i + 1) & mcf->profile_mask)
        {
            if (p->key == d->profile) {
                mcf->last_profile = &p->cost;
                break;
            }
        }
    }

    return mcf->last_profile;
}



/*
 * An id's hash for the table of declared applications.  It reads a few
 * words, never past the id: two overlapping 4-byte words for 4 to 8
 * bytes, 8-byte words (the last one overlapping) beyond, so a short id
 * costs a handful of instructions where a byte loop costs dozens.
 */

static ngx_inline uint32_t
ngx_http_tollgate_id_hash(const u_char *p, size_t len)
{
    size_t    i;
    uint32_t  lo, hi;
    uint64_t  h, w;

    h = len;

    if (len >= 8) {
        for (i = 0; i + 8 < len; i += 8) {
            ngx_memcpy(&w, p + i, 8);
            h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        }

        ngx_memcpy(&w, p + len - 8, 8);

    } else if (len >= 4) {
        ngx_memcpy(&lo, p, 4);
        ngx_memcpy(&hi, p + len - 4, 4);
        w = (uint64_t) hi << 32 | lo;

    } else {
        w = len ? (uint64_t) p[0] << 16 | (uint64_t) p[len / 2] << 8
                  | p[len - 1]
                : 0;
    }

    h = (h ^ w) * 0x9e3779b97f4a7c15ULL;

    return (uint32_t) (h >> 32);
}


/* a cost profile's key (see ngx_http_tollgate_profile_t) */

static ngx_inline uint16_t
ngx_http_tollgate_profile_key(ngx_str_t *name)
{
    uint32_t  h;

    h = ngx_http_tollgate_id_hash(name->data, name->len);
    h = (h ^ (h >> 16)) & 0xffff;

    return (uint16_t) (h ? h : 1);
}


/*
 * The body charged for comes from what the gateway sees: the method and
 * the declared length, never a client's word on its cost.  A body
 * without a length is charged an estimate now and settled in the log
 * phase on the bytes actually received.
 */

static ngx_inline off_t
ngx_http_tollgate_body_bytes(ngx_http_request_t *r,
    ngx_http_tollgate_loc_conf_t *lcf, ngx_http_tollgate_ctx_t *ctx)
{
    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        return 0;
    }

    if (r->headers_in.content_length_n >= 0) {
        return r->headers_in.content_length_n;
    }

    if (r->headers_in.chunked) {
        ctx->estimated = 1;
        return lcf->chunked_estimate;
    }

    return 0;
}


/*
 * The gateway's degradation level, read without the lock: a stale level
 * for one request is harmless.  The health lives in the first zone
 * (ngx_http_tollgate_health_attach()); before that, normal.
 */

extern ngx_http_tollgate_shctx_t  *ngx_http_tollgate_health_sh;

static ngx_inline ngx_int_t
ngx_http_tollgate_level(void)
{
    if (ngx_http_tollgate_health_sh == NULL) {
        return TG_LEVEL_NORMAL;
    }

    return ngx_http_tollgate_health_sh->health.level;
}


/* two ids (or names) of one length compared a word at a time, inline */

static ngx_inline ngx_uint_t
ngx_http_tollgate_id_equal(const u_char *a, const u_char *b, size_t len)
{
    uint32_t  a4, b4;
    uint64_t  a8, b8;

    if (len > 8) {
        return ngx_memcmp(a, b, len) == 0;
    }

    if (len == 8) {
        ngx_memcpy(&a8, a, 8);
        ngx_memcpy(&b8, b, 8);
        return a8 == b8;
    }

    if (len >= 4) {
        ngx_memcpy(&a4, a, 4);
        ngx_memcpy(&b4, b, 4);

        if (a4 != b4) {
            return 0;
        }

        ngx_memcpy(&a4, a + len - 4, 4);
        ngx_memcpy(&b4, b + len - 4, 4);

        return a4 == b4;
    }

    return ngx_memcmp(a, b, len) == 0;
}


/*
 * Distributed mode finds an application's node by its id through a small
 * direct-mapped cache of each worker's, before the zone's tree: an entry
 * is trusted while the zone has evicted nothing since it was filled (only
 * eviction frees application nodes), and its id is compared with the
 * node's own key before it is used.  Inline: every request asks it.
 */

#define NGX_HTTP_TOLLGATE_NODE_CACHE  256

typedef struct {
    ngx_http_tollgate_node_t      *node;
    ngx_http_tollgate_zone_t      *zone;
    ngx_http_tollgate_cluster_t   *cluster;
    uint64_t                       evictions;
} ngx_http_tollgate_node_cache_t;


extern ngx_http_tollgate_node_cache_t
    ngx_http_tollgate_node_cache[NGX_HTTP_TOLLGATE_NODE_CACHE];


/* a node used: the most recently used come first, for eviction */

static ngx_inline void
ngx_http_tollgate_node_touch(ngx_http_tollgate_zone_t *zone,
    ngx_http_tollgate_node_t *tn, tg_msec_t now_ms)
{
    if (ngx_queue_head(&zone->sh->lru) != &tn->queue) {
        ngx_queue_remove(&tn->queue);
        ngx_queue_insert_head(&zone->sh->lru, &tn->queue);
    }

    tn->last_ms = (uint32_t) now_ms;
}


static ngx_inline ngx_http_tollgate_node_t *
ngx_http_tollgate_node_hit_locked(ngx_http_tollgate_zone_t *zone,
    ngx_http_tollgate_cluster_t *cluster, ngx_str_t *app_id,
    ngx_uint_t app_key, tg_msec_t now_ms)
{
    ngx_http_tollgate_node_t        *tn;
    ngx_http_tollgate_node_cache_t  *e;

    e = &ngx_http_tollgate_node_cache[app_key % NGX_HTTP_TOLLGATE_NODE_CACHE];
    tn = e->node;

    if (tn == NULL || e->zone != zone || e->cluster != cluster
        || e->evictions != zone->sh->evictions
        || tn->app_len != app_id->len
        || !ngx_http_tollgate_id_equal(tn->key + tn->cluster_len,
                                       app_id->data, app_id->len))
    {
        return NULL;
    }

    ngx_http_tollgate_node_touch(zone, tn, now_ms);

    return tn;
}


/* an application's node by its id: the cache, else the zone's tree */

static ngx_inline ngx_http_tollgate_node_t *
ngx_http_tollgate_node_by_id_locked(ngx_http_tollgate_zone_t *zone,
    ngx_http_tollgate_cluster_t *cluster, ngx_str_t *app_id,
    ngx_uint_t app_key, tg_msec_t now_ms, ngx_log_t *log)
{
    ngx_http_tollgate_node_t  *tn;

    tn = ngx_http_tollgate_node_hit_locked(zone, cluster, app_id, app_key,
                                           now_ms);

    return tn ? tn : ngx_http_tollgate_node_fill_locked(zone, cluster, app_id,
                                                        app_key, now_ms, log);
}


static ngx_inline ngx_http_tollgate_app_t *
ngx_http_tollgate_app_by_id(ngx_http_tollgate_main_conf_t *mcf,
    const u_char *id, size_t len)
{
    uint32_t                       hash;
    ngx_uint_t                     i;
    ngx_http_tollgate_app_slot_t  *slot;

    if (mcf->app_slots == NULL) {
        return NULL;
    }

    hash = ngx_http_tollgate_id_hash(id, len);

    for (i = hash & mcf->app_mask; /* void */; i = (i + 1) & mcf->app_mask) {
        slot = &mcf->app_slots[i];

        if (slot->app == NULL) {
            return NULL;
        }

        if (slot->hash == hash && slot->len == len
            && ngx_http_tollgate_id_equal(slot->app->id.data, id, len))
        {
            return slot->app;
        }
    }
}


#endif /* _NGX_HTTP_TOLLGATE_MODULE_H_INCLUDED_ */
