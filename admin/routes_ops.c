/*
 * Copyright (C) Tollgate developers
 *
 * Operations that act on the runtime through Redis rather than on the
 * stored configuration: emergency mode, degradation overrides, borrow
 * and repay.  Emergency, borrow and repay run the gateways' own scripts
 * (redis/emergency.lua, borrow.lua, repay.lua: docs/redis-scripts.md),
 * so an operator's action obeys the same rules as a request.  Each is
 * recorded as an event.
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


static json_int_t
tga_hash_int(json_t *h, const char *name)
{
    const char  *s;

    s = json_string_value(json_object_get(h, name));

    return s ? (json_int_t) strtoll(s, NULL, 10) : 0;
}


static const char *
tga_hash_str(json_t *h, const char *name)
{
    const char  *s;

    s = json_string_value(json_object_get(h, name));

    return s ? s : "";
}


/*
 * The emergency hash as a request sees it (redis/emergency.lua): on
 * while "active" is 1 and until_ms is ahead; the hold keeps the usage
 * trigger off after an operator's "off".
 */
json_t *
tga_emergency_json(json_t *h)
{
    int         active;
    json_int_t  now_ms, until_ms, hold_ms;

    now_ms = tga_now_ms();
    until_ms = tga_hash_int(h, "until_ms");
    hold_ms = tga_hash_int(h, "hold_until_ms");
    active = strcmp(tga_hash_str(h, "active"), "1") == 0
             && until_ms > now_ms;

    return json_pack("{s:b, s:s, s:s, s:I, s:s, s:I}",
        "active", active,
        "mode", active ? tga_hash_str(h, "mode") : "off",
        "reason", tga_hash_str(h, "reason"),
        "until_ms", active ? until_ms : 0,
        "set_by", tga_hash_str(h, "set_by"),
        "hold_until_ms", hold_ms > now_ms ? hold_ms : 0);
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
    "action", "enable", "reason", "duration_s", NULL
};


/* "on", "off" or "auto"; NULL (replied) when invalid */
static const char *
tga_emergency_action(tga_req_t *r)
{
    json_t      *action, *enable;
    const char  *s;

    action = json_object_get(r->body, "action");
    enable = json_object_get(r->body, "enable");

    /* enable is the older spelling of on / off, kept for clients */
    if (action == NULL && json_is_boolean(enable)) {
        return json_is_true(enable) ? "on" : "off";
    }

    s = json_string_value(action);

    if (enable == NULL && s
        && (strcmp(s, "on") == 0 || strcmp(s, "off") == 0
            || strcmp(s, "auto") == 0))
    {
        return s;
    }

    tga_reply_error(r, 400, "bad_request", "give action (\"on\", \"off\" "
                    "or \"auto\") or enable (a boolean), not both");

    return NULL;
}


/*
 * One transaction: the state before, redis/emergency.lua, a version
 * bump, the notice, the state after.  The bump is what makes gateways
 * drop refusals they cached during the emergency (a priority-2
 * application is told to come back in a minute), so that "off" is felt
 * within a heartbeat, not when those refusals expire.
 */
static redisReply *
tga_emergency_run(const char *id, const char *action, const char *reason,
    const char *ttl_ms, const char *who)
{
    char              k_cluster[96], k_em[96], k_events[96], k_ver[96];
    tga_redis_eval_t  eval;

    /* the script's clock is the Redis server's (now_ms "") */
    const char  *args[] = { k_cluster, k_em, k_events, action, reason,
                            ttl_ms, who, "" };
    const char  *hget[] = { "HGETALL", k_em };
    const char  *incr[] = { "INCR", k_ver };
    const char  *publish[] = { "PUBLISH", "tg:config", id };
    const char **argv[] = { hget, eval.argv, incr, publish, hget };
    int          argc[] = { 2, 0, 2, 3, 2 };

    snprintf(k_cluster, sizeof(k_cluster), "tg:{%s}:cluster", id);
    snprintf(k_em, sizeof(k_em), "tg:{%s}:emergency", id);
    snprintf(k_events, sizeof(k_events), "tg:{%s}:events", id);
    snprintf(k_ver, sizeof(k_ver), "tg:{%s}:version", id);

    if (tga_redis_eval_init(&eval, "emergency", 3, 8, args) != TGA_OK) {
        return NULL;
    }

    argc[1] = eval.argc;

    return tga_redis_multi(5, argc, argv);
}


