/*
 * Copyright (C) Tollgate developers
 *
 * The worker's Redis client.  Each worker has its own connections: one
 * to the master (single server or Sentinel), or one per master of a
 * Redis Cluster, plus one to a sentinel.  hiredis parses and buffers;
 * this file gives it nginx events (level-triggered, since hiredis reads
 * one buffer per call), a timer per connection for connect and reply
 * timeouts, reconnection with backoff, script loading, and routing.
 */


#include <time.h>

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_sha1.h>

#include <hiredis/async.h>

#include "ngx_http_tollgate_redis.h"


#define NGX_HTTP_TOLLGATE_SLOTS          16384
#define NGX_HTTP_TOLLGATE_NODES_MAX      64
#define NGX_HTTP_TOLLGATE_REDIRECTS_MAX  3
#define NGX_HTTP_TOLLGATE_BACKOFF_MIN    100
#define NGX_HTTP_TOLLGATE_BACKOFF_MAX    5000
#define NGX_HTTP_TOLLGATE_REFRESH_MS     5000


typedef struct {
    const char                 *name;
    const char                 *text;
    size_t                      len;
} tg_script_text_t;

/* generated from the scripts in redis/ by scripts/embed-lua.sh */
extern const tg_script_text_t  tg_script_texts[];


typedef struct ngx_http_tollgate_rnode_s  ngx_http_tollgate_rnode_t;

struct ngx_http_tollgate_rnode_s {
    ngx_http_tollgate_redis_addr_t   addr;
    redisAsyncContext               *ac;
    ngx_connection_t                *conn;
    ngx_event_t                      timeout_ev;
    ngx_event_t                      reconnect_ev;
    ngx_msec_t                       backoff_ms;
    ngx_msec_t                       heard_ms;    /* silence starts */
    ngx_uint_t                       pending;
    unsigned                         sentinel:1;
    unsigned                         subscriber:1;
    unsigned                         connected:1;
    unsigned                         answered:1;  /* a reply since connect */
    unsigned                         retired:1;   /* never reconnect */
};


typedef struct {
    ngx_uint_t                       script;
    ngx_uint_t                       argc;
    const char                     **argv;
    size_t                          *argvlen;
    ngx_http_tollgate_redis_pt       handler;
    void                            *data;
    struct timespec                  start;
    ngx_int_t                        slot;        /* -1: any node */
    ngx_uint_t                       redirects;
    unsigned                         asking:1;
} ngx_http_tollgate_rcmd_t;


typedef struct {
    ngx_http_tollgate_redis_conf_t  *conf;
    ngx_http_tollgate_redis_stats_t *stats;
    ngx_log_t                       *log;

    ngx_http_tollgate_rnode_t       *master;      /* single, sentinel */
    ngx_http_tollgate_rnode_t       *sentinel;
    ngx_http_tollgate_rnode_t       *subscriber;
    const char                      *channel;
    ngx_http_tollgate_message_pt     on_message;
    ngx_uint_t                       sentinel_next;

    ngx_http_tollgate_rnode_t       *nodes[NGX_HTTP_TOLLGATE_NODES_MAX];
    ngx_uint_t                       nnodes;
    uint8_t                         *slots;       /* node index + 1 */
    ngx_msec_t                       refreshed_ms;
    unsigned                         refreshing:1;
    unsigned                         discovering:1;

    u_char                           sha[NGX_HTTP_TOLLGATE_SCRIPTS][41];
    const tg_script_text_t          *text[NGX_HTTP_TOLLGATE_SCRIPTS];
} ngx_http_tollgate_redis_t;


static ngx_http_tollgate_rnode_t *ngx_http_tollgate_rnode_create(
    u_char *host, int port, ngx_uint_t sentinel);
static void ngx_http_tollgate_rnode_connect(ngx_http_tollgate_rnode_t *n);
static void ngx_http_tollgate_rnode_retire(ngx_http_tollgate_rnode_t *n);
static void ngx_http_tollgate_rnode_fail(ngx_http_tollgate_rnode_t *n,
    const char *why);
static void ngx_http_tollgate_rnode_schedule(ngx_http_tollgate_rnode_t *n);
static void ngx_http_tollgate_rnode_reconnect(ngx_event_t *ev);
static void ngx_http_tollgate_rnode_timeout(ngx_event_t *ev);
static void ngx_http_tollgate_rnode_arm(ngx_http_tollgate_rnode_t *n);
static void ngx_http_tollgate_rnode_replied(ngx_http_tollgate_rnode_t *n,
    redisReply *reply);
static void ngx_http_tollgate_rnode_event(ngx_event_t *ev);
static void ngx_http_tollgate_ev_add_read(void *privdata);
static void ngx_http_tollgate_ev_del_read(void *privdata);
static void ngx_http_tollgate_ev_add_write(void *privdata);
static void ngx_http_tollgate_ev_del_write(void *privdata);
static void ngx_http_tollgate_ev_cleanup(void *privdata);
static void ngx_http_tollgate_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_http_tollgate_on_disconnect(const redisAsyncContext *ac,
    int status);
static void ngx_http_tollgate_on_setup(redisAsyncContext *ac, void *r,
    void *privdata);
static ngx_int_t ngx_http_tollgate_rcmd_send(ngx_http_tollgate_rcmd_t *cmd,
    ngx_http_tollgate_rnode_t *n);
static void ngx_http_tollgate_rcmd_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_tollgate_rcmd_done(ngx_http_tollgate_rcmd_t *cmd,
    redisReply *reply);
static ngx_http_tollgate_rnode_t *ngx_http_tollgate_route(ngx_int_t slot);
static ngx_http_tollgate_rnode_t *ngx_http_tollgate_node_by_addr(
    u_char *host, int port);
static ngx_int_t ngx_http_tollgate_parse_redirect(redisReply *reply,
    ngx_int_t *slot, u_char *host, int *port);
static void ngx_http_tollgate_set_slot(ngx_int_t slot,
    ngx_http_tollgate_rnode_t *owner);
