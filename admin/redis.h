/*
 * Copyright (C) Tollgate developers
 *
 * The Redis connection: synchronous hiredis calls with a timeout.  The
 * admin is not on any request path of the gateways, so blocking its own
 * event loop for one round trip is acceptable.
 */


#ifndef _TGA_REDIS_H_INCLUDED_
#define _TGA_REDIS_H_INCLUDED_


#include <hiredis/hiredis.h>

#include "tga.h"


/* parses the tollgate_redis syntax; connects lazily */
int tga_redis_init(const char *spec);
void tga_redis_close(void);
int tga_redis_ping(void);

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
 */
redisReply *tga_redis_multi(int n, const int *argc,
    const char **const *argv);

/* sends commands in one round trip: append, then read each reply */
int tga_redis_append(int argc, const char **argv);
redisReply *tga_redis_read(void);

/* a flat field/value array (HGETALL) as a JSON object of strings */
json_t *tga_redis_hash_json(redisReply *r);


#endif /* _TGA_REDIS_H_INCLUDED_ */
