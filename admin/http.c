/*
 * Copyright (C) Tollgate developers
 *
 * One libwebsockets protocol serves the REST API, the static dashboard
 * and the WebSocket.  A request's checks run in the order a client can
 * act on: route (404/405), token (401), role (403), media type (415),
 * size (413), then the body (400).  A refused request that carries a
 * body is still read to its end (up to TGA_DRAIN_MAX_BYTES), so the
 * client reads our answer rather than a reset connection.
 */


#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libwebsockets.h>

#include "auth.h"
#include "http.h"
#include "live.h"
#include "prom.h"
#include "store.h"


#define TGA_DRAIN_MAX_BYTES  (16 * 1024 * 1024)
#define TGA_PATH_MAX         512
#define TGA_TICK_US          LWS_US_PER_SEC


typedef struct {
    tga_req_t             req;
    char                  path[TGA_PATH_MAX];
    char                  params[2][256];
    const tga_route_t    *route;

    char                 *body;
    size_t                body_len;
    int                   refused;          /* req.reply holds the error */
    int                   close;
    int                   resumed;          /* a pending reply is set */

    unsigned char        *out;              /* LWS_PRE + response body */
    size_t                out_len;

    int                   ws;
    uint64_t              ws_seq;           /* last snapshot sent */
} tga_pss_t;


static const tga_config_t     *tga_http_cf;
static struct lws_context     *tga_ctx;
static lws_sorted_usec_list_t  tga_tick_sul;
static volatile sig_atomic_t   tga_stopping;
static const struct lws_protocols  *tga_ws_protocol;


static const char *tga_method_names[] = {
    "GET", "POST", "PUT", "PATCH", "DELETE", "OTHER"
};


/* replies ---------------------------------------------------------------- */

void
tga_reply(tga_req_t *r, int status, json_t *body)
{
    json_decref(r->reply);
    free(r->raw_owned);
    r->raw_owned = NULL;
    r->raw = NULL;
    r->status = status;
    r->reply = body;
}


void
tga_reply_text(tga_req_t *r, int status, char *json_text)
{
    tga_reply(r, status, NULL);
    free(r->raw_owned);
    r->raw_owned = json_text;
    r->raw = json_text;
    r->raw_type = "application/json";
}


void
tga_reply_error(tga_req_t *r, int status, const char *code,
    const char *fmt, ...)
{
    char     msg[256];
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    tga_reply(r, status, json_pack("{s:s, s:s}", "error", code,
                                   "message", msg));
}


const char *
tga_req_arg(tga_req_t *r, const char *name, char *buf, int size)
{
    char  key[64];

    snprintf(key, sizeof(key), "%s=", name);

    return lws_get_urlarg_by_name(r->conn, key, buf, size);
}


static void
tga_pss_clear(tga_pss_t *pss)
{
    json_decref(pss->req.body);
    json_decref(pss->req.reply);
    free(pss->req.raw_owned);
    free(pss->body);
    free(pss->out);
    memset(pss, 0, sizeof(*pss));
}


/* Serializes the reply, writes the headers, and asks to write the body */
static int
tga_http_send(struct lws *wsi, tga_pss_t *pss)
{
    char            *text;
    size_t           len;
    const char      *type;
    unsigned char    hdr[LWS_PRE + 512], *p, *end;

    type = "application/json";
    text = NULL;
    len = 0;

    if (pss->req.raw) {
        type = pss->req.raw_type;
        len = strlen(pss->req.raw);

    } else if (pss->req.reply) {
        text = json_dumps(pss->req.reply, TGA_JSON_FLAGS);
        len = text ? strlen(text) : 0;
    }

    pss->out = malloc(LWS_PRE + len + 1);
    if (pss->out == NULL) {
        free(text);
        return -1;
    }

    memcpy(pss->out + LWS_PRE, pss->req.raw ? pss->req.raw : text, len);
    pss->out_len = len;
    free(text);

    p = hdr + LWS_PRE;
    end = hdr + sizeof(hdr) - 1;

    if (lws_add_http_common_headers(wsi, (unsigned) pss->req.status, type,
                                    len, &p, end)
        || lws_add_http_header_by_name(wsi,
                                       (const unsigned char *) "cache-control:",
                                       (const unsigned char *) "no-store", 8,
                                       &p, end)
        || (pss->close
            && lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
                                            (const unsigned char *) "close",
                                            5, &p, end))
        || lws_finalize_write_http_header(wsi, hdr + LWS_PRE, &p, end))
    {
        return -1;
    }

    lws_callback_on_writable(wsi);

    return 0;
}


