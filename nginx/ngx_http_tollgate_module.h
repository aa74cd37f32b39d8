/*
 * Copyright (C) Tollgate developers
 */


#ifndef _NGX_HTTP_TOLLGATE_MODULE_H_INCLUDED_
#define _NGX_HTTP_TOLLGATE_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "tg_core.h"


#define NGX_HTTP_TOLLGATE_ID_MAX      64

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


typedef struct {
    ngx_str_t                    name;
    tg_cost_profile_t            cost;
} ngx_http_tollgate_profile_t;


typedef struct {
    ngx_str_t                    id;
    ngx_uint_t                   hash;
    tg_cluster_conf_t            conf;
} ngx_http_tollgate_cluster_t;


typedef struct {
    ngx_str_t                    id;
    ngx_uint_t                   hash;
    tg_app_conf_t                conf;
    ngx_http_tollgate_profile_t *profile;   /* NULL: the context's cost */
} ngx_http_tollgate_app_t;


/* shared memory: one node per cluster and per (cluster, application) */

typedef struct {
    u_char                       color;
    u_char                       is_cluster;
    u_char                       cluster_len;
    u_char                       app_len;
    ngx_queue_t                  queue;        /* LRU, applications only */
    ngx_msec_t                   last_ms;

    union {
        tg_cluster_t             cluster;
        tg_app_t                 app;
    } u;

    uint64_t                     requests[NGX_HTTP_TOLLGATE_DRY_RUN + 1];
    uint64_t                     cost_tokens;

    u_char                       key[1];       /* cluster id, app id */
} ngx_http_tollgate_node_t;


typedef struct {
    ngx_rbtree_t                 rbtree;
    ngx_rbtree_node_t            sentinel;
    ngx_queue_t                  lru;

    ngx_uint_t                   apps;
    ngx_uint_t                   clusters;
    uint64_t                     evictions;
    ngx_uint_t                   full_logged;   /* logged once per zone */

    /* requests refused before any application state was touched */
    uint64_t                     refused[NGX_HTTP_TOLLGATE_DECISIONS];

    uint64_t                     hist[NGX_HTTP_TOLLGATE_HIST_BUCKETS + 1];
    uint64_t                     hist_sum_ns;
} ngx_http_tollgate_shctx_t;


typedef struct {
    ngx_http_tollgate_shctx_t   *sh;
    ngx_slab_pool_t             *shpool;
    ngx_str_t                    name;
} ngx_http_tollgate_zone_t;


typedef struct {
    ngx_array_t                  profiles;    /* ngx_http_tollgate_profile_t */
    ngx_array_t                  clusters;    /* ngx_http_tollgate_cluster_t */
    ngx_array_t                  apps;        /* ngx_http_tollgate_app_t */
    ngx_array_t                  zones;       /* declared, ngx_shm_zone_t * */
    ngx_array_t                  zone_refs;   /* named by "tollgate" */
    ngx_hash_t                   app_hash;
} ngx_http_tollgate_main_conf_t;


typedef struct {
    ngx_shm_zone_t              *shm_zone;    /* NULL: limiting off */
    ngx_http_complex_value_t    *app;
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

    ngx_uint_t                   handler;     /* status or metrics */
} ngx_http_tollgate_loc_conf_t;


#define NGX_HTTP_TOLLGATE_HANDLER_STATUS   1
#define NGX_HTTP_TOLLGATE_HANDLER_METRICS  2


/* what the request path decided, kept for variables and the log phase */

typedef struct {
    ngx_str_t                    app;
    ngx_http_tollgate_decision_e decision;
    tg_layer_e                   layer;
    uint64_t                     cost_tokens;
    off_t                        charged_bytes;
    ngx_http_tollgate_app_t     *app_conf;
    ngx_http_tollgate_cluster_t *cluster;
    ngx_http_tollgate_zone_t    *zone;
    tg_cost_profile_t           *profile;
    unsigned                     charged:1;     /* tokens were taken */
    unsigned                     estimated:1;   /* no Content-Length */
} ngx_http_tollgate_ctx_t;


extern ngx_module_t  ngx_http_tollgate_module;

extern ngx_str_t  ngx_http_tollgate_decision_names[];


ngx_int_t ngx_http_tollgate_init_zone(ngx_shm_zone_t *shm_zone, void *data);
ngx_http_tollgate_node_t *ngx_http_tollgate_node_locked(
    ngx_http_tollgate_zone_t *zone, ngx_http_tollgate_cluster_t *cluster,
    ngx_http_tollgate_app_t *app, tg_msec_t now_ms, ngx_log_t *log);

ngx_int_t ngx_http_tollgate_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_tollgate_log_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_tollgate_add_variables(ngx_conf_t *cf);

ngx_int_t ngx_http_tollgate_report_handler(ngx_http_request_t *r);
uint64_t ngx_http_tollgate_hist_bound_ns(ngx_uint_t i);

ngx_http_tollgate_app_t *ngx_http_tollgate_find_app(
    ngx_http_tollgate_main_conf_t *mcf, ngx_str_t *id);
ngx_int_t ngx_http_tollgate_valid_id(ngx_str_t *id);
ngx_http_tollgate_cluster_t *ngx_http_tollgate_find_cluster(
    ngx_http_tollgate_main_conf_t *mcf, ngx_str_t *id);


#endif /* _NGX_HTTP_TOLLGATE_MODULE_H_INCLUDED_ */
