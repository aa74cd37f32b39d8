/*
 * Copyright (C) Tollgate developers
 *
 * Routing of the admin's Redis commands.  Every call, pipeline and
 * transaction goes through tga_redis_exchange(): each unit (a command,
 * or a MULTI/EXEC kept whole) is sent to the node that owns its slot,
 * all nodes are written before any is read, and the replies are read in
 * the order the units were given.  A pipeline is grouped per node this
 * way rather than run one command at a time because the live view reads
 * every storage cluster's keys once a second: grouped, that costs about
 * one round trip whatever the number of masters, not one per key.
 *
 * A unit that was redirected, or whose node failed, is sent again once
 * the topology was read again: after MOVED and ASK always (Redis did not
 * run it), after a failed or read-only node only when the slot map or
 * the sentinels now name another master, since a command that timed out
 * may have run and a borrow must not be counted twice on one master.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "redis.h"
#include "redis_cluster.h"


/* the first try, and a retry or two after a redirection */
#define TGA_REDIS_ROUNDS  3


typedef enum {
    TGA_REDIS_DONE = 0,         /* a reply, maybe the command's own error */
    TGA_REDIS_DOWN,             /* no reply: connect, I/O error, timeout */
    TGA_REDIS_MOVED,
    TGA_REDIS_ASK,
    TGA_REDIS_STALE,            /* READONLY, CLUSTERDOWN: ask another */
    TGA_REDIS_FAILED            /* given up, see why */
} tga_redis_verdict_e;


/* what goes to one node in one piece, and what came back */
typedef struct {
    int                   argc;         /* the command, unless multi */
    const char          **argv;
    int                   n;            /* a MULTI's commands */
    const int            *multi_argc;
    const char **const   *multi_argv;
    char                 *copy;         /* a pipelined command's args */

    unsigned              multi:1;
    unsigned              fixed:1;      /* this node only, never again */
    unsigned              asking:1;     /* ASK: send ASKING first */
    unsigned              placed:1;     /* sent, or tried, this round */
    unsigned              sent:1;
    int                   slot;
    int                   node;
    unsigned              node_gen;

    tga_redis_verdict_e   verdict;
    redisReply           *reply;        /* the command's, or EXEC's */
    char                  redirect[280];    /* "SLOT HOST:PORT" */
    char                  why[200];
} tga_redis_unit_t;


tga_redis_conf_t           tga_rconf;

static unsigned            tga_redis_round;
static unsigned            tga_redis_topology;    /* bumped on a change */

/* appended and not yet read: units [0, n), exchanged up to sent */
static tga_redis_unit_t   *tga_rpipe;
static size_t              tga_rpipe_n;
static size_t              tga_rpipe_size;
static size_t              tga_rpipe_sent;
static size_t              tga_rpipe_next;


/* "500ms", "2s" or a bare number of seconds, as nginx times read */
static int
tga_redis_parse_time(const char *s, struct timeval *tv)
{
    char       *end;
    long long   n, ms;

    n = strtoll(s, &end, 10);
    if (end == s || n < 0) {
        return TGA_ERROR;
    }

    if (strcmp(end, "ms") == 0) {
        ms = n;
    } else if (strcmp(end, "s") == 0 || *end == '\0') {
        ms = n * 1000;
    } else {
        return TGA_ERROR;
    }

    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;

    return TGA_OK;
}


int
tga_redis_parse_addr(const char *s, char *host, size_t size, int *port)
{
    const char  *colon;
    size_t       len;

    colon = strrchr(s, ':');
    len = colon ? (size_t) (colon - s) : 0;

    if (colon == NULL || len == 0 || len >= size) {
        return TGA_ERROR;
    }

    memcpy(host, s, len);
    host[len] = '\0';
    *port = atoi(colon + 1);

    return *port > 0 && *port < 65536 ? TGA_OK : TGA_ERROR;
}