static void ngx_http_tollgate_discover(void);
static void ngx_http_tollgate_on_master(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_tollgate_refresh_slots(void);
static void ngx_http_tollgate_keep_subscriber(void);
static void ngx_http_tollgate_on_message(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_tollgate_on_slots(redisAsyncContext *ac, void *r,
    void *privdata);


const char  *ngx_http_tollgate_script_names[] = {
    "acquire", "report", "seed", "heartbeat", "command"
};

ngx_msec_t  ngx_http_tollgate_redis_lat_bounds_us[] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000
};


static ngx_http_tollgate_redis_t  *ngx_http_tollgate_redis;

ngx_uint_t  ngx_http_tollgate_redis_connects;
ngx_uint_t  ngx_http_tollgate_redis_failures;


ngx_int_t
ngx_http_tollgate_redis_init(ngx_cycle_t *cycle,
    ngx_http_tollgate_redis_conf_t *conf,
    ngx_http_tollgate_redis_stats_t *stats)
{
    u_char                          *p;
    ngx_uint_t                       i, s;
    ngx_sha1_t                       sha1;
    u_char                           digest[20];
    ngx_http_tollgate_redis_t       *rd;
    ngx_http_tollgate_redis_addr_t  *addr;

    rd = ngx_pcalloc(cycle->pool, sizeof(ngx_http_tollgate_redis_t));
    if (rd == NULL) {
        return NGX_ERROR;
    }

    rd->conf = conf;
    rd->stats = stats;
    rd->log = cycle->log;

    /* find each script's text and its SHA1, which EVALSHA names it by */

    for (s = 0; s < NGX_HTTP_TOLLGATE_SCRIPTS; s++) {
        for (i = 0; tg_script_texts[i].name; i++) {
            if (ngx_strcmp(tg_script_texts[i].name,
                           ngx_http_tollgate_script_names[s]) == 0)
            {
                break;
            }
        }

        if (tg_script_texts[i].name == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "tollgate: redis script \"%s\" is not built in",
                          ngx_http_tollgate_script_names[s]);
            return NGX_ERROR;
        }

        rd->text[s] = &tg_script_texts[i];

        ngx_sha1_init(&sha1);
        ngx_sha1_update(&sha1, rd->text[s]->text, rd->text[s]->len);
        ngx_sha1_final(digest, &sha1);

        p = ngx_hex_dump(rd->sha[s], digest, 20);
        *p = '\0';
    }

    ngx_http_tollgate_redis = rd;

    addr = conf->addrs.elts;

    switch (conf->mode) {

    case NGX_HTTP_TOLLGATE_REDIS_SENTINEL:
        ngx_http_tollgate_discover();
        break;

    case NGX_HTTP_TOLLGATE_REDIS_CLUSTER:
        rd->slots = ngx_pcalloc(cycle->pool, NGX_HTTP_TOLLGATE_SLOTS);
        if (rd->slots == NULL) {
            return NGX_ERROR;
        }

        for (i = 0; i < conf->addrs.nelts; i++) {
            if (ngx_http_tollgate_node_by_addr(addr[i].host, addr[i].port)
                == NULL)
            {
                return NGX_ERROR;
            }
        }

        break;

    default: /* NGX_HTTP_TOLLGATE_REDIS_SINGLE */
        rd->master = ngx_http_tollgate_rnode_create(addr[0].host,
                                                    addr[0].port, 0);
        if (rd->master == NULL) {
            return NGX_ERROR;
        }

        ngx_http_tollgate_rnode_connect(rd->master);
        break;
    }

    return NGX_OK;
}


void
ngx_http_tollgate_redis_exit(void)
{
    ngx_uint_t                  i;
    ngx_http_tollgate_redis_t  *rd;

    rd = ngx_http_tollgate_redis;
    if (rd == NULL) {
        return;
    }

    if (rd->master) {
        ngx_http_tollgate_rnode_retire(rd->master);
    }

    if (rd->sentinel) {
        ngx_http_tollgate_rnode_retire(rd->sentinel);
    }

    if (rd->subscriber) {
        ngx_http_tollgate_rnode_retire(rd->subscriber);
    }

    for (i = 0; i < rd->nnodes; i++) {
        ngx_http_tollgate_rnode_retire(rd->nodes[i]);
    }

    ngx_http_tollgate_redis = NULL;
}


void
ngx_http_tollgate_redis_tick(void)
{
    ngx_http_tollgate_redis_t  *rd;

    rd = ngx_http_tollgate_redis;
    if (rd == NULL) {
        return;
    }

    switch (rd->conf->mode) {

    case NGX_HTTP_TOLLGATE_REDIS_SENTINEL:
        /* asking every tick is how a failover is noticed within a second */
        ngx_http_tollgate_discover();
        break;

    case NGX_HTTP_TOLLGATE_REDIS_CLUSTER:
        if (rd->refreshed_ms == 0
            || ngx_current_msec - rd->refreshed_ms
               >= NGX_HTTP_TOLLGATE_REFRESH_MS)
        {
            ngx_http_tollgate_refresh_slots();
        }

        break;

    default:
        break;
    }

    ngx_http_tollgate_keep_subscriber();
}


void
ngx_http_tollgate_redis_subscribe(const char *channel,
    ngx_http_tollgate_message_pt handler)
{
    if (ngx_http_tollgate_redis == NULL) {
        return;
    }

    ngx_http_tollgate_redis->channel = channel;
    ngx_http_tollgate_redis->on_message = handler;

    ngx_http_tollgate_keep_subscriber();
}


/*
 * The subscriber follows the master: it is made anew when it lost its
 * connection or when the master moved (a Sentinel failover).
 */

static void
ngx_http_tollgate_keep_subscriber(void)
{
    ngx_http_tollgate_redis_t  *rd;
    ngx_http_tollgate_rnode_t  *target, *sub;

    rd = ngx_http_tollgate_redis;

    if (rd->channel == NULL) {
        return;
    }

    target = ngx_http_tollgate_route(-1);

    if (target == NULL || !target->connected) {
        return;
    }

    sub = rd->subscriber;

    if (sub != NULL
        && sub->addr.port == target->addr.port
        && ngx_strcmp(sub->addr.host, target->addr.host) == 0
        && (sub->ac != NULL || sub->reconnect_ev.timer_set))
    {
        return;
    }

    if (sub != NULL) {
        ngx_http_tollgate_rnode_retire(sub);
    }

    sub = ngx_http_tollgate_rnode_create(target->addr.host,
                                         target->addr.port, 0);
    if (sub == NULL) {
        return;
    }

    sub->subscriber = 1;
    rd->subscriber = sub;

    ngx_http_tollgate_rnode_connect(sub);
}


