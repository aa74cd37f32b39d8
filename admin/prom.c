/*
 * Copyright (C) Tollgate developers
 *
 * Each query lives in a slot of a fixed table, never freed: libwebsockets
 * may call a client connection back once more after it reported an
 * error or completion, and a slot outlives that.  A slot remembers the
 * client connection it belongs to, so a late callback of a connection
 * whose slot was reused is ignored.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "prom.h"


#define TGA_PROM_SLOTS          16
#define TGA_PROM_TIMEOUT_S      5
#define TGA_PROM_BODY_MAX       (8 * 1024 * 1024)
#define TGA_PROM_PATH_MAX       4096


typedef struct {
    int                   busy;
    int                   starting;     /* inside connect: no resume */
    struct lws           *wsi;
    tga_req_t            *req;          /* NULL once the asker is gone */
    char                  metric[32];
    char                  path[TGA_PROM_PATH_MAX];
    char                 *body;
    size_t                body_len;
    lws_sorted_usec_list_t  deadline;
} tga_prom_slot_t;


static struct lws_context  *tga_prom_ctx;
static char                 tga_prom_host[256];
static char                 tga_prom_prefix[256];   /* path before /api */
static int                  tga_prom_port;
static tga_prom_slot_t      tga_prom_slots[TGA_PROM_SLOTS];


int
tga_prom_init(struct lws_context *ctx, const char *url)
{
    int          port;
    char         copy[512];
    const char  *prot, *ads, *path;

    tga_prom_ctx = ctx;

    if (url[0] == '\0') {
        return TGA_OK;
    }

    snprintf(copy, sizeof(copy), "%s", url);

    if (lws_parse_uri(copy, &prot, &ads, &port, &path)
        || strcmp(prot, "http") != 0 || ads[0] == '\0')
    {
        tga_log_error("msg=\"prometheus url must be http://host:port[/path]"
                      "\" url=\"%s\"", url);
        return TGA_ERROR;
    }

    snprintf(tga_prom_host, sizeof(tga_prom_host), "%s", ads);
    snprintf(tga_prom_prefix, sizeof(tga_prom_prefix), "%s", path);
    tga_prom_prefix[strcspn(tga_prom_prefix, "?")] = '\0';
    if (tga_prom_prefix[0]
        && tga_prom_prefix[strlen(tga_prom_prefix) - 1] == '/')
    {
        tga_prom_prefix[strlen(tga_prom_prefix) - 1] = '\0';
    }

    tga_prom_port = port;

    return TGA_OK;
}


int
tga_prom_enabled(void)
{
    return tga_prom_host[0] != '\0';
}


/* application/x-www-form-urlencoded, as a query string wants */
static int
tga_prom_escape(char *out, size_t size, const char *in)
{
    size_t       n;
    const char  *hex = "0123456789ABCDEF";

    for (n = 0; *in; in++) {
        if (n + 4 > size) {
            return TGA_ERROR;
        }

        if ((*in >= 'a' && *in <= 'z') || (*in >= 'A' && *in <= 'Z')
            || (*in >= '0' && *in <= '9') || strchr("-_.~", *in))
        {
            out[n++] = *in;

        } else {
            out[n++] = '%';
            out[n++] = hex[(unsigned char) *in >> 4];
            out[n++] = hex[(unsigned char) *in & 15];
        }
    }

    out[n] = '\0';

    return TGA_OK;
}


/* the reply of the asker, and the wake-up that sends it */
static void
tga_prom_finish(tga_prom_slot_t *q, int status, json_t *reply)
{
    if (q->req == NULL) {
        json_decref(reply);
        return;
    }

    q->req->status = status;
    json_decref(q->req->reply);
    q->req->reply = reply;

    /* a failure inside connect is answered by the handler itself */
    if (!q->starting) {
        tga_http_resume(q->req);
    }

    q->req = NULL;
}