void
tga_route_emergency(tga_req_t *r)
{
    char         ttl_ms[24], type[64];
    json_t      *h, *before, *after;
    json_int_t   duration_s;
    const char  *action, *reason;
    redisReply  *reply, *script;

    reason = "";
    duration_s = TGA_EMERGENCY_DEFAULT_S;

    if (tga_valid_param(r, 0, "cluster id") != TGA_OK
        || tga_valid_fields(r, tga_emergency_fields) != TGA_OK
        || tga_valid_str(r, "reason", TGA_REASON_MAX_LEN, 0, 0, &reason)
           == TGA_ERROR
        || tga_valid_int(r, "duration_s", 1, TGA_EMERGENCY_MAX_S, 0,
                         &duration_s) == TGA_ERROR
        || (action = tga_emergency_action(r)) == NULL
        || tga_cluster_exists(r, r->params[0]) != TGA_OK)
    {
        return;
    }

    snprintf(ttl_ms, sizeof(ttl_ms), "%lld", (long long) duration_s * 1000);

    reply = tga_emergency_run(r->params[0], action, reason, ttl_ms, r->user);
    script = reply ? reply->element[1] : NULL;

    if (script == NULL || script->type != REDIS_REPLY_ARRAY
        || script->elements < 1
        || script->element[0]->type != REDIS_REPLY_INTEGER)
    {
        if (script && script->type == REDIS_REPLY_ERROR) {
            tga_log_error("msg=\"emergency script failed\" cluster=\"%s\" "
                          "error=\"%s\"", r->params[0], script->str);
        }

        freeReplyObject(reply);
        tga_reply_error(r, 503, "unavailable", "redis did not take the "
                        "emergency state; nothing was changed");
        return;
    }

    if (script->element[0]->integer != 0) {
        freeReplyObject(reply);
        tga_reply_error(r, 503, "unavailable", "redis does not hold "
                        "cluster \"%s\" yet; it is re-synced within a "
                        "second", r->params[0]);
        return;
    }

    h = tga_redis_hash_json(reply->element[0]);
    before = tga_emergency_json(h);
    json_decref(h);

    h = tga_redis_hash_json(reply->element[4]);
    after = tga_emergency_json(h);
    json_decref(h);

    freeReplyObject(reply);

    snprintf(type, sizeof(type), "cluster.emergency_%s", action);

    if (tga_event(type, NULL, r->params[0], r, reason, before, after)
        != TGA_OK)
    {
        tga_log_error("msg=\"emergency changed but not recorded\" "
                      "cluster=\"%s\" action=%s", r->params[0], action);
    }

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

    reply = tga_redis_script("admin_set_global", 1, 3, argv);
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
 * Runs redis/borrow.lua or redis/repay.lua for the application "app"
 * (its row); returns the script's {code, tokens, debt_tokens} or NULL.
 */
static redisReply *
tga_ledger_run(json_t *app, int borrow, const char *tokens, const char *who)
{
    char         k_cluster[96], k_app[160], k_pool[96], k_state[160],
                 k_events[96];
    const char  *cluster_id, *app_id;

    /* the scripts' clock is the Redis server's (now_ms "") */
    const char  *borrow_argv[] = { k_cluster, k_app, k_pool, k_state,
                                   k_events, tokens, "", who };
    const char  *repay_argv[] = { k_app, k_state, k_events, tokens, "",
                                  who };

    cluster_id = json_string_value(json_object_get(app, "cluster_id"));
    app_id = json_string_value(json_object_get(app, "app_id"));

    snprintf(k_cluster, sizeof(k_cluster), "tg:{%s}:cluster", cluster_id);
    snprintf(k_app, sizeof(k_app), "tg:{%s}:app:%s", cluster_id, app_id);
    snprintf(k_pool, sizeof(k_pool), "tg:{%s}:pool", cluster_id);
    snprintf(k_state, sizeof(k_state), "tg:{%s}:state:%s", cluster_id,
             app_id);
    snprintf(k_events, sizeof(k_events), "tg:{%s}:events", cluster_id);

    return borrow ? tga_redis_script("borrow", 5, 8, borrow_argv)
                  : tga_redis_script("repay", 3, 6, repay_argv);
}


/*
 * Borrow lends up to "tokens" (at most max_borrow, and only what the
 * debt room and the pool above its reserve allow); repay pays up to
 * "tokens" (absent: the whole debt) from the guaranteed balance.  Both
 * answer what was done, which may be less than asked, and the debt.
 */
static void
tga_ledger(tga_req_t *r, int borrow)
{
    int          rc;
    char         tokens_text[24];
    json_t      *app, *result;
    json_int_t   tokens, max_borrow, done, debt;
    const char  *reason, *params[1];
    redisReply  *reply;

    tokens = TGA_QUOTA_MAX;
    reason = "";

    if (tga_valid_param(r, 0, "application id") != TGA_OK
        || tga_valid_fields(r, tga_ledger_fields) != TGA_OK
        || tga_valid_int(r, "tokens", 1, TGA_QUOTA_MAX, borrow, &tokens)
           == TGA_ERROR
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

    if (borrow && tokens > max_borrow) {
        tga_reply_error(r, 400, "bad_request", "tokens (%lld) is over "
                        "max_borrow (%lld)", (long long) tokens,
                        (long long) max_borrow);
        json_decref(app);
        return;
    }

    snprintf(tokens_text, sizeof(tokens_text), "%lld", (long long) tokens);
    reply = tga_ledger_run(app, borrow, tokens_text, r->user);

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 3
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[0]->integer != 0)
    {
        if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements) {
            tga_reply_error(r, 503, "unavailable", "redis does not hold "
                            "application \"%s\" or its cluster yet; it is "
                            "re-synced within a second", r->params[0]);
        } else {
            tga_reply_error(r, 503, "unavailable", "redis did not run "
                            "the %s; nothing was changed",
                            borrow ? "borrow" : "repayment");
        }

        freeReplyObject(reply);
        json_decref(app);
        return;
    }

    done = (json_int_t) reply->element[1]->integer;
    debt = (json_int_t) reply->element[2]->integer;
    freeReplyObject(reply);

    result = json_pack("{s:s, s:O, s:I, s:I, s:I}",
                       "app_id", r->params[0],
                       "cluster_id", json_object_get(app, "cluster_id"),
                       "tokens", tokens, "granted", done, "debt", debt);

    if (tga_event(borrow ? "app.borrow" : "app.repay", r->params[0],
                  json_string_value(json_object_get(app, "cluster_id")),
                  r, reason, NULL, result) != TGA_OK)
    {
        tga_log_error("msg=\"%s done but not recorded\" app=\"%s\" "
                      "tokens=%lld", borrow ? "borrow" : "repayment",
                      r->params[0], (long long) done);
    }

    json_decref(app);
    tga_reply(r, 200, result);
}


void
tga_route_borrow(tga_req_t *r)
{
    tga_ledger(r, 1);
}


void
tga_route_repay(tga_req_t *r)
{
    tga_ledger(r, 0);
}
