/*
 * Copyright (C) Tollgate developers
 *
 * /api/v1/apps: applications and their quotas.
 *
 * A write runs in one transaction that locks the application row, then
 * its cluster's row, so that two admins changing quotas of one cluster
 * at once cannot both pass the capacity check.  Redis is written after
 * the commit, with the row's new version.
 */


#include <stdio.h>
#include <string.h>

#include "db.h"
#include "http.h"
#include "routes.h"
#include "store.h"
#include "valid.h"


typedef struct {
    const char           *app_id;
    const char           *cluster_id;
    json_int_t            guaranteed;
    json_int_t            burst;
    json_int_t            priority;
    json_int_t            max_borrow;
    const char           *profile;
    json_int_t            old_guaranteed;   /* -1 for a new application */
} tga_app_t;


static const char *const  tga_app_fields[] = {
    "app_id", "cluster_id", "guaranteed_quota", "burst_quota", "priority",
    "max_borrow", "cost_profile", NULL
};

static const char *const  tga_quota_fields[] = {
    "guaranteed_quota", "burst_quota", "priority", "max_borrow", NULL
};


/* fills a from the body; fields absent from the body keep a's values */
static int
tga_app_read(tga_req_t *r, tga_app_t *a)
{
    if (tga_valid_int(r, "guaranteed_quota", 0, TGA_QUOTA_MAX, 0,
                      &a->guaranteed) == TGA_ERROR
        || tga_valid_int(r, "burst_quota", 0, TGA_QUOTA_MAX, 0, &a->burst)
           == TGA_ERROR
        || tga_valid_int(r, "priority", 0, 2, 0, &a->priority) == TGA_ERROR
        || tga_valid_int(r, "max_borrow", 0, TGA_QUOTA_MAX, 0,
                         &a->max_borrow) == TGA_ERROR
        || tga_valid_str(r, "cost_profile", TGA_ID_MAX_LEN, 1, 0,
                         &a->profile) == TGA_ERROR)
    {
        return TGA_ERROR;
    }

    if (a->burst < a->guaranteed) {
        tga_reply_error(r, 400, "bad_request",
                        "burst_quota (%lld) must be at least "
                        "guaranteed_quota (%lld)",
                        (long long) a->burst, (long long) a->guaranteed);
        return TGA_ERROR;
    }

    return TGA_OK;
}


static void
tga_app_from_row(tga_app_t *a, json_t *row)
{
    a->app_id = json_string_value(json_object_get(row, "app_id"));
    a->cluster_id = json_string_value(json_object_get(row, "cluster_id"));
    a->guaranteed = json_integer_value(json_object_get(row,
                                                       "guaranteed_quota"));
    a->burst = json_integer_value(json_object_get(row, "burst_quota"));
    a->priority = json_integer_value(json_object_get(row, "priority"));
    a->max_borrow = json_integer_value(json_object_get(row, "max_borrow"));
    a->profile = json_string_value(json_object_get(row, "cost_profile"));
    a->old_guaranteed = a->guaranteed;
}


/*
 * Locks the cluster and checks Σ G <= capacity × (1 − reserved) with a's
 * new guaranteed quota in place of its old one.  Sets the reply on
 * failure: 404 for an unknown cluster, 409 over capacity.
 */
static int
tga_app_check_capacity(tga_req_t *r, const tga_app_t *a)
{
    int          rc;
    char         g[24];
    json_t      *c;
    json_int_t   sum, limit;
    const char  *params[3];

    snprintf(g, sizeof(g), "%lld", (long long) a->guaranteed);
    params[0] = a->cluster_id;
    params[1] = a->app_id;
    params[2] = g;

    c = tga_db_json(
        "SELECT json_build_object("
        " 'limit', floor(capacity * (1 - reserved_ratio))::bigint,"
        " 'sum', $3::bigint + (SELECT COALESCE(sum(guaranteed_quota), 0)"
        "   FROM applications WHERE cluster_id = $1 AND app_id <> $2))"
        " FROM clusters WHERE cluster_id = $1 FOR UPDATE", 3, params, &rc);

    if (c == NULL) {
        if (rc == TGA_NOT_FOUND) {
            tga_reply_error(r, 404, "not_found", "no cluster \"%s\"",
                            a->cluster_id);
        }
        return TGA_ERROR;
    }

    sum = json_integer_value(json_object_get(c, "sum"));
    limit = json_integer_value(json_object_get(c, "limit"));
    json_decref(c);

    /* lowering a quota is always allowed, even over a forced capacity */
    if (sum > limit && a->guaranteed > a->old_guaranteed
        && !tga_valid_force(r))
    {
        tga_reply_error(r, 409, "conflict",
                        "guaranteed quotas of cluster \"%s\" would sum to "
                        "%lld, over capacity x (1 - reserved) = %lld; "
                        "add force=true to accept", a->cluster_id,
                        (long long) sum, (long long) limit);
        return TGA_ERROR;
    }

    return TGA_OK;
}