/* "host:port,host:port", kept as it is once every address parses */
static int
tga_redis_parse_list(const char *list, char *dst, size_t size)
{
    int    port, n;
    char   copy[512], host[256], *addr, *save;

    snprintf(copy, sizeof(copy), "%s", list);
    n = 0;

    for (addr = strtok_r(copy, ",", &save);
         addr;
         addr = strtok_r(NULL, ",", &save))
    {
        if (tga_redis_parse_addr(addr, host, sizeof(host), &port) != TGA_OK) {
            return TGA_ERROR;
        }

        n++;
    }

    snprintf(dst, size, "%s", list);

    return n ? TGA_OK : TGA_ERROR;
}


static int
tga_redis_parse_word(tga_redis_conf_t *rc, const char *w)
{
    if (strncmp(w, "password=", 9) == 0) {
        snprintf(rc->password, sizeof(rc->password), "%s", w + 9);
        return TGA_OK;
    }

    if (strncmp(w, "db=", 3) == 0) {
        rc->db = atoi(w + 3);
        return rc->db >= 0 ? TGA_OK : TGA_ERROR;
    }

    if (strncmp(w, "timeout=", 8) == 0) {
        return tga_redis_parse_time(w + 8, &rc->timeout);
    }

    if (strncmp(w, "sentinel=", 9) == 0) {
        return tga_redis_parse_list(w + 9, rc->sentinels,
                                    sizeof(rc->sentinels));
    }

    if (strncmp(w, "master=", 7) == 0) {
        snprintf(rc->master, sizeof(rc->master), "%s", w + 7);
        return TGA_OK;
    }

    if (strncmp(w, "cluster=", 8) == 0) {
        return tga_redis_parse_list(w + 8, rc->seeds, sizeof(rc->seeds));
    }

    return tga_redis_parse_addr(w, rc->host, sizeof(rc->host), &rc->port);
}


/* which of the three modes the words named, and what it cannot take */
static int
tga_redis_conf_mode(tga_redis_conf_t *rc, const char *spec)
{
    if (rc->seeds[0]) {
        rc->mode = TGA_REDIS_CLUSTER;

        if (rc->db != 0) {
            tga_log_error("msg=\"redis cluster has no db other than 0\" "
                          "value=\"%s\"", spec);
            return TGA_ERROR;
        }

        return TGA_OK;
    }

    if (rc->sentinels[0]) {
        rc->mode = TGA_REDIS_SENTINEL;

        if (rc->master[0] == '\0') {
            tga_log_error("msg=\"redis sentinel= needs master=\" "
                          "value=\"%s\"", spec);
            return TGA_ERROR;
        }

        return TGA_OK;
    }

    if (rc->host[0] == '\0') {
        tga_log_error("msg=\"redis setting names no address\" value=\"%s\"",
                      spec);
        return TGA_ERROR;
    }

    rc->mode = TGA_REDIS_SINGLE;
    (void) tga_redis_node_find(rc->host, rc->port, 1);

    return TGA_OK;
}


int
tga_redis_init(const char *spec)
{
    char  copy[512], *word, *save;

    tga_redis_close();
    memset(&tga_rconf, 0, sizeof(tga_rconf));
    tga_rconf.timeout.tv_sec = 1;
    snprintf(copy, sizeof(copy), "%s", spec);

    for (word = strtok_r(copy, " \t", &save);
         word;
         word = strtok_r(NULL, " \t", &save))
    {
        if (tga_redis_parse_word(&tga_rconf, word) != TGA_OK) {
            tga_log_error("msg=\"invalid redis setting\" word=\"%s\"", word);
            return TGA_ERROR;
        }
    }

    return tga_redis_conf_mode(&tga_rconf, spec);
}


void
tga_redis_close(void)
{
    int     i;
    size_t  k;

    for (i = 0; i < TGA_REDIS_NODES_MAX; i++) {
        tga_redis_node_close(&tga_rnodes[i], NULL);
    }

    for (k = tga_rpipe_next; k < tga_rpipe_n; k++) {
        freeReplyObject(tga_rpipe[k].reply);
        free(tga_rpipe[k].copy);
    }

    free(tga_rpipe);
    tga_rpipe = NULL;
    tga_rpipe_n = 0;
    tga_rpipe_size = 0;
    tga_rpipe_sent = 0;
    tga_rpipe_next = 0;
}


