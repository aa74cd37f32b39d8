/*
 * Copyright (C) Tollgate developers
 *
 * Configuration of the Tollgate module: directives, their parsing and
 * checking, and the registration of the phase handlers.  The request
 * path is in ngx_http_tollgate_handler.c, the status and metrics pages
 * in ngx_http_tollgate_report.c.
 */


#include "ngx_http_tollgate_module.h"


static ngx_int_t ngx_http_tollgate_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_tollgate_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_tollgate_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_tollgate_init_main_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_http_tollgate_app_table(ngx_conf_t *cf,
    ngx_http_tollgate_main_conf_t *mcf);
static ngx_int_t ngx_http_tollgate_profile_table(ngx_conf_t *cf,
    ngx_http_tollgate_main_conf_t *mcf);
static ngx_int_t ngx_http_tollgate_init_distributed(ngx_conf_t *cf,
    ngx_http_tollgate_main_conf_t *mcf);
static void *ngx_http_tollgate_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_tollgate_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);

static char *ngx_http_tollgate_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tollgate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tollgate_cost(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tollgate_cost_profile(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_tollgate_app(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tollgate_cluster_capacity(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_tollgate_report(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tollgate_status_code(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_tollgate_enum(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tollgate_redis_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_tollgate_parse_addrs(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_str_t *value, ngx_str_t *list,
    ngx_array_t *addrs);
static char *ngx_http_tollgate_lease(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tollgate_degradation(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_tollgate_plain_name(ngx_str_t *s);
static ngx_int_t ngx_http_tollgate_header_name(ngx_conf_t *cf,
    ngx_http_tollgate_loc_conf_t *tlcf);
static ngx_int_t ngx_http_tollgate_init_process(ngx_cycle_t *cycle);
static void ngx_http_tollgate_exit_process(ngx_cycle_t *cycle);

static ngx_int_t ngx_http_tollgate_parse_cost(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_str_t *value, tg_cost_profile_t *cost);
static ngx_int_t ngx_http_tollgate_parse_tokens(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_str_t *value, size_t skip, uint64_t *tokens);
static void ngx_http_tollgate_bad_value(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, const char *why);


static ngx_conf_enum_t  ngx_http_tollgate_fail_modes[] = {
    { ngx_string("local"), NGX_HTTP_TOLLGATE_FAIL_LOCAL },
    { ngx_string("open"), NGX_HTTP_TOLLGATE_FAIL_OPEN },
    { ngx_string("closed"), NGX_HTTP_TOLLGATE_FAIL_CLOSED },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_tollgate_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_tollgate_commands[] = {

    { ngx_string("tollgate_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_tollgate_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tollgate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_tollgate,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tollgate_cluster"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tollgate_loc_conf_t, cluster_id),
      NULL },

    { ngx_string("tollgate_cost"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_tollgate_cost,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tollgate_cost_profile"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_tollgate_cost_profile,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tollgate_app"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_tollgate_app,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tollgate_cluster_capacity"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_tollgate_cluster_capacity,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tollgate_dry_run"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tollgate_loc_conf_t, dry_run),
      NULL },

    { ngx_string("tollgate_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tollgate_loc_conf_t, headers),
      NULL },

    { ngx_string("tollgate_missing_app_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_tollgate_status_code,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tollgate_loc_conf_t, missing_status),
      NULL },

    { ngx_string("tollgate_unknown_app_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_tollgate_status_code,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tollgate_loc_conf_t, unknown_status),
      NULL },

    { ngx_string("tollgate_status_code"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_tollgate_status_code,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tollgate_loc_conf_t, reject_status),
      NULL },

    { ngx_string("tollgate_log_level"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_tollgate_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tollgate_loc_conf_t, log_level),
      &ngx_http_tollgate_log_levels },

    { ngx_string("tollgate_chunked_estimate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_off_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tollgate_loc_conf_t, chunked_estimate),
      NULL },

    { ngx_string("tollgate_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_tollgate_redis_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tollgate_lease"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_tollgate_lease,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tollgate_fail_mode"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_tollgate_enum,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tollgate_main_conf_t, fail_mode),
      &ngx_http_tollgate_fail_modes },

    { ngx_string("tollgate_degradation"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_tollgate_degradation,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tollgate_control"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_tollgate_report,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_TOLLGATE_HANDLER_CONTROL,
      NULL },

    { ngx_string("tollgate_control_secret"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tollgate_loc_conf_t, control_secret),
      NULL },

    { ngx_string("tollgate_gateway_id"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tollgate_main_conf_t, gateway_id),
      NULL },

    { ngx_string("tollgate_wait"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tollgate_loc_conf_t, wait_ms),
      NULL },

    { ngx_string("tollgate_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_tollgate_report,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_TOLLGATE_HANDLER_STATUS,
      NULL },

    { ngx_string("tollgate_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_tollgate_report,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_TOLLGATE_HANDLER_METRICS,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_tollgate_module_ctx = {
    ngx_http_tollgate_preconfiguration,    /* preconfiguration */
    ngx_http_tollgate_postconfiguration,   /* postconfiguration */

    ngx_http_tollgate_create_main_conf,    /* create main configuration */
    ngx_http_tollgate_init_main_conf,      /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_tollgate_create_loc_conf,     /* create location configuration */
    ngx_http_tollgate_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_tollgate_module = {
    NGX_MODULE_V1,
    &ngx_http_tollgate_module_ctx,         /* module context */
    ngx_http_tollgate_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_tollgate_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_tollgate_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_tollgate_standard = ngx_string("standard");


static ngx_int_t
ngx_http_tollgate_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_tollgate_add_variables(cf);
}


static ngx_int_t
ngx_http_tollgate_postconfiguration(ngx_conf_t *cf)
{
    ngx_uint_t                      i;
    ngx_shm_zone_t                **zones;
    ngx_http_handler_pt            *h;
    ngx_http_core_main_conf_t      *cmcf;
    ngx_http_tollgate_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tollgate_module);

    /* a zone named by "tollgate zone=" but never declared has no data */

    zones = mcf->zone_refs.elts;
    for (i = 0; i < mcf->zone_refs.nelts; i++) {
        if (zones[i]->data == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown zone \"%V\" in \"tollgate\" directive,"
                               " declare it with \"tollgate_zone\"",
                               &zones[i]->shm.name);
            return NGX_ERROR;
        }
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_tollgate_handler;

    return NGX_OK;
}


static void *
ngx_http_tollgate_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_tollgate_profile_t    *p;
    ngx_http_tollgate_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tollgate_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&mcf->profiles, cf->pool, 4,
                       sizeof(ngx_http_tollgate_profile_t))
        != NGX_OK
        || ngx_array_init(&mcf->clusters, cf->pool, 4,
                          sizeof(ngx_http_tollgate_cluster_t *))
           != NGX_OK
        || ngx_array_init(&mcf->apps, cf->pool, 8,
                          sizeof(ngx_http_tollgate_app_t))
           != NGX_OK
        || ngx_array_init(&mcf->zones, cf->pool, 2, sizeof(ngx_shm_zone_t *))
           != NGX_OK
        || ngx_array_init(&mcf->zone_refs, cf->pool, 4,
                          sizeof(ngx_shm_zone_t *))
           != NGX_OK)
    {
        return NULL;
    }

    /* "standard" always exists; tollgate_cost_profile may redefine it */

    p = ngx_array_push(&mcf->profiles);
    if (p == NULL) {
        return NULL;
    }

    p->name = ngx_http_tollgate_standard;
    tg_cost_profile_default(&p->cost);
    tg_cost_profile_default(&mcf->default_cost);

    mcf->fail_mode = NGX_CONF_UNSET_UINT;

    return mcf;
}


static char *
ngx_http_tollgate_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_tollgate_main_conf_t *mcf = conf;

    ngx_uint_t                     i;
    ngx_shm_zone_t               **zones;
    ngx_http_tollgate_app_t       *app;
    ngx_http_tollgate_zone_t      *zone;
    ngx_http_tollgate_cluster_t  **cluster;

    /*
     * A distributed zone keeps a thirty-second of its pages from the
     * application records, for what is made on demand: extra records
     * (a report on its way, a local share) and long keys.
     */

    zones = mcf->zones.elts;
    for (i = 0; i < mcf->zones.nelts; i++) {
        zone = zones[i]->data;
        zone->distributed = mcf->distributed;
        zone->reserve_pages = mcf->distributed
                              ? ngx_max(2, zones[i]->shm.size
                                           / ngx_pagesize / 32)
                              : 0;
    }

    /* an application is seeded into its cluster, or the only one */

    cluster = mcf->clusters.elts;
    app = mcf->apps.elts;

    for (i = 0; i < mcf->apps.nelts; i++) {
        if (app[i].cluster_id.len) {
            app[i].cluster = ngx_http_tollgate_find_cluster(mcf,
                                                        &app[i].cluster_id);
            if (app[i].cluster == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "unknown cluster \"%V\" for app \"%V\" "
                                   "in \"tollgate_app\" directive",
                                   &app[i].cluster_id, &app[i].id);
                return NGX_CONF_ERROR;
            }

        } else if (mcf->clusters.nelts == 1) {
            app[i].cluster = cluster[0];
        }

        app[i].batch_tokens = ngx_http_tollgate_batch(app[i].conf.burst_tps);
    }

    if (ngx_http_tollgate_app_table(cf, mcf) != NGX_OK
        || ngx_http_tollgate_profile_table(cf, mcf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_tollgate_init_distributed(cf, mcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Fills the table of cost profiles by key (module.h).  Two names with
 * the same key could not be told apart in the zone: refused.
 */

static ngx_int_t
ngx_http_tollgate_profile_table(ngx_conf_t *cf,
    ngx_http_tollgate_main_conf_t *mcf)
{
    ngx_uint_t                     i, j, size;
    ngx_http_tollgate_profile_t   *p, *other;

    for (size = 8; size < 2 * mcf->profiles.nelts; size *= 2) { /* void */ }

    mcf->profile_slots = ngx_pcalloc(cf->pool, size * sizeof(void *));
    if (mcf->profile_slots == NULL) {
        return NGX_ERROR;
    }

    mcf->profile_mask = size - 1;
    p = mcf->profiles.elts;

    /* no 16-bit key is this: the first lookup fills the cache */
    mcf->last_profile_key = UINT32_MAX;

    for (i = 0; i < mcf->profiles.nelts; i++) {
        p[i].key = ngx_http_tollgate_profile_key(&p[i].name);

        for (j = p[i].key & mcf->profile_mask;
             (other = mcf->profile_slots[j]) != NULL;
             j = (j + 1) & mcf->profile_mask)
        {
            if (other->key == p[i].key) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "cost profiles \"%V\" and \"%V\" have "
                                   "the same 16-bit key, which the zone "
                                   "records name them by: rename one",
                                   &other->name, &p[i].name);
                return NGX_ERROR;
            }
        }

        mcf->profile_slots[j] = &p[i];
    }

    return NGX_OK;
}


/*
 * Fills the table of declared applications (module.h), in a power of two
 * of slots at least twice the applications; an id declared twice is
 * refused here.
 */

static ngx_int_t
ngx_http_tollgate_app_table(ngx_conf_t *cf,
    ngx_http_tollgate_main_conf_t *mcf)
{
    uint32_t                       hash;
    ngx_uint_t                     i, j, size;
    ngx_http_tollgate_app_t       *app;
    ngx_http_tollgate_app_slot_t  *slot;

    if (mcf->apps.nelts == 0) {
        return NGX_OK;
    }

    for (size = 8; size < 2 * mcf->apps.nelts; size *= 2) { /* void */ }

    mcf->app_slots = ngx_pcalloc(cf->pool,
                                 size * sizeof(ngx_http_tollgate_app_slot_t));
    if (mcf->app_slots == NULL) {
        return NGX_ERROR;
    }

    mcf->app_mask = size - 1;
    app = mcf->apps.elts;

    for (i = 0; i < mcf->apps.nelts; i++) {
        hash = ngx_http_tollgate_id_hash(app[i].id.data, app[i].id.len);

        for (j = hash & mcf->app_mask; /* void */; j = (j + 1) & mcf->app_mask)
        {
            slot = &mcf->app_slots[j];

            if (slot->app == NULL) {
                break;
            }

            if (slot->hash == hash && slot->len == app[i].id.len
                && ngx_memcmp(slot->app->id.data, app[i].id.data,
                              app[i].id.len) == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid value \"%V\" in \"tollgate_app\" "
                                   "directive, the application is already "
                                   "declared", &app[i].id);
                return NGX_ERROR;
            }
        }

        slot->hash = hash;
        slot->len = (uint32_t) app[i].id.len;
        slot->app = &app[i];
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tollgate_init_distributed(ngx_conf_t *cf,
    ngx_http_tollgate_main_conf_t *mcf)
{
    u_char      *p;
    const char  *name;

    if (!mcf->lease_set) {
        tg_lease_conf_default(&mcf->lease);
    }

    if (!mcf->health_set) {
        tg_health_conf_default(&mcf->health);
    }

    /* said, not silently ignored: these govern the talk with Redis */

    if (!mcf->distributed) {
        name = mcf->lease_set ? "tollgate_lease"
               : mcf->health_set ? "tollgate_degradation"
               : (mcf->fail_mode != NGX_CONF_UNSET_UINT)
                 ? "tollgate_fail_mode" : NULL;

        if (name != NULL) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "\"%s\" has no effect without \"tollgate_redis\""
                          " (standalone mode)", name);
        }
    }

    ngx_conf_init_uint_value(mcf->fail_mode, NGX_HTTP_TOLLGATE_FAIL_LOCAL);

    if (!mcf->distributed) {
        return NGX_OK;
    }

    if (mcf->zones.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tollgate_redis\" needs a \"tollgate_zone\" "
                           "for the leases");
        return NGX_ERROR;
    }

    /* gateways sharing a Redis tell themselves apart by this id */

    if (mcf->gateway_id.len == 0) {
        p = ngx_pnalloc(cf->pool, cf->cycle->hostname.len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, cf->cycle->hostname.data, cf->cycle->hostname.len);
        mcf->gateway_id.data = p;
        mcf->gateway_id.len = cf->cycle->hostname.len;
    }

    if (ngx_http_tollgate_valid_id(&mcf->gateway_id) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid gateway id \"%V\", set one of 1 to 64 "
                           "of [A-Za-z0-9._-] with \"tollgate_gateway_id\"",
                           &mcf->gateway_id);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tollgate_init_process(ngx_cycle_t *cycle)
{
    return ngx_http_tollgate_sync_init(cycle);
}


static void
ngx_http_tollgate_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_tollgate_sync_exit(cycle);
}


static void *
ngx_http_tollgate_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_tollgate_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tollgate_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->shm_zone = NULL;
     *     conf->app = NULL;
     *     conf->cluster_id = { 0, NULL };
     *     conf->cluster = NULL;
     *     conf->cost_set = 0;
     *     conf->handler = 0;
     */

    conf->enable = NGX_CONF_UNSET;
    conf->app_index = NGX_ERROR;
    conf->dry_run = NGX_CONF_UNSET;
    conf->headers = NGX_CONF_UNSET;
    conf->missing_status = NGX_CONF_UNSET_UINT;
    conf->unknown_status = NGX_CONF_UNSET_UINT;
    conf->reject_status = NGX_CONF_UNSET_UINT;
    conf->log_level = NGX_CONF_UNSET_UINT;
    conf->chunked_estimate = NGX_CONF_UNSET;
    conf->wait_ms = NGX_CONF_UNSET_MSEC;

    return conf;
}


static char *
ngx_http_tollgate_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_tollgate_loc_conf_t *prev = parent;
    ngx_http_tollgate_loc_conf_t *conf = child;

    ngx_http_tollgate_cluster_t   **pc;
    ngx_http_tollgate_main_conf_t  *mcf;

    if (conf->enable == NGX_CONF_UNSET) {
        conf->enable = prev->enable;
        conf->shm_zone = prev->shm_zone;
        conf->app = prev->app;
        conf->app_index = prev->app_index;
        conf->app_header = prev->app_header;
        conf->app_header_lc = prev->app_header_lc;
        conf->app_header_hash = prev->app_header_hash;
    }

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_str_value(conf->cluster_id, prev->cluster_id, "");
    ngx_conf_merge_str_value(conf->control_secret, prev->control_secret, "");

    if (!conf->cost_set) {
        if (prev->cost_set) {
            conf->cost = prev->cost;

        } else {
            tg_cost_profile_default(&conf->cost);
        }

        conf->cost_set = 1;
    }

    ngx_conf_merge_value(conf->dry_run, prev->dry_run, 0);
    ngx_conf_merge_value(conf->headers, prev->headers, 0);
    ngx_conf_merge_uint_value(conf->missing_status, prev->missing_status,
                              NGX_HTTP_BAD_REQUEST);
    ngx_conf_merge_uint_value(conf->unknown_status, prev->unknown_status,
                              NGX_HTTP_FORBIDDEN);
    ngx_conf_merge_uint_value(conf->reject_status, prev->reject_status,
                              NGX_HTTP_TOO_MANY_REQUESTS);
    ngx_conf_merge_uint_value(conf->log_level, prev->log_level,
                              NGX_LOG_NOTICE);
    ngx_conf_merge_off_value(conf->chunked_estimate, prev->chunked_estimate,
                             1024 * 1024);
    ngx_conf_merge_msec_value(conf->wait_ms, prev->wait_ms, 100);

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    if (conf->cluster_id.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tollgate\" is on but \"tollgate_cluster\" "
                           "is not set for this location");
        return NGX_CONF_ERROR;
    }

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tollgate_module);

    conf->cluster = ngx_http_tollgate_find_cluster(mcf, &conf->cluster_id);

    /* with Redis, a cluster's configuration comes from Redis */

    if (conf->cluster == NULL && mcf->distributed) {
        pc = ngx_array_push(&mcf->clusters);
        if (pc == NULL) {
            return NGX_CONF_ERROR;
        }

        conf->cluster = ngx_pcalloc(cf->pool,
                                    sizeof(ngx_http_tollgate_cluster_t));
        if (conf->cluster == NULL) {
            return NGX_CONF_ERROR;
        }

        *pc = conf->cluster;

        conf->cluster->id = conf->cluster_id;
        conf->cluster->hash = ngx_hash_key(conf->cluster_id.data,
                                           conf->cluster_id.len);
        tg_cluster_conf_default(&conf->cluster->conf);
    }

    if (conf->cluster == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown cluster \"%V\" in \"tollgate_cluster\" "
                           "directive, declare it with "
                           "\"tollgate_cluster_capacity\"",
                           &conf->cluster_id);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_http_tollgate_app_t *
ngx_http_tollgate_find_app(ngx_http_tollgate_main_conf_t *mcf, ngx_str_t *id)
{
    return ngx_http_tollgate_app_by_id(mcf, id->data, id->len);
}


ngx_http_tollgate_cluster_t *
ngx_http_tollgate_find_cluster(ngx_http_tollgate_main_conf_t *mcf,
    ngx_str_t *id)
{
    ngx_uint_t                     i;
    ngx_http_tollgate_cluster_t  **cluster;

    cluster = mcf->clusters.elts;
    for (i = 0; i < mcf->clusters.nelts; i++) {
        if (cluster[i]->id.len == id->len
            && ngx_strncmp(cluster[i]->id.data, id->data, id->len) == 0)
        {
            return cluster[i];
        }
    }

    return NULL;
}


static ngx_http_tollgate_profile_t *
ngx_http_tollgate_find_profile(ngx_http_tollgate_main_conf_t *mcf,
    ngx_str_t *name)
{
    ngx_uint_t                    i;
    ngx_http_tollgate_profile_t  *p;

    p = mcf->profiles.elts;
    for (i = 0; i < mcf->profiles.nelts; i++) {
        if (p[i].name.len == name->len
            && ngx_strncmp(p[i].name.data, name->data, name->len) == 0)
        {
            return &p[i];
        }
    }

    return NULL;
}


static char *
ngx_http_tollgate_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tollgate_main_conf_t *mcf = conf;

    u_char                    *p;
    ssize_t                    size;
    ngx_str_t                 *value, name, s;
    ngx_shm_zone_t            *shm_zone, **pz;
    ngx_http_tollgate_zone_t  *zone;

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');
    if (p == NULL || p == value[1].data) {
        ngx_http_tollgate_bad_value(cf, cmd, &value[1],
                                    "expected NAME:SIZE");
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_http_tollgate_bad_value(cf, cmd, &value[1], "invalid size");
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_http_tollgate_bad_value(cf, cmd, &value[1],
                                    "the zone is too small");
        return NGX_CONF_ERROR;
    }

    /* records refer to each other by 32-bit offsets in 8-byte units */

    if ((uint64_t) size >= (uint64_t) 32 * 1024 * 1024 * 1024) {
        ngx_http_tollgate_bad_value(cf, cmd, &value[1],
                                    "the zone must be smaller than 32g");
        return NGX_CONF_ERROR;
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_tollgate_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->name = name;

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_tollgate_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\" in \"tollgate_zone\" "
                           "directive", &name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_tollgate_init_zone;
    shm_zone->data = zone;

    pz = ngx_array_push(&mcf->zones);
    if (pz == NULL) {
        return NGX_CONF_ERROR;
    }

    *pz = shm_zone;

    return NGX_CONF_OK;
}


static char *
ngx_http_tollgate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tollgate_loc_conf_t *tlcf = conf;

    ngx_str_t                          *value, s;
    ngx_uint_t                          i;
    ngx_shm_zone_t                    **pz;
    ngx_http_compile_complex_value_t    ccv;
    ngx_http_tollgate_main_conf_t      *mcf;

    if (tlcf->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2
        && ngx_strcmp(value[1].data, "off") == 0)
    {
        tlcf->enable = 0;
        return NGX_CONF_OK;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            if (s.len == 0) {
                ngx_http_tollgate_bad_value(cf, cmd, &value[i],
                                            "empty zone name");
                return NGX_CONF_ERROR;
            }

            tlcf->shm_zone = ngx_shared_memory_add(cf, &s, 0,
                                                   &ngx_http_tollgate_module);
            if (tlcf->shm_zone == NULL) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "app=", 4) == 0) {
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

            if (s.len == 0) {
                ngx_http_tollgate_bad_value(cf, cmd, &value[i],
                                            "empty application id");
                return NGX_CONF_ERROR;
            }

            /* a lone variable is read by index, cheaper than a script */

            if (s.len > 1 && s.data[0] == '$'
                && ngx_http_tollgate_plain_name(&s) == NGX_OK)
            {
                s.data++;
                s.len--;

                tlcf->app_index = ngx_http_get_variable_index(cf, &s);
                if (tlcf->app_index == NGX_ERROR) {
                    return NGX_CONF_ERROR;
                }

                /* a request header is looked up directly: see handler */

                if (s.len > 5
                    && ngx_strncasecmp(s.data, (u_char *) "http_", 5) == 0)
                {
                    tlcf->app_header.len = s.len - 5;
                    tlcf->app_header.data = ngx_pnalloc(cf->pool,
                                                        s.len - 5);
                    if (tlcf->app_header.data == NULL) {
                        return NGX_CONF_ERROR;
                    }

                    ngx_strlow(tlcf->app_header.data, s.data + 5, s.len - 5);

                    if (ngx_http_tollgate_header_name(cf, tlcf) != NGX_OK) {
                        return NGX_CONF_ERROR;
                    }
                }

                s.data--;
                s.len++;
            }

            tlcf->app = ngx_palloc(cf->pool,
                                   sizeof(ngx_http_complex_value_t));
            if (tlcf->app == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

            ccv.cf = cf;
            ccv.value = &s;
            ccv.complex_value = tlcf->app;

            if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_http_tollgate_bad_value(cf, cmd, &value[i], "unknown parameter");
        return NGX_CONF_ERROR;
    }

    if (tlcf->shm_zone == NULL || tlcf->app == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tollgate\" directive needs both zone= and app=,"
                           " or \"off\"");
        return NGX_CONF_ERROR;
    }

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tollgate_module);

    pz = ngx_array_push(&mcf->zone_refs);
    if (pz == NULL) {
        return NGX_CONF_ERROR;
    }

    *pz = tlcf->shm_zone;
    tlcf->enable = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_tollgate_cost(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tollgate_loc_conf_t *tlcf = conf;

    if (tlcf->cost_set) {
        return "is duplicate";
    }

    if (ngx_http_tollgate_parse_cost(cf, cmd, cf->args->elts, &tlcf->cost)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    tlcf->cost_set = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_tollgate_cost_profile(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tollgate_main_conf_t *mcf = conf;

    ngx_str_t                    *value;
    ngx_http_tollgate_profile_t  *p;

    value = cf->args->elts;

    if (ngx_http_tollgate_valid_id(&value[1]) != NGX_OK) {
        ngx_http_tollgate_bad_value(cf, cmd, &value[1],
                                    "a profile name is 1 to 64 of "
                                    "[A-Za-z0-9._-]");
        return NGX_CONF_ERROR;
    }

    p = ngx_http_tollgate_find_profile(mcf, &value[1]);

    if (p != NULL && p->name.data != ngx_http_tollgate_standard.data) {
        ngx_http_tollgate_bad_value(cf, cmd, &value[1],
                                    "the profile is already defined");
        return NGX_CONF_ERROR;
    }

    if (p == NULL) {
        p = ngx_array_push(&mcf->profiles);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    p->name = value[1];

    /* the parser skips value[0]: hand it the arguments after the name */

    if (ngx_http_tollgate_parse_cost(cf, cmd, &value[1], &p->cost)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_tollgate_app(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tollgate_main_conf_t *mcf = conf;

    ngx_int_t                 n;
    ngx_str_t                *value, name;
    ngx_uint_t                i, have_guaranteed, have_burst;
    ngx_http_tollgate_app_t  *app;

    value = cf->args->elts;

    if (ngx_http_tollgate_valid_id(&value[1]) != NGX_OK) {
        ngx_http_tollgate_bad_value(cf, cmd, &value[1],
                                    "an application id is 1 to 64 of "
                                    "[A-Za-z0-9._-]");
        return NGX_CONF_ERROR;
    }

    /* a duplicate is found when the table of applications is built */

    app = ngx_array_push(&mcf->apps);
    if (app == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(app, sizeof(ngx_http_tollgate_app_t));

    app->id = value[1];
    app->hash = ngx_hash_key(value[1].data, value[1].len);
    tg_app_conf_default(&app->conf);

    have_guaranteed = 0;
    have_burst = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "guaranteed=", 11) == 0) {
            if (ngx_http_tollgate_parse_tokens(cf, cmd, &value[i], 11,
                                               &app->conf.guaranteed_tps)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            have_guaranteed = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "burst=", 6) == 0) {
            if (ngx_http_tollgate_parse_tokens(cf, cmd, &value[i], 6,
                                               &app->conf.burst_tps)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            have_burst = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_borrow=", 11) == 0) {
            if (ngx_http_tollgate_parse_tokens(cf, cmd, &value[i], 11,
                                               &app->conf.max_borrow_tokens)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "priority=", 9) == 0) {
            n = ngx_atoi(value[i].data + 9, value[i].len - 9);

            if (n == NGX_ERROR || n > TG_PRIORITY_MAX) {
                ngx_http_tollgate_bad_value(cf, cmd, &value[i],
                                            "priority is 0, 1 or 2");
                return NGX_CONF_ERROR;
            }

            app->conf.priority = (uint32_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "cluster=", 8) == 0) {
            app->cluster_id.data = value[i].data + 8;
            app->cluster_id.len = value[i].len - 8;
            continue;
        }

        if (ngx_strncmp(value[i].data, "profile=", 8) == 0) {
            name.data = value[i].data + 8;
            name.len = value[i].len - 8;

            app->profile = ngx_http_tollgate_find_profile(mcf, &name);

            if (app->profile == NULL) {
                ngx_http_tollgate_bad_value(cf, cmd, &value[i],
                                            "unknown profile, define it "
                                            "with \"tollgate_cost_profile\" "
                                            "first");
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_http_tollgate_bad_value(cf, cmd, &value[i], "unknown parameter");
        return NGX_CONF_ERROR;
    }

    if (!have_guaranteed || !have_burst) {
        ngx_http_tollgate_bad_value(cf, cmd, &value[1],
                                    "guaranteed= and burst= are required");
        return NGX_CONF_ERROR;
    }

    if (app->conf.burst_tps < app->conf.guaranteed_tps) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value in \"%V\" directive for \"%V\": "
                           "burst=%uL is below guaranteed=%uL",
                           &cmd->name, &value[1],
                           (unsigned long long) app->conf.burst_tps,
                           (unsigned long long) app->conf.guaranteed_tps);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_tollgate_cluster_capacity(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tollgate_main_conf_t *mcf = conf;

    ngx_int_t                      n;
    ngx_str_t                     *value, s;
    ngx_uint_t                     i, have_capacity;
    ngx_http_tollgate_cluster_t   *cluster, **pc;

    value = cf->args->elts;

    if (ngx_http_tollgate_valid_id(&value[1]) != NGX_OK) {
        ngx_http_tollgate_bad_value(cf, cmd, &value[1],
                                    "a cluster id is 1 to 64 of "
                                    "[A-Za-z0-9._-]");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_tollgate_find_cluster(mcf, &value[1]) != NULL) {
        ngx_http_tollgate_bad_value(cf, cmd, &value[1],
                                    "the cluster is already declared");
        return NGX_CONF_ERROR;
    }

    pc = ngx_array_push(&mcf->clusters);
    if (pc == NULL) {
        return NGX_CONF_ERROR;
    }

    cluster = ngx_pcalloc(cf->pool, sizeof(ngx_http_tollgate_cluster_t));
    if (cluster == NULL) {
        return NGX_CONF_ERROR;
    }

    *pc = cluster;

    cluster->id = value[1];
    cluster->hash = ngx_hash_key(value[1].data, value[1].len);
    cluster->declared = 1;
    tg_cluster_conf_default(&cluster->conf);

    have_capacity = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "capacity=", 9) == 0) {
            if (ngx_http_tollgate_parse_tokens(cf, cmd, &value[i], 9,
                                               &cluster->conf.capacity_tps)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            have_capacity = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "reserved=", 9) == 0) {

            /* a ratio with up to three decimals, kept in per mille */

            n = ngx_atofp(value[i].data + 9, value[i].len - 9, 3);

            if (n == NGX_ERROR || n > 1000) {
                ngx_http_tollgate_bad_value(cf, cmd, &value[i],
                                            "reserved is a ratio from 0 "
                                            "to 1");
                return NGX_CONF_ERROR;
            }

            cluster->conf.reserved_permille = (uint32_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "window=", 7) == 0) {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            n = ngx_parse_time(&s, 0);

            if (n == NGX_ERROR || n < TG_USAGE_SLOTS || n > 3600000) {
                ngx_http_tollgate_bad_value(cf, cmd, &value[i],
                                            "window is a time from 10ms "
                                            "to 1h");
                return NGX_CONF_ERROR;
            }

            cluster->conf.window_ms = n;
            continue;
        }

        ngx_http_tollgate_bad_value(cf, cmd, &value[i], "unknown parameter");
        return NGX_CONF_ERROR;
    }

    if (!have_capacity) {
        ngx_http_tollgate_bad_value(cf, cmd, &value[1],
                                    "capacity= is required");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_tollgate_report(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tollgate_loc_conf_t *tlcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (tlcf->handler) {
        return "is duplicate";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = (cmd->offset == NGX_HTTP_TOLLGATE_HANDLER_CONTROL)
                    ? ngx_http_tollgate_control_handler
                    : ngx_http_tollgate_report_handler;

    tlcf->handler = cmd->offset;

    return NGX_CONF_OK;
}


static char *
ngx_http_tollgate_status_code(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_int_t    n;
    ngx_str_t   *value;
    ngx_uint_t  *code;

    code = (ngx_uint_t *) (p + cmd->offset);

    if (*code != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);

    if (n < 400 || n > 599) {
        ngx_http_tollgate_bad_value(cf, cmd, &value[1],
                                    "a status code from 400 to 599");
        return NGX_CONF_ERROR;
    }

    *code = (ngx_uint_t) n;

    return NGX_CONF_OK;
}


/*
 * tollgate_redis ADDR:PORT [password=] [db=] [timeout=] [connect_timeout=]
 * tollgate_redis sentinel=ADDR:PORT[,...] master=NAME [...]
 * tollgate_redis cluster=ADDR:PORT[,...] [...]
 */

static char *
ngx_http_tollgate_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tollgate_main_conf_t *mcf = conf;

    ngx_int_t                        n;
    ngx_str_t                       *value, s;
    ngx_uint_t                       i;
    ngx_http_tollgate_redis_conf_t  *rc;

    if (mcf->distributed) {
        return "is duplicate";
    }

    rc = &mcf->redis;
    value = cf->args->elts;

    if (ngx_array_init(&rc->addrs, cf->pool, 3,
                       sizeof(ngx_http_tollgate_redis_addr_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    rc->mode = NGX_HTTP_TOLLGATE_REDIS_SINGLE;
    rc->timeout_ms = 100;
    rc->connect_timeout_ms = 500;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "sentinel=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;
            rc->mode = NGX_HTTP_TOLLGATE_REDIS_SENTINEL;

            if (ngx_http_tollgate_parse_addrs(cf, cmd, &value[i], &s,
                                              &rc->addrs)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "cluster=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;
            rc->mode = NGX_HTTP_TOLLGATE_REDIS_CLUSTER;

            if (ngx_http_tollgate_parse_addrs(cf, cmd, &value[i], &s,
                                              &rc->addrs)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "master=", 7) == 0) {
            rc->master_name.data = value[i].data + 7;
            rc->master_name.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            rc->password.data = value[i].data + 9;
            rc->password.len = value[i].len - 9;
            continue;
        }

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            n = ngx_atoi(value[i].data + 3, value[i].len - 3);

            if (n == NGX_ERROR || n > 15) {
                ngx_http_tollgate_bad_value(cf, cmd, &value[i],
                                            "db is a number from 0 to 15");
                return NGX_CONF_ERROR;
            }

            rc->db = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0
            || ngx_strncmp(value[i].data, "connect_timeout=", 16) == 0)
        {
            s.data = (u_char *) ngx_strchr(value[i].data, '=') + 1;
            s.len = value[i].data + value[i].len - s.data;

            n = ngx_parse_time(&s, 0);

            if (n == NGX_ERROR || n == 0) {
                ngx_http_tollgate_bad_value(cf, cmd, &value[i],
                                            "a time above 0 is expected");
                return NGX_CONF_ERROR;
            }

            if (value[i].data[0] == 't') {
                rc->timeout_ms = (ngx_msec_t) n;

            } else {
                rc->connect_timeout_ms = (ngx_msec_t) n;
            }

            continue;
        }

        if (i == 1 && ngx_strchr(value[i].data, '=') == NULL) {
            if (ngx_http_tollgate_parse_addrs(cf, cmd, &value[i], &value[i],
                                              &rc->addrs)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_http_tollgate_bad_value(cf, cmd, &value[i], "unknown parameter");
        return NGX_CONF_ERROR;
    }

    if (rc->addrs.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tollgate_redis\" directive needs an address, "
                           "sentinel= or cluster=");
        return NGX_CONF_ERROR;
    }

    if (rc->mode == NGX_HTTP_TOLLGATE_REDIS_SINGLE && rc->addrs.nelts > 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tollgate_redis\" directive takes one address;"
                           " several go with sentinel= or cluster=");
        return NGX_CONF_ERROR;
    }

    if (rc->mode == NGX_HTTP_TOLLGATE_REDIS_SENTINEL
        && rc->master_name.len == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tollgate_redis\" directive with sentinel= "
                           "needs master=NAME");
        return NGX_CONF_ERROR;
    }

    mcf->distributed = 1;

    return NGX_CONF_OK;
}


/*
 * tollgate_degradation [conserve=TIME] [local_first=TIME] [errors=PERCENT]
 *     [fail_local=PERCENT] [hold=TIME] [window=TIME]: the thresholds of
 * DESIGN §4 (p99 latency for levels 1 and 2, error rates for 2 and 3),
 * the healthy time before stepping down a level, and the window.
 */

static char *
ngx_http_tollgate_degradation(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tollgate_main_conf_t *mcf = conf;

    u_char      *eq;
    ngx_int_t    n;
    ngx_str_t   *value, name, s;
    ngx_uint_t   i, percent;

    if (mcf->health_set) {
        return "is duplicate";
    }

    tg_health_conf_default(&mcf->health);
    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        eq = (u_char *) ngx_strchr(value[i].data, '=');

        if (eq == NULL) {
            ngx_http_tollgate_bad_value(cf, cmd, &value[i],
                                        "NAME=VALUE is expected");
            return NGX_CONF_ERROR;
        }

        name.data = value[i].data;
        name.len = eq - value[i].data;
        s.data = eq + 1;
        s.len = value[i].data + value[i].len - s.data;

        percent = (s.len > 1 && s.data[s.len - 1] == '%');

        if (percent) {
            n = ngx_atofp(s.data, s.len - 1, 1);    /* per mille */

        } else {
            n = ngx_parse_time(&s, 0);
        }

        if (name.len == 8 && ngx_strncmp(name.data, "conserve", 8) == 0) {
            if (percent || n <= 0 || n > 60000) {
                goto bad_latency;
            }

            mcf->health.conserve_p99_us = (uint32_t) n * 1000;

        } else if (name.len == 11
                   && ngx_strncmp(name.data, "local_first", 11) == 0)
        {
            if (percent || n <= 0 || n > 60000) {
                goto bad_latency;
            }

            mcf->health.local_first_p99_us = (uint32_t) n * 1000;

        } else if (name.len == 6 && ngx_strncmp(name.data, "errors", 6) == 0) {
            if (!percent || n <= 0 || n > 1000) {
                goto bad_rate;
            }

            mcf->health.local_first_error_permille = (uint32_t) n;

        } else if (name.len == 10
                   && ngx_strncmp(name.data, "fail_local", 10) == 0)
        {
            if (!percent || n <= 0 || n > 1000) {
                goto bad_rate;
            }

            mcf->health.fail_local_error_permille = (uint32_t) n;

        } else if (name.len == 4 && ngx_strncmp(name.data, "hold", 4) == 0) {
            if (percent || n <= 0 || n > 600000) {
                ngx_http_tollgate_bad_value(cf, cmd, &value[i],
                                            "hold is a time from 1ms to "
                                            "10m");
                return NGX_CONF_ERROR;
            }

            mcf->health.hold_ms = n;

        } else if (name.len == 6 && ngx_strncmp(name.data, "window", 6) == 0) {
            if (percent || n < 100 || n > 600000) {
                ngx_http_tollgate_bad_value(cf, cmd, &value[i],
                                            "window is a time from 100ms "
                                            "to 10m");
                return NGX_CONF_ERROR;
            }

            mcf->health.window_ms = n;

        } else {
            ngx_http_tollgate_bad_value(cf, cmd, &value[i],
                                        "unknown parameter");
            return NGX_CONF_ERROR;
        }
    }

    /* each level is entered past the one before it, or it is never seen */

    if (mcf->health.conserve_p99_us >= mcf->health.local_first_p99_us) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value in \"%V\" directive: conserve "
                           "(%uD ms) must be below local_first (%uD ms)",
                           &cmd->name, mcf->health.conserve_p99_us / 1000,
                           mcf->health.local_first_p99_us / 1000);
        return NGX_CONF_ERROR;
    }

    if (mcf->health.local_first_error_permille
        >= mcf->health.fail_local_error_permille)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value in \"%V\" directive: errors "
                           "(%uD.%uD%%) must be below fail_local (%uD.%uD%%)",
                           &cmd->name,
                           mcf->health.local_first_error_permille / 10,
                           mcf->health.local_first_error_permille % 10,
                           mcf->health.fail_local_error_permille / 10,
                           mcf->health.fail_local_error_permille % 10);
        return NGX_CONF_ERROR;
    }

    mcf->health_set = 1;

    return NGX_CONF_OK;

bad_latency:

    ngx_http_tollgate_bad_value(cf, cmd, &value[i],
                                "a p99 latency from 1ms to 60s is expected");
    return NGX_CONF_ERROR;

bad_rate:

    ngx_http_tollgate_bad_value(cf, cmd, &value[i],
                                "an error rate above 0% and at most 100% "
                                "is expected");
    return NGX_CONF_ERROR;
}


/*
 * tollgate_lease [horizon=TIME] [min=N] [max=N] [low=PERCENT]: how much of
 * an application's demand a gateway holds, and when it asks for more.
 */

static char *
ngx_http_tollgate_lease(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tollgate_main_conf_t *mcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value, s;
    ngx_uint_t   i;

    if (mcf->lease_set) {
        return "is duplicate";
    }

    tg_lease_conf_default(&mcf->lease);
    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "horizon=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            n = ngx_parse_time(&s, 0);

            if (n == NGX_ERROR || n < 10 || n > 60000) {
                ngx_http_tollgate_bad_value(cf, cmd, &value[i],
                                            "horizon is a time from 10ms "
                                            "to 60s");
                return NGX_CONF_ERROR;
            }

            mcf->lease.horizon_ms = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "min=", 4) == 0) {
            if (ngx_http_tollgate_parse_tokens(cf, cmd, &value[i], 4,
                                               &mcf->lease.min_tokens)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            /* a lease of nothing would send every request to Redis */

            if (mcf->lease.min_tokens == 0) {
                ngx_http_tollgate_bad_value(cf, cmd, &value[i],
                                            "min is at least 1 token");
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "max=", 4) == 0) {
            if (ngx_http_tollgate_parse_tokens(cf, cmd, &value[i], 4,
                                               &mcf->lease.max_tokens)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "low=", 4) == 0
            && value[i].data[value[i].len - 1] == '%')
        {
            n = ngx_atoi(value[i].data + 4, value[i].len - 5);

            if (n == NGX_ERROR || n < 1 || n > 90) {
                ngx_http_tollgate_bad_value(cf, cmd, &value[i],
                                            "low is a percentage from 1% "
                                            "to 90%");
                return NGX_CONF_ERROR;
            }

            mcf->lease.low_water_permille = (uint32_t) n * 10;
            continue;
        }

        ngx_http_tollgate_bad_value(cf, cmd, &value[i], "unknown parameter");
        return NGX_CONF_ERROR;
    }

    if (mcf->lease.max_tokens < mcf->lease.min_tokens) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value in \"%V\" directive: max is below "
                           "min", &cmd->name);
        return NGX_CONF_ERROR;
    }

    mcf->lease_set = 1;

    return NGX_CONF_OK;
}


/*
 * Resolves a comma separated list of ADDR:PORT now, at configuration
 * time, so that a worker never waits on a name lookup.
 */

static ngx_int_t
ngx_http_tollgate_parse_addrs(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, ngx_str_t *list, ngx_array_t *addrs)
{
    u_char                          *p, *last, *comma;
    size_t                           len;
    ngx_url_t                        u;
    ngx_http_tollgate_redis_addr_t  *addr;

    p = list->data;
    last = list->data + list->len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        ngx_memzero(&u, sizeof(ngx_url_t));

        u.url.data = p;
        u.url.len = comma - p;
        u.default_port = 6379;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
            ngx_http_tollgate_bad_value(cf, cmd, value,
                                        u.err ? u.err
                                              : "the address does not "
                                                "resolve");
            return NGX_ERROR;
        }

        addr = ngx_array_push(addrs);
        if (addr == NULL) {
            return NGX_ERROR;
        }

        addr->port = (int) ngx_inet_get_port(u.addrs[0].sockaddr);

        len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen,
                            addr->host, NGX_INET_ADDRSTRLEN, 0);
        addr->host[len] = '\0';

        p = comma + 1;
    }

    return NGX_OK;
}


/*
 * Parses "base=N bandwidth=N quantum=SIZE" from value[1] on; value[0] is
 * the directive or profile name.  Parameters left out keep the defaults.
 */

static ngx_int_t
ngx_http_tollgate_parse_cost(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, tg_cost_profile_t *cost)
{
    off_t       size;
    ngx_str_t   s;
    ngx_uint_t  i, n;

    tg_cost_profile_default(cost);

    n = cf->args->nelts - (value - (ngx_str_t *) cf->args->elts);

    if (n < 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive needs base=, bandwidth= or "
                           "quantum=", &cmd->name);
        return NGX_ERROR;
    }

    for (i = 1; i < n; i++) {

        if (ngx_strncmp(value[i].data, "base=", 5) == 0) {
            if (ngx_http_tollgate_parse_tokens(cf, cmd, &value[i], 5,
                                               &cost->base_tokens)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "bandwidth=", 10) == 0) {
            if (ngx_http_tollgate_parse_tokens(cf, cmd, &value[i], 10,
                                               &cost->bandwidth_tokens)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "quantum=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            size = ngx_parse_offset(&s);

            if (size <= 0) {
                ngx_http_tollgate_bad_value(cf, cmd, &value[i],
                                            "quantum is a size above 0");
                return NGX_ERROR;
            }

            cost->quantum_bytes = (uint64_t) size;
            continue;
        }

        ngx_http_tollgate_bad_value(cf, cmd, &value[i], "unknown parameter");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tollgate_parse_tokens(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, size_t skip, uint64_t *tokens)
{
    ngx_int_t  n;

    n = ngx_atoi(value->data + skip, value->len - skip);

    if (n == NGX_ERROR || (uint64_t) n > TG_TOKENS_MAX) {
        ngx_http_tollgate_bad_value(cf, cmd, value,
                                    "a whole number of tokens is "
                                    "expected");
        return NGX_ERROR;
    }

    *tokens = (uint64_t) n;

    return NGX_OK;
}


/*
 * One word of a fixed set, as nginx's own enum slot reads it, but a
 * wrong word is answered with the words that are right.
 */

static char *
ngx_http_tollgate_enum(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char           *p, *last;
    ngx_str_t        *value;
    ngx_uint_t       *field, i;
    ngx_conf_enum_t  *e;
    u_char            words[128];

    field = (ngx_uint_t *) ((u_char *) conf + cmd->offset);

    if (*field != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    e = cmd->post;

    p = words;
    last = words + sizeof(words);

    for (i = 0; e[i].name.len != 0; i++) {
        if (e[i].name.len == value[1].len
            && ngx_strcasecmp(e[i].name.data, value[1].data) == 0)
        {
            *field = e[i].value;
            return NGX_CONF_OK;
        }

        p = ngx_slprintf(p, last, "%s\"%V\"", i ? ", " : "", &e[i].name);
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive, one of "
                       "%*s is expected", &value[1], &cmd->name,
                       (size_t) (p - words), words);

    return NGX_CONF_ERROR;
}


static void
ngx_http_tollgate_bad_value(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, const char *why)
{
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive, %s",
                       value, &cmd->name, why);
}


/* 1 for the characters of an id: A-Z a-z 0-9 . _ - */

static const u_char  ngx_http_tollgate_id_chars[256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
    ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
    ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
    ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
    ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1
};


ngx_int_t
ngx_http_tollgate_valid_id(ngx_str_t *id)
{
    u_char  *p, *last;

    if (id->len == 0 || id->len > NGX_HTTP_TOLLGATE_ID_MAX) {
        return NGX_ERROR;
    }

    last = id->data + id->len;

    for (p = id->data; p < last; p++) {
        if (!ngx_http_tollgate_id_chars[*p]) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The header that $http_x_y names as a client sends it, "x-y" in lower
 * case, and the hash nginx's parser gives that name, so that the request
 * path compares hashes before names.
 */

static ngx_int_t
ngx_http_tollgate_header_name(ngx_conf_t *cf,
    ngx_http_tollgate_loc_conf_t *tlcf)
{
    u_char      *p;
    ngx_uint_t   i, hash;

    p = ngx_pnalloc(cf->pool, tlcf->app_header.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    hash = 0;

    for (i = 0; i < tlcf->app_header.len; i++) {
        p[i] = tlcf->app_header.data[i] == '_' ? '-'
                                               : tlcf->app_header.data[i];
        hash = ngx_hash(hash, p[i]);
    }

    tlcf->app_header_lc.data = p;
    tlcf->app_header_lc.len = tlcf->app_header.len;
    tlcf->app_header_hash = hash;

    return NGX_OK;
}


/* "$name" with nothing around it: letters, digits and "_" after "$" */

static ngx_int_t
ngx_http_tollgate_plain_name(ngx_str_t *s)
{
    u_char  *p;

    for (p = s->data + 1; p < s->data + s->len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_'))
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}