/* inserts or updates a's row; returns the new row */
static json_t *
tga_app_store(tga_req_t *r, const tga_app_t *a, int insert)
{
    int          rc;
    char         n[4][24];
    json_t      *row;
    const char  *params[7];

    snprintf(n[0], sizeof(n[0]), "%lld", (long long) a->guaranteed);
    snprintf(n[1], sizeof(n[1]), "%lld", (long long) a->burst);
    snprintf(n[2], sizeof(n[2]), "%lld", (long long) a->priority);
    snprintf(n[3], sizeof(n[3]), "%lld", (long long) a->max_borrow);

    params[0] = a->app_id;
    params[1] = a->cluster_id;
    params[2] = n[0];
    params[3] = n[1];
    params[4] = n[2];
    params[5] = n[3];
    params[6] = a->profile;

    row = tga_db_json(insert
        ? "INSERT INTO applications AS a (app_id, cluster_id,"
          " guaranteed_quota, burst_quota, priority, max_borrow,"
          " cost_profile) VALUES ($1, $2, $3, $4, $5, $6, $7)"
          " RETURNING to_json(a)"
        : "UPDATE applications AS a SET guaranteed_quota = $3,"
          " burst_quota = $4, priority = $5, max_borrow = $6,"
          " cost_profile = $7, version = nextval('config_version_seq'),"
          " updated_at = now()"
          " WHERE app_id = $1 AND cluster_id = $2 RETURNING to_json(a)",
        7, params, &rc);

    if (rc == TGA_CONFLICT) {
        tga_reply_error(r, 409, "conflict", "application \"%s\" exists",
                        a->app_id);

    } else if (rc == TGA_NOT_FOUND) {
        tga_reply_error(r, 400, "bad_request", "no cost profile \"%s\"",
                        a->profile);
    }

    return row;
}


/* commits a change: event, commit, then Redis; replies with the row */
static void
tga_app_finish(tga_req_t *r, int status, const char *type, json_t *before,
    json_t *after)
{
    json_t      *row;
    const char  *app_id, *cluster_id;

    row = after ? after : before;
    app_id = json_string_value(json_object_get(row, "app_id"));
    cluster_id = json_string_value(json_object_get(row, "cluster_id"));

    if (tga_event(type, app_id, cluster_id, r, type, before, after) != TGA_OK
        || tga_db_commit() != TGA_OK)
    {
        tga_db_rollback();
        json_decref(after);
        return;
    }

    if (after) {
        tga_sync_app(after);
    } else {
        tga_sync_app_delete(before);
    }

    tga_reply(r, status, after);
}


void
tga_route_app_create(tga_req_t *r)
{
    json_t     *row;
    tga_app_t   a;

    memset(&a, 0, sizeof(a));
    a.old_guaranteed = -1;
    a.priority = 2;
    a.profile = "standard";

    if (tga_valid_fields(r, tga_app_fields) != TGA_OK
        || tga_valid_str(r, "app_id", TGA_ID_MAX_LEN, 1, 1, &a.app_id)
           != TGA_OK
        || tga_valid_str(r, "cluster_id", TGA_ID_MAX_LEN, 1, 1,
                         &a.cluster_id) != TGA_OK
        || tga_valid_int(r, "guaranteed_quota", 0, TGA_QUOTA_MAX, 1,
                         &a.guaranteed) != TGA_OK
        || tga_valid_int(r, "burst_quota", 0, TGA_QUOTA_MAX, 1, &a.burst)
           != TGA_OK
        || tga_app_read(r, &a) != TGA_OK
        || tga_db_begin() != TGA_OK)
    {
        return;
    }

    row = NULL;

    if (tga_app_check_capacity(r, &a) == TGA_OK) {
        row = tga_app_store(r, &a, 1);
    }

    if (row == NULL) {
        tga_db_rollback();
        return;
    }

    tga_app_finish(r, 201, "app.create", NULL, row);
}


/* begins a transaction and returns the locked row, or NULL (replied) */
static json_t *
tga_app_lock(tga_req_t *r)
{
    int          rc;
    json_t      *row;
    const char  *params[1];

    if (tga_valid_param(r, 0, "application id") != TGA_OK
        || tga_db_begin() != TGA_OK)
    {
        return NULL;
    }

    params[0] = r->params[0];
    row = tga_db_json("SELECT to_json(a) FROM applications a"
                      " WHERE app_id = $1 FOR UPDATE", 1, params, &rc);

    if (row == NULL) {
        tga_db_rollback();

        if (rc == TGA_NOT_FOUND) {
            tga_reply_error(r, 404, "not_found", "no application \"%s\"",
                            r->params[0]);
        }
    }

    return row;
}


