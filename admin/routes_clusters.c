/*
 * Copyright (C) Tollgate developers
 *
 * /api/v1/clusters and /api/v1/profiles: storage clusters and cost
 * profiles.
 */


#include <stdio.h>
#include <string.h>

#include "db.h"
#include "http.h"
#include "routes.h"
#include "store.h"
#include "valid.h"


/* a cluster row "c" with the sum of its guaranteed quotas */
#define TGA_CLUSTER_JSON_OF(c)                                               \
    "json_build_object('cluster_id', " c ".cluster_id,"                      \
    " 'capacity', " c ".capacity, 'reserved_ratio', " c ".reserved_ratio,"   \
    " 'version', " c ".version, 'created_at', " c ".created_at,"             \
    " 'updated_at', " c ".updated_at, 'guaranteed_limit',"                   \
    "   floor(" c ".capacity * (1 - " c ".reserved_ratio))::bigint,"         \
    " 'guaranteed_total', (SELECT COALESCE(sum(guaranteed_quota), 0)"        \
    "   FROM applications a WHERE a.cluster_id = " c ".cluster_id),"         \
    " 'app_count', (SELECT count(*) FROM applications a"                     \
    "   WHERE a.cluster_id = " c ".cluster_id))"


void
tga_route_cluster_list(tga_req_t *r)
{
    tga_reply_list(r, "SELECT * FROM clusters",
                   TGA_CLUSTER_JSON_OF("p"), "p.cluster_id", 0, NULL);
}


static json_t *
tga_cluster_read(const char *id, int *rc)
{
    const char  *params[1];

    params[0] = id;

    return tga_db_json("SELECT " TGA_CLUSTER_JSON_OF("c")
                       " FROM clusters c WHERE c.cluster_id = $1",
                       1, params, rc);
}


void
tga_route_cluster_get(tga_req_t *r)
{
    int      rc;
    json_t  *row;

    if (tga_valid_param(r, 0, "cluster id") != TGA_OK) {
        return;
    }

    row = tga_cluster_read(r->params[0], &rc);

    if (row == NULL) {
        if (rc == TGA_NOT_FOUND) {
            tga_reply_error(r, 404, "not_found", "no cluster \"%s\"",
                            r->params[0]);
        }
        return;
    }

    json_object_set_new(row, "emergency", tga_emergency_read(r->params[0]));
    tga_reply(r, 200, row);
}


static const char *const  tga_cluster_fields[] = {
    "capacity", "reserved_ratio", NULL
};


/* reserved_ratio: a number in [0, 0.9], as decimal text for SQL */
static int
tga_cluster_ratio(tga_req_t *r, char *out, size_t size)
{
    json_t  *v;
    double   ratio;

    v = json_object_get(r->body, "reserved_ratio");
    ratio = v ? json_number_value(v) : 0.1;

    if ((v && !json_is_number(v)) || ratio < 0 || ratio > 0.9) {
        tga_reply_error(r, 400, "bad_request",
                        "reserved_ratio must be a number in [0, 0.9]");
        return TGA_ERROR;
    }

    snprintf(out, size, "%.4f", ratio);

    return TGA_OK;
}


/*
 * Stores the cluster and returns its row, or NULL with the reply set.
 * The capacity check reads the sum of guaranteed quotas after the write,
 * inside the transaction, so the row lock covers it.
 */
static json_t *
tga_cluster_store(tga_req_t *r, const char *capacity, const char *ratio)
{
    int          rc;
    json_t      *row;
    json_int_t   sum, limit;
    const char  *params[3];

    params[0] = r->params[0];
    params[1] = capacity;
    params[2] = ratio;

    if (tga_db_run("INSERT INTO clusters AS c (cluster_id, capacity,"
                   " reserved_ratio) VALUES ($1, $2, $3)"
                   " ON CONFLICT (cluster_id) DO UPDATE SET"
                   " capacity = $2, reserved_ratio = $3,"
                   " version = nextval('config_version_seq'),"
                   " updated_at = now()", 3, params) != TGA_OK)
    {
        return NULL;
    }

    row = tga_cluster_read(r->params[0], &rc);
    if (row == NULL) {
        return NULL;
    }

    sum = json_integer_value(json_object_get(row, "guaranteed_total"));
    limit = json_integer_value(json_object_get(row, "guaranteed_limit"));

    if (sum > limit && !tga_valid_force(r)) {
        tga_reply_error(r, 409, "conflict",
                        "guaranteed quotas sum to %lld, over capacity x "
                        "(1 - reserved) = %lld; add force=true to accept",
                        (long long) sum, (long long) limit);
        json_decref(row);
        return NULL;
    }

    return row;
}