static void
ngx_http_tollgate_on_message(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply  *reply;

    reply = r;

    /* ["message", channel, payload]; "subscribe" confirms, once */

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_STRING
        || ngx_strcmp(reply->element[0]->str, "message") != 0
        || reply->element[2]->type != REDIS_REPLY_STRING
        || ngx_http_tollgate_redis == NULL
        || ngx_http_tollgate_redis->on_message == NULL)
    {
        return;
    }

    ngx_http_tollgate_redis->on_message((u_char *) reply->element[2]->str,
                                        reply->element[2]->len);
}


ngx_uint_t
ngx_http_tollgate_redis_ready(ngx_str_t *cluster_id, ngx_uint_t proven)
{
    ngx_int_t                   slot;
    ngx_http_tollgate_rnode_t  *n;

    if (ngx_http_tollgate_redis == NULL) {
        return 0;
    }

    /* the slot only matters to a Redis Cluster; its CRC is not free */

    slot = (cluster_id != NULL
            && ngx_http_tollgate_redis->conf->mode
               == NGX_HTTP_TOLLGATE_REDIS_CLUSTER)
           ? ngx_http_tollgate_redis_slot(cluster_id->data, cluster_id->len)
           : -1;

    n = ngx_http_tollgate_route(slot);

    /*
     * A connect can succeed to a server that is frozen (the kernel
     * accepts for it): only a reply proves the connection works.
     */

    return n != NULL && n->connected && (n->answered || !proven);
}


