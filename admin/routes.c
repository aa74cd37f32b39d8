/*
 * Copyright (C) Tollgate developers
 *
 * The route table, and the routes of health, documentation, login and
 * users.
 */


#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "db.h"
#include "http.h"
#include "live.h"
#include "redis.h"
#include "routes.h"
#include "store.h"
#include "valid.h"


#define V       TGA_ROLE_VIEWER
#define O       TGA_ROLE_OPERATOR
#define A       TGA_ROLE_ADMIN
#define PUBLIC  TGA_ROLE_NONE

const tga_route_t  tga_routes[] = {
    { TGA_GET,    "/healthz",                         PUBLIC,
      tga_route_healthz },
    { TGA_GET,    "/api/v1/openapi.yaml",             PUBLIC,
      tga_route_openapi },
    { TGA_POST,   "/api/v1/auth/login",               PUBLIC,
      tga_route_login },
    { TGA_GET,    "/api/v1/auth/me",                  V, tga_route_me },
    { TGA_GET,    "/api/v1/users",                    A,
      tga_route_user_list },
    { TGA_POST,   "/api/v1/users",                    A,
      tga_route_user_create },
    { TGA_DELETE, "/api/v1/users/:name",              A,
      tga_route_user_delete },
    { TGA_GET,    "/api/v1/clusters",                 V,
      tga_route_cluster_list },
    { TGA_GET,    "/api/v1/clusters/:id",             V,
      tga_route_cluster_get },
    { TGA_PUT,    "/api/v1/clusters/:id",             A,
      tga_route_cluster_put },
    { TGA_POST,   "/api/v1/clusters/:id/emergency",   O,
      tga_route_emergency },
    { TGA_GET,    "/api/v1/profiles",                 V,
      tga_route_profile_list },
    { TGA_PUT,    "/api/v1/profiles/:name",           A,
      tga_route_profile_put },
    { TGA_GET,    "/api/v1/apps",                     V,
      tga_route_app_list },
    { TGA_POST,   "/api/v1/apps",                     O,
      tga_route_app_create },
    { TGA_GET,    "/api/v1/apps/:id",                 V,
      tga_route_app_get },
    { TGA_PUT,    "/api/v1/apps/:id",                 O,
      tga_route_app_update },
    { TGA_DELETE, "/api/v1/apps/:id",                 O,
      tga_route_app_delete },
    { TGA_PATCH,  "/api/v1/apps/:id/quota",           O,
      tga_route_app_quota },
    { TGA_POST,   "/api/v1/apps/:id/borrow",          O,
      tga_route_borrow },
    { TGA_POST,   "/api/v1/apps/:id/repay",           O,
      tga_route_repay },
    { TGA_GET,    "/api/v1/gateways",                 V,
      tga_route_gateways },
    { TGA_PUT,    "/api/v1/gateways/:id/degradation", O,
      tga_route_degradation },
    { TGA_GET,    "/api/v1/metrics/realtime",         V,
      tga_route_realtime },
    { TGA_GET,    "/api/v1/metrics/history",          V,
      tga_route_history },
    { TGA_GET,    "/api/v1/events",                   V,
      tga_route_events },
    { 0, NULL, 0, NULL }
};


void
tga_route_healthz(tga_req_t *r)
{
    int  pg_ok, redis_ok;

    pg_ok = tga_db_ping() == TGA_OK;
    redis_ok = tga_redis_ping() == TGA_OK;

    tga_reply(r, pg_ok && redis_ok ? 200 : 503,
              json_pack("{s:s, s:s, s:s}",
                        "status", pg_ok && redis_ok ? "ok" : "degraded",
                        "postgres", pg_ok ? "ok" : "down",
                        "redis", redis_ok ? "ok" : "down"));
}


void
tga_route_openapi(tga_req_t *r)
{
    r->status = 200;
    r->raw = tga_openapi_yaml;
    r->raw_type = "application/yaml";
}


static const char *const  tga_login_fields[] = {
    "username", "password", NULL
};