static void
tga_prom_fail(tga_prom_slot_t *q, const char *why)
{
    if (q->req == NULL) {
        return;
    }

    tga_log_warn("msg=\"prometheus query failed\" host=\"%s:%d\" "
                 "error=\"%s\"", tga_prom_host, tga_prom_port, why);

    tga_prom_finish(q, 503, json_pack("{s:s, s:s}", "error", "unavailable",
                                      "message", why));
}


static void
tga_prom_release(tga_prom_slot_t *q)
{
    lws_sul_schedule(tga_prom_ctx, 0, &q->deadline, NULL,
                     LWS_SET_TIMER_USEC_CANCEL);
    free(q->body);
    q->body = NULL;
    q->body_len = 0;
    q->wsi = NULL;
    q->busy = 0;
}


/* a matrix result as the API's series: [{labels, points}] */
static json_t *
tga_prom_series(json_t *result)
{
    size_t       i, j;
    json_t      *series, *item, *labels, *points, *v, *pair;
    const char  *s;

    series = json_array();

    json_array_foreach(result, i, item) {
        labels = json_object();
        s = json_string_value(json_object_get(json_object_get(item,
                                                              "metric"),
                                              "cluster"));
        if (s) {
            json_object_set_new(labels, "cluster_id", json_string(s));
        }

        s = json_string_value(json_object_get(json_object_get(item,
                                                              "metric"),
                                              "app"));
        if (s) {
            json_object_set_new(labels, "app_id", json_string(s));
        }

        points = json_array();

        json_array_foreach(json_object_get(item, "values"), j, pair) {
            v = json_array_get(pair, 1);
            s = json_string_value(v);

            /* NaN (a rate of nothing over nothing) is no point */
            if (s == NULL || strcmp(s, "NaN") == 0) {
                continue;
            }

            json_array_append_new(points, json_pack("[I, f]",
                (json_int_t) json_number_value(json_array_get(pair, 0)),
                strtod(s, NULL)));
        }

        json_array_append_new(series, json_pack("{s:o, s:o}", "labels",
                                                labels, "points", points));
    }

    return series;
}


static void
tga_prom_complete(tga_prom_slot_t *q, int http_status)
{
    json_t        *doc, *result;
    json_error_t   err;

    doc = json_loadb(q->body ? q->body : "", q->body_len, 0, &err);
    result = json_object_get(json_object_get(doc, "data"), "result");

    if (http_status != 200 || !json_is_array(result)) {
        tga_log_warn("msg=\"prometheus answered an error\" status=%d "
                     "error=\"%s\"", http_status,
                     json_string_value(json_object_get(doc, "error"))
                     ? json_string_value(json_object_get(doc, "error"))
                     : "no matrix in the answer");
        json_decref(doc);
        tga_prom_finish(q, 503, json_pack("{s:s, s:s}", "error",
                                          "unavailable", "message",
                                          "prometheus did not answer the "
                                          "query"));
        return;
    }

    tga_prom_finish(q, 200, json_pack("{s:s, s:s, s:o}",
                                      "source", "prometheus",
                                      "metric", q->metric,
                                      "series", tga_prom_series(result)));
    json_decref(doc);
}


static int
tga_prom_read(tga_prom_slot_t *q, const char *in, size_t len)
{
    char  *grown;

    if (q->body_len + len > TGA_PROM_BODY_MAX) {
        tga_prom_fail(q, "the answer is over 8 MiB");
        return -1;
    }

    grown = realloc(q->body, q->body_len + len + 1);
    if (grown == NULL) {
        tga_prom_fail(q, "out of memory");
        return -1;
    }

    memcpy(grown + q->body_len, in, len);
    q->body = grown;
    q->body_len += len;
    q->body[q->body_len] = '\0';

    return 0;
}