static int
tga_http_write_body(struct lws *wsi, tga_pss_t *pss)
{
    int  close;

    if (pss->out_len
        && lws_write(wsi, pss->out + LWS_PRE, pss->out_len,
                     LWS_WRITE_HTTP_FINAL) != (int) pss->out_len)
    {
        return -1;
    }

    close = pss->close;
    tga_pss_clear(pss);

    if (close || lws_http_transaction_completed(wsi)) {
        return -1;
    }

    return 0;
}


/* routing ---------------------------------------------------------------- */

/* 1 when path matches pattern; the ":x" segments are copied to params */
static int
tga_route_match(const char *pattern, const char *path,
    char params[2][256])
{
    int          n;
    size_t       len;
    const char  *seg_end;

    n = 0;

    while (*pattern && *path) {
        if (*pattern == ':') {
            seg_end = strchr(path, '/');
            len = seg_end ? (size_t) (seg_end - path) : strlen(path);

            if (len == 0 || n == 2) {
                return 0;
            }

            snprintf(params[n++], 256, "%.*s", (int) len, path);
            path += len;
            pattern = strchr(pattern, '/');
            pattern = pattern ? pattern : "";
            continue;
        }

        if (*pattern++ != *path++) {
            return 0;
        }
    }

    return *pattern == '\0' && *path == '\0';
}


static void
tga_http_route(tga_pss_t *pss)
{
    int                 path_known;
    const tga_route_t  *rt;

    path_known = 0;

    for (rt = tga_routes; rt->pattern; rt++) {
        if (!tga_route_match(rt->pattern, pss->path, pss->params)) {
            continue;
        }

        path_known = 1;

        if (rt->method == pss->req.method) {
            pss->route = rt;
            pss->req.params[0] = pss->params[0];
            pss->req.params[1] = pss->params[1];
            return;
        }
    }

    if (path_known) {
        tga_reply_error(&pss->req, 405, "method_not_allowed",
                        "%s is not allowed on %s",
                        tga_method_names[pss->req.method], pss->path);
    } else {
        tga_reply_error(&pss->req, 404, "not_found", "no route %s",
                        pss->path);
    }
}


/* token and role: fills req.user and req.role, or sets a 401/403 reply */
static void
tga_http_authorize(struct lws *wsi, tga_pss_t *pss)
{
    char         header[2048];
    tga_req_t   *r;
    const char  *token;

    r = &pss->req;

    if (pss->route->role == TGA_ROLE_NONE) {
        return;
    }

    if (lws_hdr_copy(wsi, header, sizeof(header),
                     WSI_TOKEN_HTTP_AUTHORIZATION) <= 0
        || strncasecmp(header, "Bearer ", 7) != 0)
    {
        tga_reply_error(r, 401, "unauthorized", "bearer token required");
        return;
    }

    token = header + 7;

    if (tga_auth_verify(token, r->user, sizeof(r->user), &r->role)
        != TGA_OK)
    {
        tga_reply_error(r, 401, "unauthorized",
                        "invalid or expired token");
        return;
    }

    if (r->role < pss->route->role) {
        tga_reply_error(r, 403, "forbidden", "role %s may not %s %s",
                        tga_role_name(r->role),
                        tga_method_names[r->method], pss->path);
    }
}


static int
tga_http_has_body(tga_method_e m)
{
    return m == TGA_POST || m == TGA_PUT || m == TGA_PATCH;
}


