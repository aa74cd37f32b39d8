/*
 * Copyright (C) Tollgate developers
 *
 * The event log: who changed what, with the object before and after.
 */


#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "http.h"
#include "store.h"
#include "valid.h"


int
tga_event(const char *type, const char *app_id, const char *cluster_id,
    const tga_req_t *r, const char *what, json_t *before, json_t *after)
{
    int          rc;
    char        *before_text, *after_text;
    const char  *params[7];

    before_text = before ? json_dumps(before, TGA_JSON_FLAGS) : NULL;
    after_text = after ? json_dumps(after, TGA_JSON_FLAGS) : NULL;

    params[0] = type;
    params[1] = app_id;
    params[2] = cluster_id;
    params[3] = r->user;
    params[4] = what;
    params[5] = before_text;
    params[6] = after_text;

    rc = tga_db_run("INSERT INTO events (type, app_id, cluster_id, details)"
                    " VALUES ($1, $2, $3, jsonb_build_object("
                    "  'who', $4::text, 'what', $5::text,"
                    "  'before', $6::jsonb, 'after', $7::jsonb))",
                    7, params);

    free(before_text);
    free(after_text);

    return rc;
}


void
tga_route_events(tga_req_t *r)
{
    char         app[256], cluster[256], type[256];
    const char  *params[3];

    if (tga_valid_query_id(r, "app_id", app, sizeof(app)) != TGA_OK
        || tga_valid_query_id(r, "cluster_id", cluster, sizeof(cluster))
           != TGA_OK
        || tga_valid_query_id(r, "type", type, sizeof(type)) != TGA_OK)
    {
        return;
    }

    params[0] = app;
    params[1] = cluster;
    params[2] = type;

    tga_reply_list(r, "SELECT * FROM events"
                      " WHERE ($1 = '' OR app_id = $1)"
                      " AND ($2 = '' OR cluster_id = $2)"
                      " AND ($3 = '' OR type = $3)",
                   "json_build_object('id', p.id, 'type', p.type,"
                   " 'app_id', p.app_id, 'cluster_id', p.cluster_id,"
                   " 'details', p.details, 'created_at', p.created_at)",
                   "p.id DESC", 3, params);
}