ngx_int_t
ngx_http_tollgate_redis_call(ngx_uint_t script, ngx_str_t *cluster_id,
    ngx_uint_t nkeys, ngx_uint_t argc, ngx_str_t *argv,
    ngx_http_tollgate_redis_pt handler, void *data)
{
    u_char                     *p, nkeys_text[NGX_INT_T_LEN];
    size_t                      size;
    ngx_uint_t                  i, n, head;
    ngx_http_tollgate_rcmd_t   *cmd;
    ngx_http_tollgate_redis_t  *rd;
    ngx_http_tollgate_rnode_t  *node;

    rd = ngx_http_tollgate_redis;
    if (rd == NULL) {
        return NGX_ERROR;
    }

    /* EVALSHA sha numkeys keys... args..., or the command as given */

    head = (script == NGX_HTTP_TOLLGATE_COMMAND) ? 0 : 3;
    n = head + argc;

    size = sizeof(ngx_http_tollgate_rcmd_t)
           + n * (sizeof(char *) + sizeof(size_t));

    for (i = 0; i < argc; i++) {
        size += argv[i].len + 1;
    }

    size += NGX_INT_T_LEN + 1;

    cmd = ngx_alloc(size, rd->log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->script = script;
    cmd->argc = n;
    cmd->argv = (const char **) (cmd + 1);
    cmd->argvlen = (size_t *) (cmd->argv + n);
    cmd->handler = handler;
    cmd->data = data;
    cmd->redirects = 0;
    cmd->asking = 0;
    cmd->slot = (cluster_id && rd->conf->mode
                                == NGX_HTTP_TOLLGATE_REDIS_CLUSTER)
                ? ngx_http_tollgate_redis_slot(cluster_id->data,
                                               cluster_id->len)
                : -1;

    p = (u_char *) (cmd->argvlen + n);

    if (head) {
        cmd->argv[0] = "EVALSHA";
        cmd->argvlen[0] = 7;
        cmd->argv[1] = (const char *) rd->sha[script];
        cmd->argvlen[1] = 40;

        cmd->argv[2] = (const char *) p;
        cmd->argvlen[2] = ngx_http_tollgate_decimal(nkeys_text, nkeys)
                          - nkeys_text;
        p = ngx_cpymem(p, nkeys_text, cmd->argvlen[2]);
        *p++ = '\0';
    }

    for (i = 0; i < argc; i++) {
        cmd->argv[head + i] = (const char *) p;
        cmd->argvlen[head + i] = argv[i].len;
        p = ngx_cpymem(p, argv[i].data, argv[i].len);
        *p++ = '\0';
    }

    (void) clock_gettime(CLOCK_MONOTONIC, &cmd->start);

    node = ngx_http_tollgate_route(cmd->slot);

    if (node == NULL || !node->connected
        || ngx_http_tollgate_rcmd_send(cmd, node) != NGX_OK)
    {
        (void) ngx_atomic_fetch_add(&rd->stats->calls[script]
                                        [NGX_HTTP_TOLLGATE_RESULT_FAILED], 1);
        ngx_free(cmd);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the slot of a Redis Cluster hash tag: CRC16 (XMODEM) modulo 16384 */

uint16_t
ngx_http_tollgate_redis_slot(u_char *tag, size_t len)
{
    size_t      i;
    uint16_t    crc;
    ngx_uint_t  bit;

    crc = 0;

    for (i = 0; i < len; i++) {
        crc ^= (uint16_t) tag[i] << 8;

        for (bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000) ? (uint16_t) ((crc << 1) ^ 0x1021)
                                 : (uint16_t) (crc << 1);
        }
    }

    return crc & (NGX_HTTP_TOLLGATE_SLOTS - 1);
}


/*
 * A command in the protocol's own form (RESP): an array of bulk strings.
 * hiredis 0.14 builds one with a formatted append per argument, some ten
 * thousand instructions for an acquire; written here, a few hundred.
 */

static u_char *
ngx_http_tollgate_resp_len(u_char *p, u_char type, size_t n)
{
    *p++ = type;
    p = ngx_http_tollgate_decimal(p, n);
    *p++ = CR; *p++ = LF;

    return p;
}


static ngx_int_t
ngx_http_tollgate_rcmd_format(ngx_http_tollgate_rcmd_t *cmd, u_char *buf,
    size_t size, u_char **out, size_t *len)
{
    u_char      *p;
    size_t       need;
    ngx_uint_t   i;

    /* each length takes at most NGX_SIZE_T_LEN digits, a type and CRLF */

    need = NGX_SIZE_T_LEN + 3;

    for (i = 0; i < cmd->argc; i++) {
        need += NGX_SIZE_T_LEN + 3 + cmd->argvlen[i] + 2;
    }

    p = (need <= size) ? buf : ngx_alloc(need, ngx_http_tollgate_redis->log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *out = p;

    p = ngx_http_tollgate_resp_len(p, '*', cmd->argc);

    for (i = 0; i < cmd->argc; i++) {
        p = ngx_http_tollgate_resp_len(p, '$', cmd->argvlen[i]);
        p = ngx_cpymem(p, cmd->argv[i], cmd->argvlen[i]);
        *p++ = CR; *p++ = LF;
    }

    *len = p - *out;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tollgate_rcmd_send(ngx_http_tollgate_rcmd_t *cmd,
    ngx_http_tollgate_rnode_t *n)
{
    int      rc;
    u_char  *text, buf[1024];
    size_t   len;

    if (cmd->asking) {
        if (redisAsyncCommand(n->ac, NULL, NULL, "ASKING") != REDIS_OK) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_tollgate_rcmd_format(cmd, buf, sizeof(buf), &text, &len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* hiredis copies the text into its output buffer */

    rc = redisAsyncFormattedCommand(n->ac, ngx_http_tollgate_rcmd_reply, cmd,
                                    (const char *) text, len);

    if (text != buf) {
        ngx_free(text);
    }

    if (rc != REDIS_OK) {
        return NGX_ERROR;
    }

    n->pending++;
    ngx_http_tollgate_rnode_arm(n);

    return NGX_OK;
}


static void
ngx_http_tollgate_rcmd_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    int                          port;
    u_char                       host[NGX_INET_ADDRSTRLEN + 1];
    ngx_int_t                    slot;
    redisReply                  *reply;
    ngx_http_tollgate_rcmd_t    *cmd;
    ngx_http_tollgate_redis_t   *rd;
    ngx_http_tollgate_rnode_t   *n, *target;

    reply = r;
    cmd = privdata;
    n = ac->data;
    rd = ngx_http_tollgate_redis;

    ngx_http_tollgate_rnode_replied(n, reply);

    if (reply == NULL || reply->type != REDIS_REPLY_ERROR || rd == NULL) {
        ngx_http_tollgate_rcmd_done(cmd, reply);
        return;
    }

    /* a server restarted empty forgot the scripts: send the text once */

    if (ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0
        && cmd->script < NGX_HTTP_TOLLGATE_SCRIPTS
        && cmd->argv[0][4] == 'S')
    {
        cmd->argv[0] = "EVAL";
        cmd->argvlen[0] = 4;
        cmd->argv[1] = rd->text[cmd->script]->text;
        cmd->argvlen[1] = rd->text[cmd->script]->len;

        if (n && n->connected && ngx_http_tollgate_rcmd_send(cmd, n) == NGX_OK)
        {
            return;
        }

        ngx_http_tollgate_rcmd_done(cmd, NULL);
        return;
    }

    /* Redis Cluster moved the slot, for good (MOVED) or for now (ASK) */

    if ((ngx_strncmp(reply->str, "MOVED ", 6) == 0
         || ngx_strncmp(reply->str, "ASK ", 4) == 0)
        && cmd->redirects < NGX_HTTP_TOLLGATE_REDIRECTS_MAX
        && ngx_http_tollgate_parse_redirect(reply, &slot, host, &port)
           == NGX_OK)
    {
        cmd->redirects++;
        cmd->asking = (reply->str[0] == 'A');

        target = ngx_http_tollgate_node_by_addr(host, port);

        if (target != NULL && !cmd->asking && rd->slots) {
            ngx_http_tollgate_set_slot(slot, target);
            rd->refreshed_ms = 0;     /* refresh the whole map soon */
        }

        if (target != NULL && target->connected
            && ngx_http_tollgate_rcmd_send(cmd, target) == NGX_OK)
        {
            return;
        }

        ngx_http_tollgate_rcmd_done(cmd, NULL);
        return;
    }

    /* a demoted master after a failover: ask again who the master is */

    if (ngx_strncmp(reply->str, "READONLY", 8) == 0
        || ngx_strncmp(reply->str, "MASTERDOWN", 10) == 0
        || ngx_strncmp(reply->str, "LOADING", 7) == 0
        || ngx_strncmp(reply->str, "CLUSTERDOWN", 11) == 0)
    {
        if (rd->conf->mode == NGX_HTTP_TOLLGATE_REDIS_SENTINEL) {
            ngx_http_tollgate_discover();

        } else {
            rd->refreshed_ms = 0;
        }
    }

    ngx_http_tollgate_rcmd_done(cmd, reply);
}


static void
ngx_http_tollgate_rcmd_done(ngx_http_tollgate_rcmd_t *cmd, redisReply *reply)
{
    int64_t                          us;
    ngx_uint_t                       i, result;
    ngx_msec_t                       timeout_ms;
    struct timespec                  end;
    ngx_http_tollgate_redis_stats_t *stats;

    if (ngx_http_tollgate_redis != NULL) {
        stats = ngx_http_tollgate_redis->stats;

        result = (reply == NULL) ? NGX_HTTP_TOLLGATE_RESULT_FAILED
                 : (reply->type == REDIS_REPLY_ERROR)
                   ? NGX_HTTP_TOLLGATE_RESULT_ERROR
                   : NGX_HTTP_TOLLGATE_RESULT_OK;

        (void) ngx_atomic_fetch_add(&stats->calls[cmd->script][result], 1);

        (void) clock_gettime(CLOCK_MONOTONIC, &end);

        us = (int64_t) (end.tv_sec - cmd->start.tv_sec) * 1000000
             + (end.tv_nsec - cmd->start.tv_nsec) / 1000;

        if (us < 0) {
            us = 0;
        }

        /* a failed call counts as slow as the timeout it hit, at least */

        timeout_ms = ngx_http_tollgate_redis->conf->timeout_ms;

        if (reply == NULL && us < (int64_t) timeout_ms * 1000) {
            us = (int64_t) timeout_ms * 1000;
        }

        ngx_http_tollgate_health_record((uint32_t) ngx_min(us, 4000000000LL),
                                        (int) result);

        if (reply != NULL) {
            for (i = 0; i < NGX_HTTP_TOLLGATE_LAT_BUCKETS; i++) {
                if ((ngx_msec_t) us
                    <= ngx_http_tollgate_redis_lat_bounds_us[i])
                {
                    break;
                }
            }

            (void) ngx_atomic_fetch_add(&stats->latency[i], 1);
            (void) ngx_atomic_fetch_add(&stats->latency_sum_us,
                                        (ngx_atomic_int_t) us);
        }

        if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ngx_http_tollgate_redis->log, 0,
                          "tollgate: redis %s failed: %*s",
                          ngx_http_tollgate_script_names[cmd->script],
                          (size_t) reply->len, reply->str);
        }
    }

    if (cmd->handler) {
        cmd->handler(reply, cmd->data);
    }

    ngx_free(cmd);
}


static ngx_int_t
ngx_http_tollgate_parse_redirect(redisReply *reply, ngx_int_t *slot,
    u_char *host, int *port)
{
    u_char  *p, *last, *colon, *space;

    /* "MOVED 3999 127.0.0.1:6381" or "ASK 3999 127.0.0.1:6381" */

    p = (u_char *) reply->str;
    last = p + reply->len;

    space = ngx_strlchr(p, last, ' ');
    if (space == NULL) {
        return NGX_ERROR;
    }

    p = space + 1;

    space = ngx_strlchr(p, last, ' ');
    if (space == NULL) {
        return NGX_ERROR;
    }

    *slot = ngx_atoi(p, space - p);
    if (*slot == NGX_ERROR || *slot >= NGX_HTTP_TOLLGATE_SLOTS) {
        return NGX_ERROR;
    }

    p = space + 1;

    colon = NULL;
    for (space = p; space < last; space++) {
        if (*space == ':') {
            colon = space;
        }
    }

    if (colon == NULL || (size_t) (colon - p) > NGX_INET_ADDRSTRLEN) {
        return NGX_ERROR;
    }

    *port = (int) ngx_atoi(colon + 1, last - colon - 1);
    if (*port <= 0 || *port > 65535) {
        return NGX_ERROR;
    }

    *ngx_cpymem(host, p, colon - p) = '\0';

    return NGX_OK;
}


static ngx_http_tollgate_rnode_t *
ngx_http_tollgate_route(ngx_int_t slot)
{
    ngx_uint_t                  i;
    ngx_http_tollgate_redis_t  *rd;

    rd = ngx_http_tollgate_redis;

    if (rd->conf->mode != NGX_HTTP_TOLLGATE_REDIS_CLUSTER) {
        return rd->master;
    }

    if (slot >= 0 && rd->slots[slot]) {
        return rd->nodes[rd->slots[slot] - 1];
    }

    /* no map yet, or a call with no key: any connected node will do */

    for (i = 0; i < rd->nnodes; i++) {
        if (rd->nodes[i]->connected) {
            return rd->nodes[i];
        }
    }

    return NULL;
}


static ngx_http_tollgate_rnode_t *
ngx_http_tollgate_node_by_addr(u_char *host, int port)
{
    ngx_uint_t                  i;
    ngx_http_tollgate_redis_t  *rd;
    ngx_http_tollgate_rnode_t  *n;

    rd = ngx_http_tollgate_redis;

    for (i = 0; i < rd->nnodes; i++) {
        n = rd->nodes[i];

        if (n->addr.port == port
            && ngx_strcmp(n->addr.host, host) == 0)
        {
            return n;
        }
    }

    if (rd->nnodes == NGX_HTTP_TOLLGATE_NODES_MAX) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "tollgate: more than %d redis cluster nodes, "
                      "ignoring %s:%d", NGX_HTTP_TOLLGATE_NODES_MAX,
                      host, port);
        return NULL;
    }

    n = ngx_http_tollgate_rnode_create(host, port, 0);
    if (n == NULL) {
        return NULL;
    }

    rd->nodes[rd->nnodes++] = n;

    ngx_http_tollgate_rnode_connect(n);

    return n;
}


/* the slot map keeps the index of the owner in rd->nodes, plus one */

static void
ngx_http_tollgate_set_slot(ngx_int_t slot, ngx_http_tollgate_rnode_t *owner)
{
    ngx_uint_t                  i;
    ngx_http_tollgate_redis_t  *rd;

    rd = ngx_http_tollgate_redis;

    for (i = 0; i < rd->nnodes; i++) {
        if (rd->nodes[i] == owner) {
            rd->slots[slot] = (uint8_t) (i + 1);
            return;
        }
    }
}


/* Sentinel: who is the master now? */

static void
ngx_http_tollgate_discover(void)
{
    ngx_http_tollgate_redis_t       *rd;
    ngx_http_tollgate_redis_addr_t  *addr;

    rd = ngx_http_tollgate_redis;

    if (rd->discovering) {
        return;
    }

    if (rd->sentinel == NULL || (!rd->sentinel->connected
                                 && rd->sentinel->ac == NULL))
    {
        /* the current sentinel is gone: try the next one */

        if (rd->sentinel) {
            ngx_http_tollgate_rnode_retire(rd->sentinel);
        }

        addr = rd->conf->addrs.elts;
        addr += rd->sentinel_next++ % rd->conf->addrs.nelts;

        rd->sentinel = ngx_http_tollgate_rnode_create(addr->host, addr->port,
                                                      1);
        if (rd->sentinel == NULL) {
            return;
        }

        ngx_http_tollgate_rnode_connect(rd->sentinel);
    }

    if (rd->sentinel->ac == NULL) {
        return;
    }

    if (redisAsyncCommand(rd->sentinel->ac, ngx_http_tollgate_on_master,
                          NULL, "SENTINEL get-master-addr-by-name %b",
                          rd->conf->master_name.data,
                          rd->conf->master_name.len)
        != REDIS_OK)
    {
        return;
    }

    rd->sentinel->pending++;
    ngx_http_tollgate_rnode_arm(rd->sentinel);
    rd->discovering = 1;
}


static void
ngx_http_tollgate_on_master(redisAsyncContext *ac, void *r, void *privdata)
{
    int                         port;
    u_char                      host[NGX_INET_ADDRSTRLEN + 1];
    redisReply                 *reply;
    ngx_http_tollgate_redis_t  *rd;
    ngx_http_tollgate_rnode_t  *n;

    reply = r;
    rd = ngx_http_tollgate_redis;
    n = ac->data;

    ngx_http_tollgate_rnode_replied(n, reply);

    if (rd == NULL) {
        return;
    }

    rd->discovering = 0;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING
        || reply->element[0]->len > NGX_INET_ADDRSTRLEN)
    {
        ngx_log_error(NGX_LOG_WARN, rd->log, 0,
                      "tollgate: sentinel %s:%d does not know master "
                      "\"%V\"", n ? n->addr.host : (u_char *) "-",
                      n ? n->addr.port : 0, &rd->conf->master_name);
        return;
    }

    port = (int) ngx_atoi((u_char *) reply->element[1]->str,
                          reply->element[1]->len);

    *ngx_cpymem(host, reply->element[0]->str, reply->element[0]->len) = '\0';

    if (rd->master && rd->master->addr.port == port
        && ngx_strcmp(rd->master->addr.host, host) == 0)
    {
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                  "tollgate: redis master \"%V\" is %s:%d",
                  &rd->conf->master_name, host, port);

    if (rd->master) {
        ngx_http_tollgate_rnode_retire(rd->master);
    }

    rd->master = ngx_http_tollgate_rnode_create(host, port, 0);
    if (rd->master == NULL) {
        return;
    }

    ngx_http_tollgate_rnode_connect(rd->master);
}