/* content type and length of a request that should carry JSON */
static void
tga_http_check_body(struct lws *wsi, tga_pss_t *pss, long long len)
{
    char  type[128];

    if (lws_hdr_copy(wsi, type, sizeof(type),
                     WSI_TOKEN_HTTP_CONTENT_TYPE) <= 0
        || strncasecmp(type, "application/json", 16) != 0
        || (type[16] != '\0' && type[16] != ';'))
    {
        tga_reply_error(&pss->req, 415, "unsupported_media_type",
                        "the body must be application/json");
        return;
    }

    if (len > TGA_BODY_MAX_BYTES) {
        tga_reply_error(&pss->req, 413, "too_large",
                        "the body is over %d bytes", TGA_BODY_MAX_BYTES);
    }
}


static tga_method_e
tga_http_method(struct lws *wsi)
{
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI)) {
        return TGA_GET;
    }

    if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI)) {
        return TGA_POST;
    }

    if (lws_hdr_total_length(wsi, WSI_TOKEN_PUT_URI)) {
        return TGA_PUT;
    }

    if (lws_hdr_total_length(wsi, WSI_TOKEN_PATCH_URI)) {
        return TGA_PATCH;
    }

    if (lws_hdr_total_length(wsi, WSI_TOKEN_DELETE_URI)) {
        return TGA_DELETE;
    }

    return TGA_OTHER;
}


static long long
tga_http_content_length(struct lws *wsi)
{
    char  value[32];

    if (lws_hdr_copy(wsi, value, sizeof(value),
                     WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
    {
        return 0;
    }

    return strtoll(value, NULL, 10);
}


/* dispatch --------------------------------------------------------------- */

static void
tga_http_parse_body(tga_pss_t *pss)
{
    json_error_t  err;

    if (pss->body_len == 0) {
        tga_reply_error(&pss->req, 400, "bad_request",
                        "a JSON object body is required");
        return;
    }

    pss->req.body = json_loadb(pss->body, pss->body_len,
                               JSON_REJECT_DUPLICATES, &err);

    if (pss->req.body == NULL) {
        tga_reply_error(&pss->req, 400, "bad_request",
                        "malformed JSON at line %d: %s", err.line, err.text);
        return;
    }

    if (!json_is_object(pss->req.body)) {
        tga_reply_error(&pss->req, 400, "bad_request",
                        "the body must be a JSON object");
    }
}


static int
tga_http_dispatch(struct lws *wsi, tga_pss_t *pss)
{
    if (tga_http_has_body(pss->req.method)) {
        tga_http_parse_body(pss);
    }

    if (pss->req.reply == NULL) {
        pss->req.status = 500;
        pss->route->handler(&pss->req);
    }

    if (pss->req.pending) {
        return 0;
    }

    if (pss->req.status >= 500 && pss->req.reply == NULL) {
        tga_reply_error(&pss->req, 500, "internal", "internal error");
    }

    return tga_http_send(wsi, pss);
}


static int
tga_http_static(struct lws *wsi, tga_pss_t *pss)
{
    int           n;
    char          file[2048];
    const char   *mime;
    struct stat   st;

    if (tga_http_cf->static_dir[0] == '\0' || strstr(pss->path, "..")) {
        tga_reply_error(&pss->req, 404, "not_found", "no route %s",
                        pss->path);
        return tga_http_send(wsi, pss);
    }

    snprintf(file, sizeof(file), "%s%s", tga_http_cf->static_dir,
             pss->path);

    /* the dashboard routes in the browser: unknown paths get its page */
    if (stat(file, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(file, sizeof(file), "%s/index.html",
                 tga_http_cf->static_dir);
    }

    mime = lws_get_mimetype(file, NULL);
    n = lws_serve_http_file(wsi, file, mime ? mime : "text/plain", NULL, 0);

    if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi))) {
        return -1;
    }

    return 0;
}


