/*
 * Copyright (C) Tollgate developers
 *
 * Redis Cluster topology: the hash slot of a command's keys, the nodes
 * table and the slot map.  The admin sends only commands whose first key
 * is at argv[1] (EVAL's at argv[3]) or that have no key at all, so the
 * key positions below cover what it sends, not every Redis command.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "redis_cluster.h"


tga_redis_node_t  tga_rnodes[TGA_REDIS_NODES_MAX];

/* the owner of each slot as a node index plus one: 0 is "not known" */
static unsigned char  tga_rslots[TGA_REDIS_SLOTS];


/* CRC-16/XMODEM (polynomial 0x1021, zero start), as the slots use */
static unsigned
tga_redis_crc16(const char *p, size_t len)
{
    int       bit;
    unsigned  crc;

    crc = 0;

    while (len--) {
        crc ^= (unsigned) (unsigned char) *p++ << 8;

        for (bit = 0; bit < 8; bit++) {
            crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
        }
    }

    return crc & 0xffff;
}


/* a non-empty "{...}" hashes alone, so tg:{C}:... share C's slot */
static int
tga_redis_key_slot(const char *key)
{
    size_t       len;
    const char  *open, *close;

    len = strlen(key);
    open = strchr(key, '{');
    close = open ? strchr(open + 1, '}') : NULL;

    if (close && close > open + 1) {
        key = open + 1;
        len = (size_t) (close - key);
    }

    return (int) (tga_redis_crc16(key, len) & (TGA_REDIS_SLOTS - 1));
}


/* how many keys a command has, from argv[*first] on */
static int
tga_redis_command_keys(int argc, const char **argv, int *first)
{
    int                        nkeys;
    const char *const         *name;
    static const char *const   keyless[] = {
        "PING", "INFO", "PUBLISH", "MULTI", "EXEC", "ASKING", "CLUSTER",
        NULL
    };

    if (strcasecmp(argv[0], "EVAL") == 0
        || strcasecmp(argv[0], "EVALSHA") == 0)
    {
        nkeys = argc > 2 ? atoi(argv[2]) : 0;
        *first = 3;

        return nkeys > 0 && nkeys <= argc - 3 ? nkeys : 0;
    }

    for (name = keyless; *name; name++) {
        if (strcasecmp(argv[0], *name) == 0) {
            return 0;
        }
    }

    *first = 1;

    return argc > 1 ? 1 : 0;
}


int
tga_redis_command_slot(int argc, const char **argv)
{
    int  first;

    if (tga_redis_command_keys(argc, argv, &first) == 0) {
        return TGA_REDIS_NO_KEY;
    }

    return tga_redis_key_slot(argv[first]);
}


int
tga_redis_command_slot_all(int argc, const char **argv)
{
    int  i, first, nkeys, slot;

    nkeys = tga_redis_command_keys(argc, argv, &first);
    slot = nkeys ? tga_redis_key_slot(argv[first]) : TGA_REDIS_NO_KEY;

    for (i = 1; i < nkeys; i++) {
        if (tga_redis_key_slot(argv[first + i]) != slot) {
            return TGA_REDIS_CROSS_SLOT;
        }
    }

    return slot;
}


int
tga_redis_node_find(const char *host, int port, int add)
{
    int                i, free_i;
    tga_redis_node_t  *node;

    free_i = -1;

    for (i = 0; i < TGA_REDIS_NODES_MAX; i++) {
        node = &tga_rnodes[i];

        if (node->host[0] == '\0') {
            free_i = free_i < 0 ? i : free_i;

        } else if (node->port == port && strcmp(node->host, host) == 0) {
            return i;
        }
    }

    if (!add || free_i < 0) {
        return -1;
    }

    node = &tga_rnodes[free_i];
    snprintf(node->host, sizeof(node->host), "%s", host);
    node->port = port;
    node->gen++;
    node->master = 0;
    node->down_round = 0;
    node->error[0] = '\0';

    return free_i;
}


int
tga_redis_cluster_route(int slot)
{
    int  i, any;

    if (slot >= 0) {
        return tga_rslots[slot] - 1;
    }

    /* a keyless command: a master already connected saves a connect */
    any = -1;

    for (i = 0; i < TGA_REDIS_NODES_MAX; i++) {
        if (tga_rnodes[i].master) {
            if (tga_rnodes[i].c) {
                return i;
            }

            any = any < 0 ? i : any;
        }
    }

    return any;
}


void
tga_redis_cluster_slot_set(int slot, int node)
{
    if (slot >= 0 && slot < TGA_REDIS_SLOTS && node >= 0) {
        tga_rslots[slot] = (unsigned char) (node + 1);
        tga_rnodes[node].master = 1;
    }
}


/*
 * CLUSTER SLOTS: [start, end, [host, port, id, ...], replicas...] per
 * range.  A node that does not know its own address names it "" (or
 * "?"), which means the one that answered.
 */