/* Redis Cluster: which master owns which slots */

static void
ngx_http_tollgate_refresh_slots(void)
{
    ngx_http_tollgate_redis_t  *rd;
    ngx_http_tollgate_rnode_t  *n;

    rd = ngx_http_tollgate_redis;

    if (rd->refreshing) {
        return;
    }

    n = ngx_http_tollgate_route(-1);

    if (n == NULL || n->ac == NULL) {
        return;
    }

    if (redisAsyncCommand(n->ac, ngx_http_tollgate_on_slots, NULL,
                          "CLUSTER SLOTS")
        != REDIS_OK)
    {
        return;
    }

    n->pending++;
    ngx_http_tollgate_rnode_arm(n);
    rd->refreshing = 1;
}


static void
ngx_http_tollgate_on_slots(redisAsyncContext *ac, void *r, void *privdata)
{
    int                         port;
    u_char                      host[NGX_INET_ADDRSTRLEN + 1];
    ngx_uint_t                  i, j;
    ngx_int_t                   from, to;
    redisReply                 *reply, *range, *master;
    ngx_http_tollgate_redis_t  *rd;
    ngx_http_tollgate_rnode_t  *n, *owner;

    reply = r;
    rd = ngx_http_tollgate_redis;
    n = ac->data;

    ngx_http_tollgate_rnode_replied(n, reply);

    if (rd == NULL) {
        return;
    }

    rd->refreshing = 0;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        return;
    }

    rd->refreshed_ms = ngx_current_msec;

    for (i = 0; i < reply->elements; i++) {
        range = reply->element[i];

        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3
            || range->element[0]->type != REDIS_REPLY_INTEGER
            || range->element[1]->type != REDIS_REPLY_INTEGER
            || range->element[2]->type != REDIS_REPLY_ARRAY
            || range->element[2]->elements < 2)
        {
            continue;
        }

        master = range->element[2];

        if (master->element[0]->type != REDIS_REPLY_STRING
            || master->element[1]->type != REDIS_REPLY_INTEGER
            || master->element[0]->len > NGX_INET_ADDRSTRLEN)
        {
            continue;
        }

        from = (ngx_int_t) range->element[0]->integer;
        to = (ngx_int_t) range->element[1]->integer;

        if (from < 0 || to >= NGX_HTTP_TOLLGATE_SLOTS || from > to) {
            continue;
        }

        *ngx_cpymem(host, master->element[0]->str, master->element[0]->len)
            = '\0';
        port = (int) master->element[1]->integer;

        owner = ngx_http_tollgate_node_by_addr(host, port);
        if (owner == NULL) {
            continue;
        }

        for (j = (ngx_uint_t) from; j <= (ngx_uint_t) to; j++) {
            ngx_http_tollgate_set_slot((ngx_int_t) j, owner);
        }
    }
}


