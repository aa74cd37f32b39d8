/*
 * Copyright (C) Tollgate developers
 *
 * Operations that act on the runtime through Redis rather than on the
 * stored configuration: emergency mode, degradation overrides, borrow
 * and repay.  Each is recorded as an event.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "http.h"
#include "redis.h"
#include "routes.h"
#include "store.h"
#include "valid.h"


#define TGA_EMERGENCY_DEFAULT_S  300
#define TGA_EMERGENCY_MAX_S      86400
#define TGA_REASON_MAX_LEN       256


/* turns the hash's text fields into the API's types */
json_t *
tga_emergency_json(json_t *h)
{
    int          active;
    long long    until_ms;
    const char  *s;

    s = json_string_value(json_object_get(h, "until_ms"));
    until_ms = s ? strtoll(s, NULL, 10) : 0;

    /* an emergency whose deadline passed is over, whoever reads it */
    s = json_string_value(json_object_get(h, "active"));
    active = s && strcmp(s, "1") == 0
             && (until_ms == 0 || until_ms > tga_now_ms());

    s = json_string_value(json_object_get(h, "mode"));

    return json_pack("{s:b, s:s, s:s, s:I, s:s}",
        "active", active,
        "mode", s ? s : "auto",
        "reason", json_string_value(json_object_get(h, "reason"))
                  ? json_string_value(json_object_get(h, "reason")) : "",
        "until_ms", (json_int_t) until_ms,
        "set_by", json_string_value(json_object_get(h, "set_by"))
                  ? json_string_value(json_object_get(h, "set_by")) : "");
}


json_t *
tga_emergency_read(const char *cluster_id)
{
    char         key[96];
    json_t      *h, *e;
    const char  *argv[2];
    redisReply  *reply;

    snprintf(key, sizeof(key), "tg:{%s}:emergency", cluster_id);
    argv[0] = "HGETALL";
    argv[1] = key;

    reply = tga_redis_cmd(2, argv);
    h = tga_redis_hash_json(reply);
    freeReplyObject(reply);

    e = tga_emergency_json(h);
    json_decref(h);

    return e;
}


static int
tga_cluster_exists(tga_req_t *r, const char *id)
{
    int          found;
    PGresult    *res;
    const char  *params[1];

    params[0] = id;
    res = tga_db_exec("SELECT 1 FROM clusters WHERE cluster_id = $1",
                      1, params);
    if (res == NULL) {
        return TGA_ERROR;
    }

    found = PQntuples(res) > 0;
    PQclear(res);

    if (!found) {
        tga_reply_error(r, 404, "not_found", "no cluster \"%s\"", id);
        return TGA_ERROR;
    }

    return TGA_OK;
}


static const char *const  tga_emergency_fields[] = {
    "enable", "reason", "duration_s", NULL
};


void
tga_route_emergency(tga_req_t *r)
{
    char         k_em[96], k_ver[96], until[24];
    json_t      *enable, *before, *after;
    json_int_t   duration_s;
    const char  *reason, *argv[7];
    redisReply  *reply;

    reason = "";
    duration_s = TGA_EMERGENCY_DEFAULT_S;
    enable = json_object_get(r->body, "enable");

    if (tga_valid_param(r, 0, "cluster id") != TGA_OK
        || tga_valid_fields(r, tga_emergency_fields) != TGA_OK
        || tga_valid_str(r, "reason", TGA_REASON_MAX_LEN, 0, 0, &reason)
           == TGA_ERROR
        || tga_valid_int(r, "duration_s", 1, TGA_EMERGENCY_MAX_S, 0,
                         &duration_s) == TGA_ERROR)
    {
        return;
    }

    if (!json_is_boolean(enable)) {
        tga_reply_error(r, 400, "bad_request", "enable must be a boolean");
        return;
    }

    if (tga_cluster_exists(r, r->params[0]) != TGA_OK) {
        return;
    }

    snprintf(k_em, sizeof(k_em), "tg:{%s}:emergency", r->params[0]);
    snprintf(k_ver, sizeof(k_ver), "tg:{%s}:version", r->params[0]);
    snprintf(until, sizeof(until), "%lld", json_is_true(enable)
             ? (long long) (tga_now_ms() + duration_s * 1000) : 0LL);

    argv[0] = k_em;
    argv[1] = k_ver;
    argv[2] = json_is_true(enable) ? "1" : "0";
    argv[3] = reason;
    argv[4] = until;
    argv[5] = r->user;
    argv[6] = r->params[0];

    reply = tga_redis_script("emergency", 2, 7, argv);
    if (reply == NULL) {
        tga_reply_error(r, 503, "unavailable", "redis did not take the "
                        "emergency state; nothing was changed");
        return;
    }

    before = tga_redis_hash_json(reply);
    freeReplyObject(reply);

    after = tga_emergency_read(r->params[0]);
    (void) tga_event(json_is_true(enable) ? "cluster.emergency_on"
                                          : "cluster.emergency_off",
                     NULL, r->params[0], r, reason, before, after);

    json_decref(before);
    tga_reply(r, 200, after);
}