/* connections and topology --------------------------------------------- */

/* asks each sentinel in turn for the master's address */
static int
tga_redis_resolve_master(char *host, size_t size, int *port)
{
    int            sport, rc;
    char           list[512], shost[256], *addr, *save;
    redisReply    *r;
    redisContext  *c;

    snprintf(list, sizeof(list), "%s", tga_rconf.sentinels);
    rc = TGA_ERROR;

    for (addr = strtok_r(list, ",", &save);
         addr && rc != TGA_OK;
         addr = strtok_r(NULL, ",", &save))
    {
        if (tga_redis_parse_addr(addr, shost, sizeof(shost), &sport)) {
            continue;
        }

        c = redisConnectWithTimeout(shost, sport, tga_rconf.timeout);
        if (c == NULL || c->err) {
            redisFree(c);
            continue;
        }

        redisSetTimeout(c, tga_rconf.timeout);
        r = redisCommand(c, "SENTINEL get-master-addr-by-name %s",
                         tga_rconf.master);

        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
            snprintf(host, size, "%s", r->element[0]->str);
            *port = atoi(r->element[1]->str);
            rc = TGA_OK;
        }

        freeReplyObject(r);
        redisFree(c);
    }

    return rc;
}


/* node 0 is the master the sentinels name; 1 when that changed */
static int
tga_redis_sentinel_refresh(void)
{
    int                port;
    char               host[256];
    tga_redis_node_t  *node;

    node = &tga_rnodes[0];

    if (tga_redis_resolve_master(host, sizeof(host), &port) != TGA_OK) {
        snprintf(node->error, sizeof(node->error),
                 "no sentinel knows master %s", tga_rconf.master);
        return 0;
    }

    if (node->port == port && strcmp(node->host, host) == 0) {
        return 0;
    }

    if (node->host[0]) {
        tga_log_info("msg=\"sentinels name a new redis master\" "
                     "master=\"%s\" addr=\"%s:%d\" was=\"%s:%d\"",
                     tga_rconf.master, host, port, node->host, node->port);
    }

    tga_redis_node_close(node, NULL);
    snprintf(node->host, sizeof(node->host), "%s", host);
    node->port = port;
    node->gen++;

    return 1;
}


/* reads the topology again; a change is what allows a failed retry */
static void
tga_redis_refresh(void)
{
    int  changed;

    switch (tga_rconf.mode) {

    case TGA_REDIS_CLUSTER:
        changed = tga_redis_cluster_refresh();
        break;

    case TGA_REDIS_SENTINEL:
        changed = tga_redis_sentinel_refresh();
        break;

    default:
        changed = 0;
    }

    tga_redis_topology += (unsigned) changed;
}


static int
tga_redis_route(int slot)
{
    return tga_rconf.mode == TGA_REDIS_CLUSTER
           ? tga_redis_cluster_route(slot) : 0;
}


static int
tga_redis_handshake(redisContext *c)
{
    int          ok;
    redisReply  *r;

    ok = 1;

    if (tga_rconf.password[0]) {
        r = redisCommand(c, "AUTH %s", tga_rconf.password);
        ok = r && r->type != REDIS_REPLY_ERROR;
        freeReplyObject(r);
    }

    if (ok && tga_rconf.db) {
        r = redisCommand(c, "SELECT %d", tga_rconf.db);
        ok = r && r->type != REDIS_REPLY_ERROR;
        freeReplyObject(r);
    }

    return ok ? TGA_OK : TGA_ERROR;
}