/* a connection */

static ngx_http_tollgate_rnode_t *
ngx_http_tollgate_rnode_create(u_char *host, int port, ngx_uint_t sentinel)
{
    ngx_http_tollgate_rnode_t  *n;

    n = ngx_calloc(sizeof(ngx_http_tollgate_rnode_t),
                   ngx_http_tollgate_redis->log);
    if (n == NULL) {
        return NULL;
    }

    ngx_cpystrn(n->addr.host, host, sizeof(n->addr.host));
    n->addr.port = port;
    n->sentinel = sentinel;
    n->backoff_ms = NGX_HTTP_TOLLGATE_BACKOFF_MIN;

    n->timeout_ev.handler = ngx_http_tollgate_rnode_timeout;
    n->timeout_ev.data = n;
    n->timeout_ev.log = ngx_http_tollgate_redis->log;
    n->timeout_ev.cancelable = 1;

    n->reconnect_ev.handler = ngx_http_tollgate_rnode_reconnect;
    n->reconnect_ev.data = n;
    n->reconnect_ev.log = ngx_http_tollgate_redis->log;
    n->reconnect_ev.cancelable = 1;

    return n;
}


static void
ngx_http_tollgate_rnode_connect(ngx_http_tollgate_rnode_t *n)
{
    ngx_uint_t                  s;
    ngx_connection_t           *c;
    redisAsyncContext          *ac;
    ngx_http_tollgate_redis_t  *rd;

    rd = ngx_http_tollgate_redis;

    /* the address is numeric (resolved when the configuration was read) */

    ac = redisAsyncConnect((char *) n->addr.host, n->addr.port);

    if (ac == NULL || ac->err) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "tollgate: cannot connect to redis %s:%d: %s",
                      n->addr.host, n->addr.port,
                      ac ? ac->errstr : "out of memory");
        if (ac) {
            redisAsyncFree(ac);
        }

        ngx_http_tollgate_rnode_schedule(n);
        return;
    }

    c = ngx_get_connection(ac->c.fd, rd->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        ngx_http_tollgate_rnode_schedule(n);
        return;
    }

    c->data = n;
    c->read->handler = ngx_http_tollgate_rnode_event;
    c->write->handler = ngx_http_tollgate_rnode_event;
    c->read->log = rd->log;
    c->write->log = rd->log;

    n->ac = ac;
    n->conn = c;
    n->pending = 0;
    n->answered = 0;

    ac->data = n;
    ac->ev.data = n;
    ac->ev.addRead = ngx_http_tollgate_ev_add_read;
    ac->ev.delRead = ngx_http_tollgate_ev_del_read;
    ac->ev.addWrite = ngx_http_tollgate_ev_add_write;
    ac->ev.delWrite = ngx_http_tollgate_ev_del_write;
    ac->ev.cleanup = ngx_http_tollgate_ev_cleanup;

    (void) redisAsyncSetConnectCallback(ac, ngx_http_tollgate_on_connect);
    (void) redisAsyncSetDisconnectCallback(ac,
                                           ngx_http_tollgate_on_disconnect);

    /* writability tells that the connect finished */

    ngx_http_tollgate_ev_add_write(n);

    /*
     * Set-up commands are queued now and written once connected; their
     * replies only need checking.  Scripts are loaded once per
     * connection, so that EVALSHA finds them.
     */

    if (n->subscriber) {
        if (rd->conf->password.len) {
            (void) redisAsyncCommand(ac, ngx_http_tollgate_on_setup, "AUTH",
                                     "AUTH %b", rd->conf->password.data,
                                     rd->conf->password.len);
            n->pending++;
        }

        (void) redisAsyncCommand(ac, ngx_http_tollgate_on_message, NULL,
                                 "SUBSCRIBE %s", rd->channel);

    } else if (!n->sentinel) {
        if (rd->conf->password.len) {
            (void) redisAsyncCommand(ac, ngx_http_tollgate_on_setup, "AUTH",
                                     "AUTH %b", rd->conf->password.data,
                                     rd->conf->password.len);
            n->pending++;
        }

        if (rd->conf->db > 0
            && rd->conf->mode != NGX_HTTP_TOLLGATE_REDIS_CLUSTER)
        {
            (void) redisAsyncCommand(ac, ngx_http_tollgate_on_setup,
                                     "SELECT", "SELECT %d",
                                     (int) rd->conf->db);
            n->pending++;
        }

        for (s = 0; s < NGX_HTTP_TOLLGATE_SCRIPTS; s++) {
            (void) redisAsyncCommand(ac, ngx_http_tollgate_on_setup,
                                     "SCRIPT LOAD", "SCRIPT LOAD %b",
                                     rd->text[s]->text, rd->text[s]->len);
            n->pending++;
        }
    }

    ngx_add_timer(&n->timeout_ev, rd->conf->connect_timeout_ms);
}