int
tga_prom_callback(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len)
{
    int               n;
    char              buf[LWS_PRE + 4096], *p;
    tga_prom_slot_t  *q;

    q = user;

    if (q == NULL || q < tga_prom_slots
        || q >= tga_prom_slots + TGA_PROM_SLOTS || q->wsi != wsi)
    {
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }

    switch (reason) {

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        tga_prom_fail(q, in ? (const char *) in : "connection failed");
        tga_prom_release(q);
        return 0;

    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
        p = buf + LWS_PRE;
        n = sizeof(buf) - LWS_PRE;
        return lws_http_client_read(wsi, &p, &n) < 0 ? -1 : 0;

    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        return tga_prom_read(q, in, len);

    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        tga_prom_complete(q, (int) lws_http_client_http_response(wsi));
        return 0;

    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        /* closed before completion, if the asker still waits */
        tga_prom_fail(q, "the connection closed before the answer");
        tga_prom_release(q);
        return 0;

    default:
        break;
    }

    return lws_callback_http_dummy(wsi, reason, user, in, len);
}


/*
 * The asker is answered at the deadline, whatever the client connection
 * is doing (lws's own timeouts for a server that never answers are
 * longer), and the connection is closed at the next timeout check.
 */
static void
tga_prom_expired(lws_sorted_usec_list_t *sul)
{
    tga_prom_slot_t  *q;

    q = lws_container_of(sul, tga_prom_slot_t, deadline);

    tga_prom_fail(q, "no complete answer within 5 s");

    if (q->wsi) {
        lws_set_timeout(q->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
}


int
tga_prom_query_range(tga_req_t *r, const char *metric, const char *promql,
    int64_t start_s, int64_t end_s, int64_t step_s)
{
    int                               i;
    char                              query[2048];
    struct lws                      *wsi;
    tga_prom_slot_t                  *q;
    struct lws_client_connect_info    ci;

    for (i = 0, q = NULL; i < TGA_PROM_SLOTS && q == NULL; i++) {
        if (!tga_prom_slots[i].busy) {
            q = &tga_prom_slots[i];
        }
    }

    if (q == NULL) {
        tga_reply_error(r, 503, "unavailable", "%d history queries are "
                        "already waiting for prometheus", TGA_PROM_SLOTS);
        return TGA_ERROR;
    }

    if (tga_prom_escape(query, sizeof(query), promql) != TGA_OK) {
        tga_reply_error(r, 500, "internal", "query too long");
        return TGA_ERROR;
    }

    memset(q, 0, sizeof(*q));
    snprintf(q->metric, sizeof(q->metric), "%s", metric);
    snprintf(q->path, sizeof(q->path), "/%s%sapi/v1/query_range?query=%s"
             "&start=%lld&end=%lld&step=%lld", tga_prom_prefix,
             tga_prom_prefix[0] ? "/" : "", query, (long long) start_s,
             (long long) end_s, (long long) step_s);

    memset(&ci, 0, sizeof(ci));
    ci.context = tga_prom_ctx;
    ci.address = tga_prom_host;
    ci.port = tga_prom_port;
    ci.path = q->path;
    ci.host = tga_prom_host;
    ci.origin = tga_prom_host;
    ci.method = "GET";
    ci.protocol = TGA_PROM_PROTOCOL;
    ci.local_protocol_name = TGA_PROM_PROTOCOL;
    ci.userdata = q;
    ci.pwsi = &q->wsi;

    q->busy = 1;
    q->req = r;
    q->starting = 1;

    wsi = lws_client_connect_via_info(&ci);
    q->starting = 0;

    if (q->req == NULL) {
        /* refused inside connect: the reply is set */
        return TGA_ERROR;
    }

    if (wsi == NULL) {
        q->req = NULL;
        tga_prom_release(q);
        tga_reply_error(r, 503, "unavailable", "cannot connect to "
                        "prometheus at %s:%d", tga_prom_host, tga_prom_port);
        return TGA_ERROR;
    }

    lws_sul_schedule(tga_prom_ctx, 0, &q->deadline, tga_prom_expired,
                     TGA_PROM_TIMEOUT_S * LWS_US_PER_SEC);

    r->pending = 1;

    return TGA_OK;
}


void
tga_prom_cancel(tga_req_t *r)
{
    int  i;

    for (i = 0; i < TGA_PROM_SLOTS; i++) {
        if (tga_prom_slots[i].req == r) {
            tga_prom_slots[i].req = NULL;
        }
    }
}
