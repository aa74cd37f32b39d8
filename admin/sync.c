/*
 * Copyright (C) Tollgate developers
 *
 * Configuration from PostgreSQL to Redis (docs/redis-keys.md).  Writes
 * carry the row's version and the scripts drop older ones, so a re-sync
 * may run at any time without undoing a newer change.
 */


#include <stdio.h>
#include <string.h>

#include "db.h"
#include "redis.h"
#include "store.h"


#define TGA_SYNC_RUNID_EVERY_S  5


static int       tga_sync_dirty = 1;
static uint64_t  tga_sync_run_ids;      /* see tga_sync_redis_restarted */


/* an integer or string member of a row, as text */
static const char *
tga_sync_text(json_t *row, const char *name, char *buf, size_t size)
{
    json_t  *v;

    v = json_object_get(row, name);

    if (json_is_integer(v)) {
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }

    if (json_is_real(v)) {
        snprintf(buf, size, "%.4f", json_real_value(v));
        return buf;
    }

    return json_is_string(v) ? json_string_value(v) : "";
}


static void
tga_sync_result(redisReply *r, const char *what, const char *id)
{
    if (r == NULL) {
        tga_log_warn("msg=\"config not pushed to redis, will re-sync\" "
                     "object=%s id=\"%s\"", what, id);
        tga_sync_dirty = 1;
        return;
    }

    freeReplyObject(r);
}


/* the keys an application's scripts take: argv[0..2], and its state */
typedef struct {
    char                  app[160];
    char                  apps[96];
    char                  version[96];
    char                  state[160];
} tga_app_keys_t;


static void
tga_sync_app_keys(tga_app_keys_t *k, const char *cluster_id,
    const char *app_id, const char **argv)
{
    snprintf(k->app, sizeof(k->app), "tg:{%s}:app:%s", cluster_id, app_id);
    snprintf(k->apps, sizeof(k->apps), "tg:{%s}:apps", cluster_id);
    snprintf(k->version, sizeof(k->version), "tg:{%s}:version", cluster_id);
    snprintf(k->state, sizeof(k->state), "tg:{%s}:state:%s", cluster_id,
             app_id);

    argv[0] = k->app;
    argv[1] = k->apps;
    argv[2] = k->version;
}


void
tga_sync_app(json_t *app)
{
    char            n[5][24];
    const char     *argv[12], *app_id, *cluster_id;
    tga_app_keys_t  keys;

    app_id = tga_sync_text(app, "app_id", n[0], 0);
    cluster_id = tga_sync_text(app, "cluster_id", n[0], 0);
    tga_sync_app_keys(&keys, cluster_id, app_id, argv);

    /* the runtime buckets, so that a lowered quota applies at once */
    argv[3] = keys.state;

    argv[4] = tga_sync_text(app, "version", n[0], sizeof(n[0]));
    argv[5] = app_id;
    argv[6] = cluster_id;
    argv[7] = tga_sync_text(app, "guaranteed_quota", n[1], sizeof(n[1]));
    argv[8] = tga_sync_text(app, "burst_quota", n[2], sizeof(n[2]));
    argv[9] = tga_sync_text(app, "priority", n[3], sizeof(n[3]));
    argv[10] = tga_sync_text(app, "max_borrow", n[4], sizeof(n[4]));
    argv[11] = tga_sync_text(app, "cost_profile", n[0], 0);

    tga_sync_result(tga_redis_script("admin_put_app", 4, 12, argv), "app",
                    app_id);
}


static void
tga_sync_app_ids_delete(const char *cluster_id, const char *app_id)
{
    const char      *argv[5];
    tga_app_keys_t   keys;

    tga_sync_app_keys(&keys, cluster_id, app_id, argv);
    argv[3] = app_id;
    argv[4] = cluster_id;

    tga_sync_result(tga_redis_script("admin_del_app", 3, 5, argv), "app",
                    app_id);
}


void
tga_sync_app_delete(json_t *app)
{
    char  unused[1];

    tga_sync_app_ids_delete(tga_sync_text(app, "cluster_id", unused, 0),
                            tga_sync_text(app, "app_id", unused, 0));
}


void
tga_sync_cluster(json_t *cluster)
{
    char         k_cluster[96], k_ver[96], n[3][24];
    const char  *argv[6], *id;

    id = tga_sync_text(cluster, "cluster_id", n[0], 0);
    snprintf(k_cluster, sizeof(k_cluster), "tg:{%s}:cluster", id);
    snprintf(k_ver, sizeof(k_ver), "tg:{%s}:version", id);

    argv[0] = k_cluster;
    argv[1] = k_ver;
    argv[2] = tga_sync_text(cluster, "version", n[0], sizeof(n[0]));
    argv[3] = tga_sync_text(cluster, "capacity", n[1], sizeof(n[1]));
    argv[4] = tga_sync_text(cluster, "reserved_ratio", n[2], sizeof(n[2]));
    argv[5] = id;

    tga_sync_result(tga_redis_script("admin_put_cluster", 2, 6, argv),
                    "cluster", id);
}


