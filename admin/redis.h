/*
 * Copyright (C) Tollgate developers
 *
 * The Redis connections: synchronous hiredis calls with a timeout.  The
 * admin is not on any request path of the gateways, so blocking its own
 * event loop for one round trip is acceptable.
 *
 * TOLLGATE_REDIS takes the syntax of the tollgate_redis directive: one
 * server, a master named by sentinels, or a Redis Cluster.  With
 * cluster= each command goes to the master of its first key's slot
 * (keys of one storage cluster share it by their {C} hash tag), MOVED
 * and ASK are followed, and the slot map is read again when a node
 * fails; with sentinel= the sentinels are asked again when the master
 * fails.  See redis.c for when a call is sent twice.
 */


#ifndef _TGA_REDIS_H_INCLUDED_
#define _TGA_REDIS_H_INCLUDED_


#include <hiredis/hiredis.h>

#include "tga.h"


/* parses the tollgate_redis syntax; connects lazily */
int tga_redis_init(const char *spec);
void tga_redis_close(void);

/*
 * TGA_OK when every master answers PING: the one server, or each master
 * of a slot map that covers every slot.
 */
int tga_redis_ping(void);

typedef void (*tga_redis_each_pt)(redisReply *r, void *data);

/*
 * Runs a keyless command (INFO, PING) on every master as above.  Only
 * when each answered is each() called, once per reply, and TGA_OK
 * returned.
 */
int tga_redis_each_master(int argc, const char **argv,
    tga_redis_each_pt each, void *data);

/*
 * Runs one command.  Returns NULL on a connection or server error,
 * logged once here; the connection is re-opened on the next call.
 */
redisReply *tga_redis_cmd(int argc, const char **argv);

/*
 * Runs redis/<name>.lua (admin_put_app, borrow, ...) with nkeys keys,
 * then args.  A gateway script runs with the library before it.
 */
redisReply *tga_redis_script(const char *name, int nkeys, int argc,
    const char **argv);

#define TGA_REDIS_EVAL_ARGS  24

/* the EVAL command of a script, to send inside a transaction */
typedef struct {
    int                   argc;
    const char           *argv[TGA_REDIS_EVAL_ARGS];
    char                  nkeys[16];
} tga_redis_eval_t;

int tga_redis_eval_init(tga_redis_eval_t *e, const char *name, int nkeys,
    int argc, const char **argv);

/*
 * Runs n commands in one MULTI/EXEC, in one round trip.  Returns EXEC's
 * array of n replies, in which a command that failed while running is
 * an error reply, or NULL (logged) when the transaction did not run.
 * With Redis Cluster every key must be of one slot: a transaction that
 * spans slots is not sent.
 */
redisReply *tga_redis_multi(int n, const int *argc,
    const char **const *argv);

/*
 * Sends commands in one round trip: append each, then read each reply
 * in the same order (NULL for a failed one, logged).  With Redis
 * Cluster the commands are grouped per master, every master is written
 * before any is read, so the round trips overlap; a redirected command
 * is sent again alone.
 */
int tga_redis_append(int argc, const char **argv);
redisReply *tga_redis_read(void);

/* a flat field/value array (HGETALL) as a JSON object of strings */
json_t *tga_redis_hash_json(redisReply *r);


#endif /* _TGA_REDIS_H_INCLUDED_ */