void
tga_route_cluster_put(tga_req_t *r)
{
    int          rc;
    char         capacity[24], ratio[24];
    json_t      *before, *after;
    json_int_t   cap;

    if (tga_valid_param(r, 0, "cluster id") != TGA_OK
        || tga_valid_fields(r, tga_cluster_fields) != TGA_OK
        || tga_valid_int(r, "capacity", 1, TGA_QUOTA_MAX, 1, &cap) != TGA_OK
        || tga_cluster_ratio(r, ratio, sizeof(ratio)) != TGA_OK
        || tga_db_begin() != TGA_OK)
    {
        return;
    }

    snprintf(capacity, sizeof(capacity), "%lld", (long long) cap);

    before = tga_cluster_read(r->params[0], &rc);
    after = tga_cluster_store(r, capacity, ratio);

    if (after == NULL
        || tga_event(before ? "cluster.update" : "cluster.create", NULL,
                     r->params[0], r, "cluster.put", before, after) != TGA_OK
        || tga_db_commit() != TGA_OK)
    {
        tga_db_rollback();
        json_decref(before);
        json_decref(after);
        return;
    }

    tga_sync_cluster(after);
    tga_reply(r, before ? 200 : 201, after);
    json_decref(before);
}


void
tga_route_profile_list(tga_req_t *r)
{
    tga_reply_list(r, "SELECT * FROM cost_profiles", "to_json(p)", "p.name",
                   0, NULL);
}


static const char *const  tga_profile_fields[] = {
    "base", "bandwidth", "quantum", NULL
};


void
tga_route_profile_put(tga_req_t *r)
{
    int          rc;
    char         n[3][24];
    json_t      *before, *after;
    json_int_t   base, bandwidth, quantum;
    const char  *params[4];

    if (tga_valid_param(r, 0, "profile name") != TGA_OK
        || tga_valid_fields(r, tga_profile_fields) != TGA_OK
        || tga_valid_int(r, "base", 0, 1000000, 1, &base) != TGA_OK
        || tga_valid_int(r, "bandwidth", 0, 1000000, 1, &bandwidth)
           != TGA_OK
        || tga_valid_int(r, "quantum", 1, 1 << 30, 1, &quantum) != TGA_OK
        || tga_db_begin() != TGA_OK)
    {
        return;
    }

    snprintf(n[0], sizeof(n[0]), "%lld", (long long) base);
    snprintf(n[1], sizeof(n[1]), "%lld", (long long) bandwidth);
    snprintf(n[2], sizeof(n[2]), "%lld", (long long) quantum);
    params[0] = r->params[0];
    params[1] = n[0];
    params[2] = n[1];
    params[3] = n[2];

    before = tga_db_json("SELECT to_json(p) FROM cost_profiles p"
                         " WHERE name = $1 FOR UPDATE", 1, params, &rc);
    after = tga_db_json("INSERT INTO cost_profiles AS p (name, base,"
                        " bandwidth, quantum) VALUES ($1, $2, $3, $4)"
                        " ON CONFLICT (name) DO UPDATE SET base = $2,"
                        " bandwidth = $3, quantum = $4,"
                        " version = nextval('config_version_seq')"
                        " RETURNING to_json(p)", 4, params, &rc);

    if (after == NULL
        || tga_event("profile.put", NULL, NULL, r, "profile.put", before,
                     after) != TGA_OK
        || tga_db_commit() != TGA_OK)
    {
        tga_db_rollback();
        json_decref(before);
        json_decref(after);
        return;
    }

    tga_sync_profile(after);
    tga_reply(r, before ? 200 : 201, after);
    json_decref(before);
}