static int
tga_http_request(struct lws *wsi, tga_pss_t *pss, const char *uri)
{
    long long  len;

    tga_pss_clear(pss);
    snprintf(pss->path, sizeof(pss->path), "%s", uri);
    pss->req.path = pss->path;
    pss->req.conn = wsi;
    pss->req.method = tga_http_method(wsi);

    if (strncmp(uri, "/api/", 5) != 0 && strcmp(uri, "/healthz") != 0) {
        return tga_http_static(wsi, pss);
    }

    tga_http_route(pss);

    if (pss->route) {
        tga_http_authorize(wsi, pss);
    }

    len = tga_http_content_length(wsi);

    if (pss->req.reply == NULL && tga_http_has_body(pss->req.method)) {
        tga_http_check_body(wsi, pss, len);
    }

    if (len <= 0) {
        return pss->req.reply ? tga_http_send(wsi, pss)
                              : tga_http_dispatch(wsi, pss);
    }

    /* a body follows: read it, or drain it after a refusal */
    pss->refused = pss->req.reply != NULL;

    if (pss->refused && len > TGA_DRAIN_MAX_BYTES) {
        pss->close = 1;
        return tga_http_send(wsi, pss);
    }

    return 0;
}


static void
tga_http_body(tga_pss_t *pss, const char *in, size_t len)
{
    char  *grown;

    if (pss->refused) {
        return;
    }

    if (pss->body_len + len > TGA_BODY_MAX_BYTES) {
        tga_reply_error(&pss->req, 413, "too_large",
                        "the body is over %d bytes", TGA_BODY_MAX_BYTES);
        pss->refused = 1;
        return;
    }

    grown = realloc(pss->body, pss->body_len + len);
    if (grown == NULL) {
        tga_reply_error(&pss->req, 500, "internal", "out of memory");
        pss->refused = 1;
        return;
    }

    memcpy(grown + pss->body_len, in, len);
    pss->body = grown;
    pss->body_len += len;
}


/* WebSocket -------------------------------------------------------------- */

static int
tga_ws_accept(struct lws *wsi)
{
    char        uri[64], arg[2048];
    char        user[TGA_ID_MAX_LEN + 1];
    const char *token;
    tga_role_e  role;

    if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0
        || strcmp(uri, "/api/v1/ws") != 0)
    {
        return -1;
    }

    token = lws_get_urlarg_by_name(wsi, "token=", arg, sizeof(arg));

    if (token == NULL
        && lws_hdr_copy(wsi, arg, sizeof(arg),
                        WSI_TOKEN_HTTP_AUTHORIZATION) > 7
        && strncasecmp(arg, "Bearer ", 7) == 0)
    {
        token = arg + 7;
    }

    if (token == NULL
        || tga_auth_verify(token, user, sizeof(user), &role) != TGA_OK)
    {
        tga_log_info("msg=\"websocket refused: bad token\"");
        return -1;
    }

    return 0;
}


static int
tga_ws_write(struct lws *wsi, tga_pss_t *pss)
{
    int             rc;
    size_t          len;
    uint64_t        seq;
    const char     *text;
    unsigned char  *buf;

    text = tga_live_snapshot(&len, &seq);
    if (text == NULL || seq == pss->ws_seq) {
        return 0;
    }

    buf = malloc(LWS_PRE + len);
    if (buf == NULL) {
        return -1;
    }

    memcpy(buf + LWS_PRE, text, len);
    rc = lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_TEXT);
    free(buf);

    pss->ws_seq = seq;

    return rc < (int) len ? -1 : 0;
}


void
tga_http_ws_notify(void)
{
    lws_callback_on_writable_all_protocol(tga_ctx, tga_ws_protocol);
}


/* the callback ------------------------------------------------------------ */