/* applies the body to before's values, checks, stores, commits */
static void
tga_app_change(tga_req_t *r, json_t *before, tga_app_t *a, const char *type)
{
    json_t  *after;

    after = NULL;

    if (tga_app_read(r, a) == TGA_OK
        && tga_app_check_capacity(r, a) == TGA_OK)
    {
        after = tga_app_store(r, a, 0);
    }

    if (after == NULL) {
        tga_db_rollback();
        json_decref(before);
        return;
    }

    tga_app_finish(r, 200, type, before, after);
    json_decref(before);
}


/* PUT: the body replaces every setting; the cluster cannot change */
static int
tga_app_check_ids(tga_req_t *r, const tga_app_t *current)
{
    const char  *id;

    id = NULL;
    if (tga_valid_str(r, "app_id", 256, 0, 0, &id) == TGA_ERROR) {
        return TGA_ERROR;
    }

    if (id && strcmp(id, current->app_id) != 0) {
        tga_reply_error(r, 400, "bad_request",
                        "app_id in the body differs from the path");
        return TGA_ERROR;
    }

    id = NULL;
    if (tga_valid_str(r, "cluster_id", 256, 0, 0, &id) == TGA_ERROR) {
        return TGA_ERROR;
    }

    if (id && strcmp(id, current->cluster_id) != 0) {
        tga_reply_error(r, 409, "conflict",
                        "an application cannot move to another cluster; "
                        "delete it and create it there");
        return TGA_ERROR;
    }

    return TGA_OK;
}


void
tga_route_app_update(tga_req_t *r)
{
    json_t     *before;
    tga_app_t   a;

    if (tga_valid_fields(r, tga_app_fields) != TGA_OK
        || tga_valid_int(r, "guaranteed_quota", 0, TGA_QUOTA_MAX, 1,
                         &a.guaranteed) != TGA_OK
        || tga_valid_int(r, "burst_quota", 0, TGA_QUOTA_MAX, 1, &a.burst)
           != TGA_OK)
    {
        return;
    }

    before = tga_app_lock(r);
    if (before == NULL) {
        return;
    }

    tga_app_from_row(&a, before);
    a.priority = 2;
    a.max_borrow = 0;
    a.profile = "standard";

    if (tga_app_check_ids(r, &a) != TGA_OK) {
        tga_db_rollback();
        json_decref(before);
        return;
    }

    tga_app_change(r, before, &a, "app.update");
}


void
tga_route_app_quota(tga_req_t *r)
{
    json_t     *before;
    tga_app_t   a;

    if (tga_valid_fields(r, tga_quota_fields) != TGA_OK) {
        return;
    }

    if (json_object_size(r->body) == 0) {
        tga_reply_error(r, 400, "bad_request", "no quota field given");
        return;
    }

    before = tga_app_lock(r);
    if (before == NULL) {
        return;
    }

    tga_app_from_row(&a, before);
    tga_app_change(r, before, &a, "app.quota");
}


void
tga_route_app_delete(tga_req_t *r)
{
    json_t      *before;
    const char  *params[1];

    before = tga_app_lock(r);
    if (before == NULL) {
        return;
    }

    params[0] = r->params[0];

    if (tga_db_run("DELETE FROM applications WHERE app_id = $1", 1, params)
        != TGA_OK)
    {
        tga_db_rollback();
        json_decref(before);
        return;
    }

    tga_app_finish(r, 204, "app.delete", before, NULL);
    json_decref(before);
}


void
tga_route_app_get(tga_req_t *r)
{
    int          rc;
    json_t      *row;
    const char  *params[1];

    if (tga_valid_param(r, 0, "application id") != TGA_OK) {
        return;
    }

    params[0] = r->params[0];
    row = tga_db_json("SELECT to_json(a) FROM applications a"
                      " WHERE app_id = $1", 1, params, &rc);

    if (rc == TGA_NOT_FOUND) {
        tga_reply_error(r, 404, "not_found", "no application \"%s\"",
                        r->params[0]);
        return;
    }

    tga_reply(r, row ? 200 : 500, row);
}


void
tga_route_app_list(tga_req_t *r)
{
    char         prefix[256], cluster[256];
    const char  *params[2];

    if (tga_valid_query_id(r, "prefix", prefix, sizeof(prefix)) != TGA_OK
        || tga_valid_query_id(r, "cluster_id", cluster, sizeof(cluster))
           != TGA_OK)
    {
        return;
    }

    params[0] = prefix;
    params[1] = cluster;

    tga_reply_list(r, "SELECT * FROM applications"
                      " WHERE starts_with(app_id, $1)"
                      " AND ($2 = '' OR cluster_id = $2)",
                   "to_json(p)", "p.app_id", 2, params);
}