static const char *const  tga_degradation_fields[] = {
    "level", "reason", NULL
};


/* "0".."3" or "" for "auto"; NULL (replied) when invalid */
static const char *
tga_degradation_level(tga_req_t *r, char *buf, size_t size)
{
    json_t  *v;

    v = json_object_get(r->body, "level");

    if (json_is_string(v) && strcmp(json_string_value(v), "auto") == 0) {
        return "";
    }

    if (json_is_integer(v) && json_integer_value(v) >= 0
        && json_integer_value(v) <= 3)
    {
        snprintf(buf, size, "%d", (int) json_integer_value(v));
        return buf;
    }

    tga_reply_error(r, 400, "bad_request",
                    "level must be 0, 1, 2, 3 or \"auto\"");

    return NULL;
}


void
tga_route_degradation(tga_req_t *r)
{
    char         buf[8];
    json_t      *before, *after;
    const char  *level, *reason, *argv[3];
    redisReply  *reply;

    reason = "";

    if (strcmp(r->params[0], "*") != 0
        && tga_valid_param(r, 0, "gateway id") != TGA_OK)
    {
        return;
    }

    if (tga_valid_fields(r, tga_degradation_fields) != TGA_OK
        || tga_valid_str(r, "reason", TGA_REASON_MAX_LEN, 0, 0, &reason)
           == TGA_ERROR
        || (level = tga_degradation_level(r, buf, sizeof(buf))) == NULL)
    {
        return;
    }

    argv[0] = "tg:degradation";
    argv[1] = r->params[0];
    argv[2] = level;

    reply = tga_redis_script("set_global", 1, 3, argv);
    if (reply == NULL) {
        tga_reply_error(r, 503, "unavailable", "redis did not take the "
                        "override; nothing was changed");
        return;
    }

    before = json_pack("{s:s, s:s}", "gateway_id", r->params[0], "level",
                       reply->type == REDIS_REPLY_STRING ? reply->str
                                                         : "auto");
    after = json_pack("{s:s, s:s}", "gateway_id", r->params[0], "level",
                      *level ? level : "auto");
    freeReplyObject(reply);

    (void) tga_event("gateway.degradation", NULL, NULL, r, reason, before,
                     after);

    json_decref(before);
    tga_reply(r, 200, after);
}


/* borrow and repay -------------------------------------------------------- */

static const char *const  tga_ledger_fields[] = {
    "tokens", "reason", NULL
};


/*
 * Both need the bucket scripts redis/borrow.lua and redis/repay.lua,
 * which are another issue's: until they are embedded, the request is
 * validated and recorded, then answered 503.
 */
static void
tga_ledger(tga_req_t *r, const char *op, int tokens_required)
{
    int          rc;
    char         what[128];
    json_t      *app;
    json_int_t   tokens, max_borrow;
    const char  *reason, *params[1];

    tokens = 0;
    reason = "";

    if (tga_valid_param(r, 0, "application id") != TGA_OK
        || tga_valid_fields(r, tga_ledger_fields) != TGA_OK
        || tga_valid_int(r, "tokens", 1, TGA_QUOTA_MAX, tokens_required,
                         &tokens) == TGA_ERROR
        || tga_valid_str(r, "reason", TGA_REASON_MAX_LEN, 0, 0, &reason)
           == TGA_ERROR)
    {
        return;
    }

    params[0] = r->params[0];
    app = tga_db_json("SELECT to_json(a) FROM applications a"
                      " WHERE app_id = $1", 1, params, &rc);

    if (app == NULL) {
        if (rc == TGA_NOT_FOUND) {
            tga_reply_error(r, 404, "not_found", "no application \"%s\"",
                            r->params[0]);
        }
        return;
    }

    max_borrow = json_integer_value(json_object_get(app, "max_borrow"));

    if (tokens_required && tokens > max_borrow) {
        tga_reply_error(r, 400, "bad_request", "tokens (%lld) is over "
                        "max_borrow (%lld)", (long long) tokens,
                        (long long) max_borrow);
        json_decref(app);
        return;
    }

    snprintf(what, sizeof(what), "%s %lld tokens refused: redis/%s.lua "
             "is not installed", op, (long long) tokens, op);

    (void) tga_event(tokens_required ? "app.borrow" : "app.repay",
                     r->params[0],
                     json_string_value(json_object_get(app, "cluster_id")),
                     r, what, NULL, NULL);
    json_decref(app);

    tga_reply_error(r, 503, "unavailable", "%s needs redis/%s.lua, which "
                    "is not installed yet", op, op);
}


void
tga_route_borrow(tga_req_t *r)
{
    tga_ledger(r, "borrow", 1);
}


void
tga_route_repay(tga_req_t *r)
{
    tga_ledger(r, "repay", 0);
}