void
tga_route_login(tga_req_t *r)
{
    int          rc;
    char        *token;
    int64_t      expires_s;
    tga_role_e   role;
    const char  *user, *password;

    if (tga_valid_fields(r, tga_login_fields) != TGA_OK
        || tga_valid_str(r, "username", TGA_ID_MAX_LEN, 0, 1, &user)
           != TGA_OK
        || tga_valid_str(r, "password", 1024, 0, 1, &password) != TGA_OK)
    {
        return;
    }

    rc = tga_auth_login(user, password, &role);

    if (rc == TGA_NOT_FOUND) {
        tga_log_info("msg=\"login refused\" user=\"%.64s\"", user);
        tga_reply_error(r, 401, "unauthorized", "bad user name or password");
        return;
    }

    token = rc == TGA_OK ? tga_auth_issue(user, role, &expires_s) : NULL;
    if (token == NULL) {
        return;
    }

    tga_reply(r, 200, json_pack("{s:s, s:I, s:s}", "token", token,
                                "expires_at", (json_int_t) expires_s,
                                "role", tga_role_name(role)));
    free(token);
}


void
tga_route_me(tga_req_t *r)
{
    tga_reply(r, 200, json_pack("{s:s, s:s}", "username", r->user,
                                "role", tga_role_name(r->role)));
}


void
tga_route_user_list(tga_req_t *r)
{
    tga_reply_list(r, "SELECT * FROM users",
                   "json_build_object('username', p.username,"
                   " 'role', p.role, 'created_at', p.created_at)",
                   "p.username", 0, NULL);
}


static const char *const  tga_user_fields[] = {
    "username", "password", "role", NULL
};


void
tga_route_user_create(tga_req_t *r)
{
    int          rc;
    char         hash[TGA_AUTH_HASH_LEN];
    json_t      *row;
    const char  *user, *password, *role, *params[3];

    if (tga_valid_fields(r, tga_user_fields) != TGA_OK
        || tga_valid_str(r, "username", TGA_ID_MAX_LEN, 1, 1, &user)
           != TGA_OK
        || tga_valid_str(r, "password", 1024, 0, 1, &password) != TGA_OK
        || tga_valid_str(r, "role", 16, 0, 1, &role) != TGA_OK)
    {
        return;
    }

    if (strlen(password) < 8 || tga_role_parse(role) == TGA_ROLE_NONE) {
        tga_reply_error(r, 400, "bad_request", "password needs 8 bytes or "
                        "more, role one of viewer, operator, admin");
        return;
    }

    if (tga_auth_hash(password, hash) != TGA_OK || tga_db_begin() != TGA_OK)
    {
        return;
    }

    params[0] = user;
    params[1] = hash;
    params[2] = role;

    row = tga_db_json("INSERT INTO users (username, password_hash, role)"
                      " VALUES ($1, $2, $3) RETURNING json_build_object("
                      " 'username', username, 'role', role,"
                      " 'created_at', created_at)", 3, params, &rc);

    if (row == NULL
        || tga_event("user.create", NULL, NULL, r, "user.create", NULL, row)
           != TGA_OK
        || tga_db_commit() != TGA_OK)
    {
        tga_db_rollback();
        json_decref(row);

        if (rc == TGA_CONFLICT) {
            tga_reply_error(r, 409, "conflict", "user \"%s\" exists", user);
        }
        return;
    }

    tga_reply(r, 201, row);
}


void
tga_route_user_delete(tga_req_t *r)
{
    int          rc;
    json_t      *row;
    const char  *params[1];

    if (tga_valid_param(r, 0, "user name") != TGA_OK) {
        return;
    }

    if (strcmp(r->params[0], r->user) == 0) {
        tga_reply_error(r, 409, "conflict", "a user cannot delete itself");
        return;
    }

    if (tga_db_begin() != TGA_OK) {
        return;
    }

    params[0] = r->params[0];
    row = tga_db_json("DELETE FROM users WHERE username = $1"
                      " RETURNING json_build_object('username', username,"
                      " 'role', role)", 1, params, &rc);

    if (row == NULL
        || tga_event("user.delete", NULL, NULL, r, "user.delete", row, NULL)
           != TGA_OK
        || tga_db_commit() != TGA_OK)
    {
        tga_db_rollback();
        json_decref(row);

        if (rc == TGA_NOT_FOUND) {
            tga_reply_error(r, 404, "not_found", "no user \"%s\"",
                            r->params[0]);
        }
        return;
    }

    json_decref(row);
    tga_reply(r, 204, NULL);
}
