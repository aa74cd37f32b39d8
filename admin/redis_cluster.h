/*
 * Copyright (C) Tollgate developers
 *
 * The Redis servers the admin talks to, private to redis.c and
 * redis_cluster.c.  A single server or a Sentinel-managed master is
 * node 0; with Redis Cluster the nodes are the masters of the last slot
 * map read (CLUSTER SLOTS), plus any node a redirection named since.
 */


#ifndef _TGA_REDIS_CLUSTER_H_INCLUDED_
#define _TGA_REDIS_CLUSTER_H_INCLUDED_


#include <sys/time.h>
#include <hiredis/hiredis.h>

#include "tga.h"


#define TGA_REDIS_SLOTS       16384
#define TGA_REDIS_NODES_MAX   64
#define TGA_REDIS_NO_KEY      -1        /* a command any node may run */
#define TGA_REDIS_CROSS_SLOT  -2        /* keys of more than one slot */


typedef enum {
    TGA_REDIS_SINGLE = 0,
    TGA_REDIS_SENTINEL,
    TGA_REDIS_CLUSTER
} tga_redis_mode_e;


typedef struct {
    tga_redis_mode_e      mode;
    char                  host[256];          /* a single server */
    int                   port;
    char                  password[256];
    int                   db;
    struct timeval        timeout;
    char                  sentinels[512];     /* "host:port,host:port" */
    char                  master[128];
    char                  seeds[512];         /* the cluster= list */
} tga_redis_conf_t;


typedef struct {
    char                  host[256];          /* "": a free entry */
    int                   port;
    unsigned              gen;                /* bumped on a new address */
    redisContext         *c;
    unsigned              down_round;         /* a connect failed then */
    unsigned              master:1;           /* owns slots in the map */
    char                  error[192];         /* why the last call failed */
} tga_redis_node_t;


extern tga_redis_conf_t   tga_rconf;
extern tga_redis_node_t   tga_rnodes[TGA_REDIS_NODES_MAX];


/* redis.c */

int tga_redis_parse_addr(const char *s, char *host, size_t size, int *port);

/* a connection that passed AUTH and SELECT, or NULL with err filled */
redisContext *tga_redis_open(const char *host, int port, char *err,
    size_t size);

void tga_redis_node_close(tga_redis_node_t *node, const char *why);


/* redis_cluster.c */

/* the slot of a command's first key, or TGA_REDIS_NO_KEY */
int tga_redis_command_slot(int argc, const char **argv);

/* like the above, or TGA_REDIS_CROSS_SLOT when its keys span slots */
int tga_redis_command_slot_all(int argc, const char **argv);

/* a node's index, added when absent and add is set; -1 when not found */
int tga_redis_node_find(const char *host, int port, int add);

/* the master of a slot (any master for TGA_REDIS_NO_KEY), or -1 */
int tga_redis_cluster_route(int slot);

/* what a MOVED said, until the next slot map */
void tga_redis_cluster_slot_set(int slot, int node);

/*
 * Reads the slot map from a master already connected, another known
 * node or a seed; returns 1 when it changed, 0 otherwise (also when no
 * node answered: the map is kept).
 */
int tga_redis_cluster_refresh(void);

/* the masters' indices; -1 when some slot has no master */
int tga_redis_cluster_masters(int *nodes, int max);


#endif /* _TGA_REDIS_CLUSTER_H_INCLUDED_ */