static int
tga_redis_cluster_parse(redisReply *r, const char *from_host,
    unsigned char *map)
{
    int          node;
    size_t       i;
    long long    start, end, s;
    redisReply  *range, *m;
    const char  *host;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        return TGA_ERROR;
    }

    memset(map, 0, TGA_REDIS_SLOTS);

    for (i = 0; i < r->elements; i++) {
        range = r->element[i];

        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3
            || range->element[0]->type != REDIS_REPLY_INTEGER
            || range->element[1]->type != REDIS_REPLY_INTEGER
            || range->element[2]->type != REDIS_REPLY_ARRAY
            || range->element[2]->elements < 2
            || range->element[2]->element[0]->type != REDIS_REPLY_STRING
            || range->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
        {
            return TGA_ERROR;
        }

        start = range->element[0]->integer;
        end = range->element[1]->integer;
        m = range->element[2];
        host = m->element[0]->str;

        if (start < 0 || end < start || end >= TGA_REDIS_SLOTS) {
            return TGA_ERROR;
        }

        if (host[0] == '\0' || strcmp(host, "?") == 0) {
            host = from_host;
        }

        node = tga_redis_node_find(host, (int) m->element[1]->integer, 1);
        if (node < 0) {
            return TGA_ERROR;
        }

        for (s = start; s <= end; s++) {
            map[s] = (unsigned char) (node + 1);
        }
    }

    return TGA_OK;
}


/* CLUSTER SLOTS from one node: a connection of the table, or a seed's */
static int
tga_redis_cluster_ask(redisContext *c, const char *host, unsigned char *map)
{
    int          rc;
    redisReply  *r;

    r = redisCommand(c, "CLUSTER SLOTS");
    rc = tga_redis_cluster_parse(r, host, map);
    freeReplyObject(r);

    return rc;
}


/* a node that lost every slot is forgotten, with its connection */
static int
tga_redis_cluster_apply(const unsigned char *map)
{
    int  i, s, changed, masters;

    changed = memcmp(map, tga_rslots, TGA_REDIS_SLOTS) != 0;
    memcpy(tga_rslots, map, TGA_REDIS_SLOTS);

    for (i = 0; i < TGA_REDIS_NODES_MAX; i++) {
        tga_rnodes[i].master = 0;
    }

    for (s = 0; s < TGA_REDIS_SLOTS; s++) {
        if (map[s]) {
            tga_rnodes[map[s] - 1].master = 1;
        }
    }

    masters = 0;

    for (i = 0; i < TGA_REDIS_NODES_MAX; i++) {
        if (tga_rnodes[i].master) {
            masters++;

        } else if (tga_rnodes[i].host[0]) {
            tga_redis_node_close(&tga_rnodes[i], NULL);
            tga_rnodes[i].host[0] = '\0';
        }
    }

    return changed ? masters : 0;
}


/* CLUSTER SLOTS from a node of the table, on its own connection if any */
static int
tga_redis_cluster_read_node(tga_redis_node_t *node, unsigned char *map)
{
    int            rc;
    char           err[192];
    redisContext  *c;

    c = node->c ? node->c : tga_redis_open(node->host, node->port, err,
                                           sizeof(err));
    if (c == NULL) {
        return TGA_ERROR;
    }

    rc = tga_redis_cluster_ask(c, node->host, map);

    if (c != node->c) {
        redisFree(c);

    } else if (c->err) {
        tga_redis_node_close(node, c->errstr);
    }

    return rc;
}


/*
 * The nodes already connected first (no connect to wait for), then the
 * other known ones, then the seeds: after a failover the seeds may be
 * the nodes that failed.
 */
static int
tga_redis_cluster_read(unsigned char *map, char *from, size_t size)
{
    int                pass, i, port;
    char               list[512], host[256], err[192], *addr, *save;
    redisContext      *c;
    tga_redis_node_t  *node;

    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < TGA_REDIS_NODES_MAX; i++) {
            node = &tga_rnodes[i];

            if (node->host[0] == '\0' || (pass == 0) != (node->c != NULL)) {
                continue;
            }

            if (tga_redis_cluster_read_node(node, map) == TGA_OK) {
                snprintf(from, size, "%.200s:%d", node->host, node->port);
                return TGA_OK;
            }
        }
    }

    snprintf(list, sizeof(list), "%s", tga_rconf.seeds);

    for (addr = strtok_r(list, ",", &save);
         addr;
         addr = strtok_r(NULL, ",", &save))
    {
        if (tga_redis_parse_addr(addr, host, sizeof(host), &port) != TGA_OK
            || (c = tga_redis_open(host, port, err, sizeof(err))) == NULL)
        {
            continue;
        }

        if (tga_redis_cluster_ask(c, host, map) == TGA_OK) {
            snprintf(from, size, "%.200s", addr);
            redisFree(c);
            return TGA_OK;
        }

        redisFree(c);
    }

    return TGA_ERROR;
}


int
tga_redis_cluster_refresh(void)
{
    int                   masters;
    char                  from[280];
    static unsigned char  map[TGA_REDIS_SLOTS];

    if (tga_redis_cluster_read(map, from, sizeof(from)) != TGA_OK) {
        return 0;
    }

    masters = tga_redis_cluster_apply(map);

    if (masters) {
        tga_log_info("msg=\"redis cluster slot map read\" from=\"%s\" "
                     "masters=%d", from, masters);
    }

    return masters != 0;
}


int
tga_redis_cluster_masters(int *nodes, int max)
{
    int  i, s, n;

    for (s = 0; s < TGA_REDIS_SLOTS; s++) {
        if (tga_rslots[s] == 0) {
            return -1;
        }
    }

    n = 0;

    for (i = 0; i < TGA_REDIS_NODES_MAX && n < max; i++) {
        if (tga_rnodes[i].master) {
            nodes[n++] = i;
        }
    }

    return n;
}