static void
ngx_http_tollgate_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_http_tollgate_rnode_t  *n;

    n = ac->data;
    if (n == NULL) {
        return;
    }

    if (status != REDIS_OK) {
        /* hiredis frees the context after this; cleanup detaches it */
        ngx_log_error(NGX_LOG_ERR, ngx_http_tollgate_redis->log, 0,
                      "tollgate: cannot connect to redis %s:%d: %s",
                      n->addr.host, n->addr.port, ac->errstr);
        ngx_http_tollgate_redis_failures++;
        ngx_http_tollgate_rnode_schedule(n);
        return;
    }

    n->connected = 1;
    n->backoff_ms = NGX_HTTP_TOLLGATE_BACKOFF_MIN;

    if (!n->sentinel && !n->subscriber) {
        ngx_http_tollgate_redis_connects++;
    }

    ngx_log_error(NGX_LOG_INFO, ngx_http_tollgate_redis->log, 0,
                  "tollgate: connected to redis %s%s:%d",
                  n->sentinel ? "sentinel " : "", n->addr.host,
                  n->addr.port);

    /* the connect's timer gives way to the replies' */

    if (n->timeout_ev.timer_set) {
        ngx_del_timer(&n->timeout_ev);
    }

    ngx_http_tollgate_rnode_arm(n);

    if (n->sentinel) {
        ngx_http_tollgate_discover();

    } else if (n->subscriber) {
        /* nothing: it only listens */

    } else if (ngx_http_tollgate_redis->slots) {
        ngx_http_tollgate_redis->refreshed_ms = 0;
        ngx_http_tollgate_refresh_slots();
    }
}


static void
ngx_http_tollgate_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_http_tollgate_rnode_t  *n;

    n = ac->data;
    if (n == NULL) {
        return;
    }

    if (status != REDIS_OK && !n->retired) {
        ngx_log_error(NGX_LOG_ERR, ngx_http_tollgate_redis->log, 0,
                      "tollgate: lost redis %s:%d: %s", n->addr.host,
                      n->addr.port, ac->errstr);
        ngx_http_tollgate_redis_failures++;
    }

    n->connected = 0;
    ngx_http_tollgate_rnode_schedule(n);
}


static void
ngx_http_tollgate_on_setup(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply                 *reply;
    ngx_http_tollgate_rnode_t  *n;

    reply = r;
    n = ac->data;

    ngx_http_tollgate_rnode_replied(n, reply);

    if (reply != NULL && reply->type == REDIS_REPLY_ERROR && n) {
        ngx_log_error(NGX_LOG_ERR, ngx_http_tollgate_redis->log, 0,
                      "tollgate: redis %s:%d refused %s: %*s",
                      n->addr.host, n->addr.port, (char *) privdata,
                      (size_t) reply->len, reply->str);
    }
}


/*
 * One timer per connection: it runs while a connect or a reply is
 * awaited, and measures silence, the time since the last reply (or since
 * the call that ended an idle spell).  nginx leaves a timer where it is
 * when asked to move it by less than NGX_TIMER_LAZY_DELAY (300 ms), more
 * than a reply timeout, so a reply only notes the time: the timer, when
 * it fires, looks how long the connection has been silent.  Restarting
 * it per reply would not work: under a steady stream of calls it would
 * fire a timeout after the first, however fast Redis answers.
 */

static void
ngx_http_tollgate_rnode_arm(ngx_http_tollgate_rnode_t *n)
{
    if (n->connected && n->pending == 0) {
        if (n->timeout_ev.timer_set) {
            ngx_del_timer(&n->timeout_ev);
        }

        return;
    }

    if (n->ac == NULL || n->timeout_ev.timer_set) {
        return;
    }

    n->heard_ms = ngx_current_msec;

    ngx_add_timer(&n->timeout_ev,
                  n->connected ? ngx_http_tollgate_redis->conf->timeout_ms
                               : ngx_http_tollgate_redis->conf
                                     ->connect_timeout_ms);
}