void
tga_sync_profile(json_t *profile)
{
    char         value[80], n[3][24];
    const char  *argv[3];

    snprintf(value, sizeof(value), "%s,%s,%s",
             tga_sync_text(profile, "base", n[0], sizeof(n[0])),
             tga_sync_text(profile, "bandwidth", n[1], sizeof(n[1])),
             tga_sync_text(profile, "quantum", n[2], sizeof(n[2])));

    argv[0] = "tg:profiles";
    argv[1] = tga_sync_text(profile, "name", n[0], 0);
    argv[2] = value;

    tga_sync_result(tga_redis_script("admin_set_global", 1, 3, argv),
                    "profile", argv[1]);
}


/* removes from Redis the applications of a cluster PostgreSQL lacks */
static void
tga_sync_drop_stale(const char *cluster_id, json_t *apps)
{
    int          known;
    char         k_apps[96];
    size_t       i, j;
    json_t      *app;
    const char  *argv[2], *id;
    redisReply  *members;

    snprintf(k_apps, sizeof(k_apps), "tg:{%s}:apps", cluster_id);
    argv[0] = "SMEMBERS";
    argv[1] = k_apps;

    members = tga_redis_cmd(2, argv);
    if (members == NULL) {
        tga_sync_dirty = 1;
        return;
    }

    for (i = 0; i < members->elements; i++) {
        id = members->element[i]->str;
        known = 0;

        json_array_foreach(apps, j, app) {
            if (strcmp(json_string_value(json_object_get(app, "app_id")), id)
                == 0
                && strcmp(json_string_value(json_object_get(app,
                                                            "cluster_id")),
                          cluster_id) == 0)
            {
                known = 1;
                break;
            }
        }

        if (!known) {
            tga_sync_app_ids_delete(cluster_id, id);
        }
    }

    freeReplyObject(members);
}


int
tga_sync_all(void)
{
    int      rc;
    size_t   i;
    json_t  *all, *row;

    all = tga_db_json(
        "SELECT json_build_object("
        " 'clusters', COALESCE((SELECT json_agg(c) FROM clusters c),"
        "                      '[]'::json),"
        " 'apps', COALESCE((SELECT json_agg(a) FROM applications a),"
        "                  '[]'::json),"
        " 'profiles', COALESCE((SELECT json_agg(p) FROM cost_profiles p),"
        "                      '[]'::json))", 0, NULL, &rc);
    if (all == NULL) {
        return TGA_ERROR;
    }

    tga_sync_dirty = 0;

    json_array_foreach(json_object_get(all, "profiles"), i, row) {
        tga_sync_profile(row);
    }

    json_array_foreach(json_object_get(all, "clusters"), i, row) {
        tga_sync_cluster(row);
        tga_sync_drop_stale(json_string_value(json_object_get(row,
                                                              "cluster_id")),
                            json_object_get(all, "apps"));
    }

    json_array_foreach(json_object_get(all, "apps"), i, row) {
        tga_sync_app(row);
    }

    tga_log_info("msg=\"configuration synced to redis\" clusters=%zu "
                 "apps=%zu result=%s",
                 json_array_size(json_object_get(all, "clusters")),
                 json_array_size(json_object_get(all, "apps")),
                 tga_sync_dirty ? "incomplete" : "ok");

    json_decref(all);

    return tga_sync_dirty ? TGA_ERROR : TGA_OK;
}


/* adds one master's run id to the sum of their FNV-1a hashes */
static void
tga_sync_add_run_id(redisReply *info, void *data)
{
    uint64_t    *sum, h;
    const char  *p;

    sum = data;
    p = info->type == REDIS_REPLY_STRING ? strstr(info->str, "run_id:")
                                         : NULL;

    if (p == NULL) {
        return;
    }

    h = 14695981039346656037ULL;

    for (p += 7; *p && *p != '\r' && *p != '\n'; p++) {
        h = (h ^ (unsigned char) *p) * 1099511628211ULL;
    }

    *sum += h;
}


/*
 * 1 when the masters answer with run ids other than those last seen: a
 * server restarted (maybe empty), or a replica took over.  A sum does
 * not depend on the order in which a Redis Cluster lists its masters.
 */
static int
tga_sync_redis_restarted(void)
{
    int          restarted;
    uint64_t     run_ids;
    const char  *argv[] = { "INFO", "server" };

    run_ids = 0;

    if (tga_redis_each_master(2, argv, tga_sync_add_run_id, &run_ids)
        != TGA_OK)
    {
        return 0;
    }

    restarted = run_ids != tga_sync_run_ids;
    tga_sync_run_ids = run_ids;

    return restarted;
}


void
tga_sync_check(void)
{
    static int64_t  last_check_ms;
    int64_t         now_ms;

    now_ms = tga_now_ms();

    if (!tga_sync_dirty
        && now_ms - last_check_ms < TGA_SYNC_RUNID_EVERY_S * 1000)
    {
        return;
    }

    last_check_ms = now_ms;

    if (tga_sync_redis_restarted() || tga_sync_dirty) {
        (void) tga_sync_all();
    }
}