static int
tga_http_callback(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len)
{
    tga_pss_t  *pss;

    pss = user;

    switch (reason) {

    case LWS_CALLBACK_HTTP:
        return tga_http_request(wsi, pss, in);

    case LWS_CALLBACK_HTTP_BODY:
        tga_http_body(pss, in, len);
        return 0;

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        /* lws also completes an empty body we have already answered */
        if (pss->out) {
            return 0;
        }

        return pss->refused ? tga_http_send(wsi, pss)
                            : tga_http_dispatch(wsi, pss);

    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (pss->resumed) {
            pss->resumed = 0;
            pss->req.pending = 0;
            return tga_http_send(wsi, pss);
        }

        if (pss->out == NULL) {
            return 0;
        }
        return tga_http_write_body(wsi, pss);

    case LWS_CALLBACK_CLOSED_HTTP:
        /* a connection closed before its first request has no pss */
        if (pss) {
            if (pss->req.pending) {
                tga_prom_cancel(&pss->req);
            }
            tga_pss_clear(pss);
        }
        break;

    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return tga_ws_accept(wsi);

    case LWS_CALLBACK_ESTABLISHED:
        pss->ws = 1;
        return tga_ws_write(wsi, pss);

    case LWS_CALLBACK_SERVER_WRITEABLE:
        return tga_ws_write(wsi, pss);

    case LWS_CALLBACK_RECEIVE:
        /* clients have nothing to say; what they send is ignored */
        return 0;

    default:
        break;
    }

    return lws_callback_http_dummy(wsi, reason, user, in, len);
}


void
tga_http_resume(tga_req_t *r)
{
    tga_pss_t  *pss;

    pss = lws_wsi_user(r->conn);
    pss->resumed = 1;

    /* headers and body go out from the connection's own writable turn */
    lws_callback_on_writable(r->conn);
}


static const struct lws_protocols  tga_protocols[] = {
    { "tollgate", tga_http_callback, sizeof(tga_pss_t), 4096, 0, NULL, 0 },
    { TGA_PROM_PROTOCOL, tga_prom_callback, 0, 4096, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 }
};


/* lifecycle --------------------------------------------------------------- */

static void
tga_http_lws_log(int level, const char *line)
{
    tga_log(level == LLL_ERR ? "error" : "warn",
            "msg=\"libwebsockets\" detail=\"%.*s\"",
            (int) strcspn(line, "\n"), line);
}


static void
tga_http_tick(lws_sorted_usec_list_t *sul)
{
    tga_sync_check();
    tga_live_tick();
    tga_http_ws_notify();

    lws_sul_schedule(tga_ctx, 0, sul, tga_http_tick, TGA_TICK_US);
}


int
tga_http_init(const tga_config_t *cf)
{
    struct lws_context_creation_info  info;

    tga_http_cf = cf;
    lws_set_log_level(LLL_ERR | LLL_WARN, tga_http_lws_log);

    memset(&info, 0, sizeof(info));
    info.port = cf->listen_port;
    info.iface = strcmp(cf->listen_host, "0.0.0.0") == 0
                 || cf->listen_host[0] == '\0' ? NULL : cf->listen_host;
    info.protocols = tga_protocols;
    info.max_http_header_data = 4096;
    info.timeout_secs = 10;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6
                   | LWS_SERVER_OPTION_VALIDATE_UTF8;

    tga_ctx = lws_create_context(&info);
    if (tga_ctx == NULL) {
        tga_log_error("msg=\"cannot listen\" addr=\"%s:%d\"",
                      cf->listen_host, cf->listen_port);
        return TGA_ERROR;
    }

    if (tga_prom_init(tga_ctx, cf->prometheus_url) != TGA_OK) {
        return TGA_ERROR;
    }

    /* the vhost may hold its own copy of the protocol table */
    tga_ws_protocol = lws_vhost_name_to_protocol(
                          lws_get_vhost_by_name(tga_ctx, "default"),
                          "tollgate");

    lws_sul_schedule(tga_ctx, 0, &tga_tick_sul, tga_http_tick, TGA_TICK_US);

    return TGA_OK;
}


/* async-signal-safe: lws_cancel_service only writes to a pipe */
void
tga_http_stop(void)
{
    tga_stopping = 1;

    if (tga_ctx) {
        lws_cancel_service(tga_ctx);
    }
}


void
tga_http_run(void)
{
    while (!tga_stopping) {
        if (lws_service(tga_ctx, 0) < 0) {
            break;
        }
    }
}


void
tga_http_destroy(void)
{
    lws_context_destroy(tga_ctx);
    tga_ctx = NULL;
}