/*
 * Every reply callback starts here: one call less pending, the silence
 * timer restarted, and a reply proves the connection.  n is NULL when
 * the connection was dropped and hiredis is flushing its callbacks.
 */

static void
ngx_http_tollgate_rnode_replied(ngx_http_tollgate_rnode_t *n,
    redisReply *reply)
{
    if (n == NULL) {
        return;
    }

    n->pending--;
    n->answered |= (reply != NULL);
    n->heard_ms = ngx_current_msec;
    ngx_http_tollgate_rnode_arm(n);
}


static void
ngx_http_tollgate_rnode_timeout(ngx_event_t *ev)
{
    ngx_msec_t                  timeout_ms, silent_ms;
    ngx_http_tollgate_rnode_t  *n;

    n = ev->data;

    if (n->connected) {
        timeout_ms = ngx_http_tollgate_redis->conf->timeout_ms;
        silent_ms = ngx_current_msec - n->heard_ms;

        if (silent_ms < timeout_ms) {
            /* replies came since it was set: waits for the rest */
            ngx_add_timer(ev, timeout_ms - silent_ms);
            return;
        }
    }

    ngx_http_tollgate_rnode_fail(n, n->connected ? "reply timed out"
                                                 : "connect timed out");
}


/* drops the connection: every pending call completes with NULL */

static void
ngx_http_tollgate_rnode_fail(ngx_http_tollgate_rnode_t *n, const char *why)
{
    redisAsyncContext  *ac;

    /*
     * A warning: the health window and the degradation level say what
     * it means for the gateway, and a transition is logged at its level.
     */

    ngx_log_error(NGX_LOG_WARN, ngx_http_tollgate_redis->log, 0,
                  "tollgate: redis %s:%d %s, %ui calls pending",
                  n->addr.host, n->addr.port, why, n->pending);

    ngx_http_tollgate_redis_failures++;

    ac = n->ac;
    n->connected = 0;

    if (ac != NULL) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }

    n->pending = 0;

    if (ngx_http_tollgate_redis
        && n == ngx_http_tollgate_redis->master
        && ngx_http_tollgate_redis->conf->mode
           == NGX_HTTP_TOLLGATE_REDIS_SENTINEL)
    {
        ngx_http_tollgate_discover();
    }

    ngx_http_tollgate_rnode_schedule(n);
}


static void
ngx_http_tollgate_rnode_schedule(ngx_http_tollgate_rnode_t *n)
{
    ngx_msec_t  delay_ms;

    if (n->retired || n->reconnect_ev.timer_set) {
        return;
    }

    /* exponential backoff with jitter, so workers do not reconnect at once */

    delay_ms = n->backoff_ms + (ngx_msec_t) ngx_random() % (n->backoff_ms / 2
                                                             + 1);
    n->backoff_ms = ngx_min(n->backoff_ms * 2, NGX_HTTP_TOLLGATE_BACKOFF_MAX);

    ngx_add_timer(&n->reconnect_ev, delay_ms);
}


static void
ngx_http_tollgate_rnode_reconnect(ngx_event_t *ev)
{
    ngx_http_tollgate_rnode_t  *n;

    n = ev->data;

    if (n->retired || n->ac != NULL) {
        return;
    }

    ngx_http_tollgate_rnode_connect(n);
}


/* stops using a node; its memory goes once hiredis let go of it */

static void
ngx_http_tollgate_rnode_retire(ngx_http_tollgate_rnode_t *n)
{
    redisAsyncContext  *ac;

    n->retired = 1;
    n->connected = 0;

    if (n->reconnect_ev.timer_set) {
        ngx_del_timer(&n->reconnect_ev);
    }

    if (n->timeout_ev.timer_set) {
        ngx_del_timer(&n->timeout_ev);
    }

    ac = n->ac;

    if (ac != NULL) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }

    /*
     * redisAsyncFree() may defer the free when called from a reply
     * callback; the cleanup hook then still points at n, so n stays
     * allocated: a retired node is small and retirements are rare
     * (a Sentinel failover), so it is kept rather than risk a use after
     * free.
     */
}


static void
ngx_http_tollgate_rnode_event(ngx_event_t *ev)
{
    ngx_connection_t           *c;
    ngx_http_tollgate_rnode_t  *n;

    c = ev->data;
    n = c->data;

    if (n->ac == NULL) {
        return;
    }

    if (ev->write) {
        redisAsyncHandleWrite(n->ac);

    } else {
        redisAsyncHandleRead(n->ac);
    }
}


/* hiredis's event hooks; each must be idempotent */

static void
ngx_http_tollgate_ev_add_read(void *privdata)
{
    ngx_http_tollgate_rnode_t *n = privdata;

    if (n->conn && !n->conn->read->active) {
        (void) ngx_add_event(n->conn->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_tollgate_ev_del_read(void *privdata)
{
    ngx_http_tollgate_rnode_t *n = privdata;

    if (n->conn && n->conn->read->active) {
        (void) ngx_del_event(n->conn->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_http_tollgate_ev_add_write(void *privdata)
{
    ngx_http_tollgate_rnode_t *n = privdata;

    if (n->conn && !n->conn->write->active) {
        (void) ngx_add_event(n->conn->write, NGX_WRITE_EVENT,
                             NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_tollgate_ev_del_write(void *privdata)
{
    ngx_http_tollgate_rnode_t *n = privdata;

    if (n->conn && n->conn->write->active) {
        (void) ngx_del_event(n->conn->write, NGX_WRITE_EVENT, 0);
    }
}


/* called by hiredis just before it closes the socket and frees ac */

static void
ngx_http_tollgate_ev_cleanup(void *privdata)
{
    ngx_connection_t           *c;
    ngx_http_tollgate_rnode_t  *n = privdata;

    c = n->conn;

    if (c != NULL) {
        if (c->read->active) {
            (void) ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
        }

        if (c->write->active) {
            (void) ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
        }

        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }

        /* hiredis owns the descriptor and closes it */
        c->fd = (ngx_socket_t) -1;
        ngx_free_connection(c);
    }

    n->conn = NULL;
    n->ac = NULL;
    n->connected = 0;

    if (n->timeout_ev.timer_set) {
        ngx_del_timer(&n->timeout_ev);
    }
}