redisContext *
tga_redis_open(const char *host, int port, char *err, size_t size)
{
    redisContext  *c;

    c = redisConnectWithTimeout(host, port, tga_rconf.timeout);
    if (c == NULL || c->err) {
        snprintf(err, size, "connect: %s", c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }

    redisSetTimeout(c, tga_rconf.timeout);

    if (tga_redis_handshake(c) != TGA_OK) {
        snprintf(err, size, "auth or select failed");
        redisFree(c);
        return NULL;
    }

    return c;
}


void
tga_redis_node_close(tga_redis_node_t *node, const char *why)
{
    /* why may be the context's own errstr: copied before the free */
    if (why) {
        snprintf(node->error, sizeof(node->error), "%s", why);
    }

    if (node->c) {
        redisFree(node->c);
        node->c = NULL;
    }
}


/* a node's connection, opened once a round at most */
static redisContext *
tga_redis_node_ready(int i)
{
    tga_redis_node_t  *node;

    node = &tga_rnodes[i];

    if (node->c || node->down_round == tga_redis_round) {
        return node->c;
    }

    /* a lost master connection: the sentinels may name another */
    if (tga_rconf.mode == TGA_REDIS_SENTINEL) {
        tga_redis_topology += (unsigned) tga_redis_sentinel_refresh();
    }

    if (node->host[0]) {
        node->c = tga_redis_open(node->host, node->port, node->error,
                                 sizeof(node->error));
    }

    if (node->c == NULL) {
        node->down_round = tga_redis_round;
    }

    return node->c;
}


/* the exchange ---------------------------------------------------------- */

static void
tga_redis_unit_init(tga_redis_unit_t *u, int argc, const char **argv)
{
    memset(u, 0, sizeof(tga_redis_unit_t));
    u->argc = argc;
    u->argv = argv;
    u->node = -1;
    u->slot = tga_rconf.mode == TGA_REDIS_CLUSTER
              ? tga_redis_command_slot(argc, argv) : TGA_REDIS_NO_KEY;
}


static const char *
tga_redis_unit_name(const tga_redis_unit_t *u)
{
    return u->multi ? "MULTI" : u->argv[0];
}


/* why u has no reply, with the node's address when there is one */
static void
tga_redis_unit_why(tga_redis_unit_t *u, const char *text)
{
    tga_redis_node_t  *node;

    if (u->why[0]) {
        return;
    }

    node = u->node >= 0 ? &tga_rnodes[u->node] : NULL;

    if (node && node->host[0]) {
        snprintf(u->why, sizeof(u->why), "%s:%d: %s", node->host,
                 node->port, text);
    } else {
        snprintf(u->why, sizeof(u->why), "%s", text);
    }
}


static void
tga_redis_unit_down(tga_redis_unit_t *u)
{
    u->verdict = TGA_REDIS_DOWN;
    freeReplyObject(u->reply);
    u->reply = NULL;
    u->why[0] = '\0';
    tga_redis_unit_why(u, tga_rnodes[u->node].error);
}


/* the node a MOVED or ASK named ("SLOT HOST:PORT"), and its slot */
static int
tga_redis_redirect_node(tga_redis_unit_t *u, int *slot)
{
    int          port;
    char         host[256];
    const char  *addr;

    *slot = atoi(u->redirect);
    addr = strchr(u->redirect, ' ');

    if (addr == NULL) {
        return -1;
    }

    /* ":PORT": the node did not know its own address, keep the host */
    if (addr[1] == ':') {
        snprintf(host, sizeof(host), "%s", tga_rnodes[u->node].host);
        port = atoi(addr + 2);

    } else if (tga_redis_parse_addr(addr + 1, host, sizeof(host), &port)
               != TGA_OK)
    {
        return -1;
    }

    return tga_redis_node_find(host, port, 1);
}


static tga_redis_verdict_e
tga_redis_verdict(const redisReply *r, char *redirect, size_t size)
{
    if (r->type != REDIS_REPLY_ERROR) {
        return TGA_REDIS_DONE;
    }

    if (strncmp(r->str, "MOVED ", 6) == 0) {
        snprintf(redirect, size, "%s", r->str + 6);
        return TGA_REDIS_MOVED;
    }

    if (strncmp(r->str, "ASK ", 4) == 0) {
        snprintf(redirect, size, "%s", r->str + 4);
        return TGA_REDIS_ASK;
    }

    if (strncmp(r->str, "READONLY", 8) == 0
        || strncmp(r->str, "CLUSTERDOWN", 11) == 0)
    {
        return TGA_REDIS_STALE;
    }

    return TGA_REDIS_DONE;
}


/*
 * Where u goes this round; 0 when it is not sent (again).  A failed or
 * stale node is asked again only under a new address or a new owner.
 */
static int
tga_redis_unit_place(tga_redis_unit_t *u, int round)
{
    int  node, slot;

    if (round > 0
        && (u->fixed || u->verdict == TGA_REDIS_DONE
            || u->verdict == TGA_REDIS_FAILED))
    {
        return 0;
    }

    if (u->fixed) {
        node = u->node;

    } else if (u->verdict == TGA_REDIS_ASK) {
        node = tga_redis_redirect_node(u, &slot);

    } else {
        node = tga_redis_route(u->slot);
    }

    if (node < 0) {
        tga_redis_unit_why(u, "no master known for the slot");
        u->verdict = TGA_REDIS_FAILED;
        return 0;
    }

    if ((u->verdict == TGA_REDIS_DOWN || u->verdict == TGA_REDIS_STALE)
        && node == u->node && tga_rnodes[node].gen == u->node_gen)
    {
        return 0;
    }

    u->asking = u->verdict == TGA_REDIS_ASK;
    u->node = node;
    u->why[0] = '\0';
    freeReplyObject(u->reply);
    u->reply = NULL;

    return 1;
}


static void
tga_redis_unit_send(tga_redis_unit_t *u)
{
    int            i, ok;
    redisContext  *c;
    const char    *asking[] = { "ASKING" }, *multi[] = { "MULTI" },
                  *exec[] = { "EXEC" };

    c = tga_redis_node_ready(u->node);
    u->node_gen = tga_rnodes[u->node].gen;
    u->verdict = TGA_REDIS_DONE;

    if (c == NULL) {
        tga_redis_unit_down(u);
        return;
    }

    ok = !u->asking || redisAppendCommandArgv(c, 1, asking, NULL) == REDIS_OK;

    if (u->multi) {
        ok = ok && redisAppendCommandArgv(c, 1, multi, NULL) == REDIS_OK;

        for (i = 0; ok && i < u->n; i++) {
            ok = redisAppendCommandArgv(c, u->multi_argc[i],
                                        (const char **) u->multi_argv[i],
                                        NULL) == REDIS_OK;
        }

        ok = ok && redisAppendCommandArgv(c, 1, exec, NULL) == REDIS_OK;

    } else {
        ok = ok && redisAppendCommandArgv(c, u->argc, u->argv, NULL)
                   == REDIS_OK;
    }

    /* a half-appended unit would leave its replies out of step */
    if (!ok) {
        tga_redis_node_close(&tga_rnodes[u->node], "out of memory");
        tga_redis_unit_down(u);
        return;
    }

    u->sent = 1;
}


/* every node's commands are on the wire before any reply is awaited */
static void
tga_redis_flush(void)
{
    int                i, done;
    tga_redis_node_t  *node;

    for (i = 0; i < TGA_REDIS_NODES_MAX; i++) {
        node = &tga_rnodes[i];
        done = 0;

        while (node->c && !done) {
            if (redisBufferWrite(node->c, &done) != REDIS_OK) {
                tga_redis_node_close(node, node->c->errstr);
            }
        }
    }
}


/* the replies of ASKING, MULTI and QUEUED are read and judged, kept not */
static void
tga_redis_unit_read(tga_redis_unit_t *u)
{
    int                  i, count;
    void                *r;
    tga_redis_node_t    *node;

    node = &tga_rnodes[u->node];
    count = u->asking + (u->multi ? u->n + 2 : 1);

    for (i = 0; i < count; i++) {
        if (node->c == NULL) {
            tga_redis_unit_down(u);
            return;
        }

        if (redisGetReply(node->c, &r) != REDIS_OK) {
            tga_redis_node_close(node, node->c->errstr);
            tga_redis_unit_down(u);
            return;
        }

        if (u->verdict == TGA_REDIS_DONE) {
            u->verdict = tga_redis_verdict(r, u->redirect,
                                           sizeof(u->redirect));
        }

        if (i + 1 < count) {
            freeReplyObject(r);
        } else {
            u->reply = r;
        }
    }
}


/* after a round: the topology again if asked, then what MOVED said */
static void
tga_redis_after_round(tga_redis_unit_t *units, size_t n)
{
    int                refresh, node, slot;
    size_t             i;
    tga_redis_unit_t  *u;

    refresh = 0;

    for (i = 0; i < n; i++) {
        refresh |= units[i].placed && units[i].verdict != TGA_REDIS_DONE
                   && units[i].verdict != TGA_REDIS_ASK;
    }

    if (refresh) {
        tga_redis_refresh();
    }

    for (i = 0; i < n; i++) {
        u = &units[i];

        if (u->placed && u->verdict == TGA_REDIS_MOVED) {
            node = tga_redis_redirect_node(u, &slot);
            tga_redis_cluster_slot_set(slot, node);
        }
    }
}


/* a unit without its answer has no reply; one log line for them all */
static void
tga_redis_finish(tga_redis_unit_t *units, size_t n)
{
    size_t             i, failed;
    tga_redis_unit_t  *u, *first;

    failed = 0;
    first = NULL;

    for (i = 0; i < n; i++) {
        u = &units[i];

        if (u->verdict == TGA_REDIS_DONE) {
            continue;
        }

        if (u->reply && u->reply->type == REDIS_REPLY_ERROR) {
            tga_redis_unit_why(u, u->reply->str);
        }

        freeReplyObject(u->reply);
        u->reply = NULL;
        first = first ? first : u;
        failed++;
    }

    if (failed) {
        tga_log_error("msg=\"redis call failed\" command=%s error=\"%s\" "
                      "failed=%zu", tga_redis_unit_name(first), first->why,
                      failed);
    }
}


static void
tga_redis_exchange(tga_redis_unit_t *units, size_t n)
{
    int                round;
    size_t             i, placed;
    tga_redis_unit_t  *u;

    /* no slot map yet, or every master was lost */
    if (tga_rconf.mode == TGA_REDIS_CLUSTER
        && tga_redis_cluster_route(TGA_REDIS_NO_KEY) < 0)
    {
        tga_redis_refresh();
    }

    for (round = 0; round < TGA_REDIS_ROUNDS; round++) {
        tga_redis_round++;
        placed = 0;

        for (i = 0; i < n; i++) {
            u = &units[i];
            u->sent = 0;
            u->placed = tga_redis_unit_place(u, round);

            if (u->placed) {
                tga_redis_unit_send(u);
                placed++;
            }
        }

        if (placed == 0) {
            break;
        }

        tga_redis_flush();

        for (i = 0; i < n; i++) {
            if (units[i].sent) {
                tga_redis_unit_read(&units[i]);
            }
        }

        tga_redis_after_round(units, n);
    }

    tga_redis_finish(units, n);
}


/* calls ----------------------------------------------------------------- */

/* a failure without reply was logged by the exchange, errors are here */
static redisReply *
tga_redis_check(redisReply *r, const char *what)
{
    if (r && r->type == REDIS_REPLY_ERROR) {
        tga_log_error("msg=\"redis error\" command=%s error=\"%s\"",
                      what, r->str);
        freeReplyObject(r);
        return NULL;
    }

    return r;
}


redisReply *
tga_redis_cmd(int argc, const char **argv)
{
    tga_redis_unit_t  u;

    tga_redis_unit_init(&u, argc, argv);
    tga_redis_exchange(&u, 1);

    return tga_redis_check(u.reply, argv[0]);
}


static int
tga_redis_pipe_grow(void)
{
    size_t             size;
    tga_redis_unit_t  *p;

    size = tga_rpipe_size ? tga_rpipe_size * 2 : 64;
    p = realloc(tga_rpipe, size * sizeof(tga_redis_unit_t));

    if (p == NULL) {
        tga_log_error("msg=\"no memory for a redis pipeline\" commands=%zu",
                      size);
        return TGA_ERROR;
    }

    tga_rpipe = p;
    tga_rpipe_size = size;

    return TGA_OK;
}


/* the command is copied: the caller's buffers may be reused at once */
int
tga_redis_append(int argc, const char **argv)
{
    int                i;
    char              *p, **copy;
    size_t             bytes, len;
    tga_redis_unit_t  *u;

    if (tga_rpipe_n == tga_rpipe_size && tga_redis_pipe_grow() != TGA_OK) {
        return TGA_ERROR;
    }

    bytes = (size_t) argc * sizeof(char *);

    for (i = 0; i < argc; i++) {
        bytes += strlen(argv[i]) + 1;
    }

    copy = malloc(bytes);
    if (copy == NULL) {
        tga_log_error("msg=\"no memory for a redis command\" command=%s",
                      argv[0]);
        return TGA_ERROR;
    }

    p = (char *) (copy + argc);

    for (i = 0; i < argc; i++) {
        len = strlen(argv[i]) + 1;
        copy[i] = memcpy(p, argv[i], len);
        p += len;
    }

    u = &tga_rpipe[tga_rpipe_n++];
    tga_redis_unit_init(u, argc, (const char **) copy);
    u->copy = (char *) copy;

    return TGA_OK;
}


redisReply *
tga_redis_read(void)
{
    redisReply        *r;
    tga_redis_unit_t  *u;

    if (tga_rpipe_next == tga_rpipe_n) {
        return NULL;
    }

    if (tga_rpipe_next == tga_rpipe_sent) {
        tga_redis_exchange(tga_rpipe + tga_rpipe_sent,
                           tga_rpipe_n - tga_rpipe_sent);
        tga_rpipe_sent = tga_rpipe_n;
    }

    u = &tga_rpipe[tga_rpipe_next++];
    r = tga_redis_check(u->reply, u->argv[0]);
    free(u->copy);

    if (tga_rpipe_next == tga_rpipe_n) {
        tga_rpipe_n = 0;
        tga_rpipe_sent = 0;
        tga_rpipe_next = 0;
    }

    return r;
}


/*
 * In a Redis Cluster a transaction runs on one node, so its keys must
 * share one slot (every key of a storage cluster does, by its hash tag);
 * a keyless command such as PUBLISH may come along.
 */
static int
tga_redis_multi_slot(int n, const int *argc, const char **const *argv)
{
    int  i, s, slot;

    slot = TGA_REDIS_NO_KEY;

    for (i = 0; tga_rconf.mode == TGA_REDIS_CLUSTER && i < n; i++) {
        s = tga_redis_command_slot_all(argc[i], argv[i]);

        if (s == TGA_REDIS_NO_KEY) {
            continue;
        }

        if (s == TGA_REDIS_CROSS_SLOT
            || (slot != TGA_REDIS_NO_KEY && s != slot))
        {
            tga_log_error("msg=\"redis transaction not sent: its keys are "
                          "in different cluster slots\" command=%s key=\"%s\"",
                          argv[i][0], argc[i] > 1 ? argv[i][1] : "");
            return TGA_REDIS_CROSS_SLOT;
        }

        slot = s;
    }

    return slot;
}


redisReply *
tga_redis_multi(int n, const int *argc, const char **const *argv)
{
    int               slot;
    redisReply       *r;
    tga_redis_unit_t  u;

    slot = tga_redis_multi_slot(n, argc, argv);
    if (slot == TGA_REDIS_CROSS_SLOT) {
        return NULL;
    }

    tga_redis_unit_init(&u, argc[0], (const char **) argv[0]);
    u.multi = 1;
    u.n = n;
    u.multi_argc = argc;
    u.multi_argv = argv;
    u.slot = slot;

    tga_redis_exchange(&u, 1);
    r = u.reply;

    if (r && (r->type != REDIS_REPLY_ARRAY || (int) r->elements != n)) {
        tga_log_error("msg=\"redis transaction not run\" commands=%d "
                      "error=\"%s\"", n,
                      r->type == REDIS_REPLY_ERROR ? r->str : "");
        freeReplyObject(r);
        return NULL;
    }

    return r;
}


/* the masters to ask: the one server, or every master of a full map */
static int
tga_redis_masters(int *nodes)
{
    int  n;

    if (tga_rconf.mode != TGA_REDIS_CLUSTER) {
        nodes[0] = 0;
        return 1;
    }

    n = tga_redis_cluster_masters(nodes, TGA_REDIS_NODES_MAX);

    if (n <= 0) {
        tga_redis_refresh();
        n = tga_redis_cluster_masters(nodes, TGA_REDIS_NODES_MAX);
    }

    if (n <= 0) {
        tga_log_error("msg=\"no redis cluster map covers every slot\" "
                      "seeds=\"%s\"", tga_rconf.seeds);
    }

    return n;
}


static int
tga_redis_each_master_once(int argc, const char **argv,
    tga_redis_each_pt each, void *data)
{
    int               i, n, rc, nodes[TGA_REDIS_NODES_MAX];
    tga_redis_unit_t  units[TGA_REDIS_NODES_MAX];

    n = tga_redis_masters(nodes);
    if (n <= 0) {
        return TGA_ERROR;
    }

    for (i = 0; i < n; i++) {
        tga_redis_unit_init(&units[i], argc, argv);
        units[i].fixed = 1;
        units[i].node = nodes[i];
    }

    tga_redis_exchange(units, (size_t) n);
    rc = TGA_OK;

    for (i = 0; i < n; i++) {
        units[i].reply = tga_redis_check(units[i].reply, argv[0]);
        rc = units[i].reply ? rc : TGA_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (rc == TGA_OK && each) {
            each(units[i].reply, data);
        }

        freeReplyObject(units[i].reply);
    }

    return rc;
}


int
tga_redis_each_master(int argc, const char **argv, tga_redis_each_pt each,
    void *data)
{
    int       rc;
    unsigned  topology;

    topology = tga_redis_topology;
    rc = tga_redis_each_master_once(argc, argv, each, data);

    /* a failover seen on the way: the masters it named are asked */
    if (rc != TGA_OK && tga_redis_topology != topology) {
        rc = tga_redis_each_master_once(argc, argv, each, data);
    }

    return rc;
}


int
tga_redis_ping(void)
{
    const char  *argv[] = { "PING" };

    return tga_redis_each_master(1, argv, NULL, NULL);
}


/* scripts -------------------------------------------------------------- */

static const char *
tga_redis_script_text(const char *name)
{
    char                   file[128];
    const tga_embedded_t  *s;

    snprintf(file, sizeof(file), "%s.lua", name);

    for (s = tga_scripts; s->name; s++) {
        if (strcmp(s->name, file) == 0) {
            return s->text;
        }
    }

    return NULL;
}


/*
 * EVAL rather than EVALSHA: Redis caches the compiled script by its
 * digest anyway, and EVAL needs no reload after Redis restarts empty.
 */
int
tga_redis_eval_init(tga_redis_eval_t *e, const char *name, int nkeys,
    int argc, const char **argv)
{
    int  i;

    e->argv[1] = tga_redis_script_text(name);

    if (e->argv[1] == NULL || argc + 3 > TGA_REDIS_EVAL_ARGS) {
        tga_log_error("msg=\"script not embedded or too many arguments\" "
                      "script=%s args=%d", name, argc);
        return TGA_ERROR;
    }

    snprintf(e->nkeys, sizeof(e->nkeys), "%d", nkeys);
    e->argv[0] = "EVAL";
    e->argv[2] = e->nkeys;

    for (i = 0; i < argc; i++) {
        e->argv[i + 3] = argv[i];
    }

    e->argc = argc + 3;

    return TGA_OK;
}


redisReply *
tga_redis_script(const char *name, int nkeys, int argc, const char **argv)
{
    tga_redis_eval_t  e;

    if (tga_redis_eval_init(&e, name, nkeys, argc, argv) != TGA_OK) {
        return NULL;
    }

    return tga_redis_cmd(e.argc, e.argv);
}


json_t *
tga_redis_hash_json(redisReply *r)
{
    size_t   i;
    json_t  *obj;

    obj = json_object();

    for (i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements;
         i += 2)
    {
        if (r->element[i]->type == REDIS_REPLY_STRING
            && r->element[i + 1]->type == REDIS_REPLY_STRING)
        {
            json_object_set_new(obj, r->element[i]->str,
                                json_string(r->element[i + 1]->str));
        }
    }

    return obj;
}
