/*
 * Copyright (C) Tollgate developers
 *
 * An asynchronous Redis client for nginx workers: hiredis's async API
 * driven by the worker's event loop, for a single server, a master
 * found through Sentinel, or a Redis Cluster.  A worker never blocks on
 * it: a call either cannot be sent (NGX_ERROR, the handler is never
 * called) or its handler runs exactly once, later, with the reply or
 * with NULL on error, timeout or disconnection.
 */


#ifndef _NGX_HTTP_TOLLGATE_REDIS_H_INCLUDED_
#define _NGX_HTTP_TOLLGATE_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <hiredis/hiredis.h>


#define NGX_HTTP_TOLLGATE_REDIS_SINGLE     0
#define NGX_HTTP_TOLLGATE_REDIS_SENTINEL   1
#define NGX_HTTP_TOLLGATE_REDIS_CLUSTER    2


/* the scripts in redis/, in the order of ngx_http_tollgate_script_names */

typedef enum {
    NGX_HTTP_TOLLGATE_SCRIPT_ACQUIRE = 0,
    NGX_HTTP_TOLLGATE_SCRIPT_REPORT,
    NGX_HTTP_TOLLGATE_SCRIPT_SEED,
    NGX_HTTP_TOLLGATE_SCRIPT_HEARTBEAT,
    NGX_HTTP_TOLLGATE_SCRIPTS,
    NGX_HTTP_TOLLGATE_COMMAND = NGX_HTTP_TOLLGATE_SCRIPTS
} ngx_http_tollgate_script_e;


#define NGX_HTTP_TOLLGATE_RESULT_OK        0
#define NGX_HTTP_TOLLGATE_RESULT_ERROR     1
#define NGX_HTTP_TOLLGATE_RESULT_FAILED    2   /* timeout or connection */
#define NGX_HTTP_TOLLGATE_RESULTS          3

#define NGX_HTTP_TOLLGATE_LAT_BUCKETS      10


/* counters shared by the workers, in the gateway's shared memory */

typedef struct {
    ngx_atomic_t   calls[NGX_HTTP_TOLLGATE_SCRIPTS + 1]
                        [NGX_HTTP_TOLLGATE_RESULTS];
    ngx_atomic_t   latency[NGX_HTTP_TOLLGATE_LAT_BUCKETS + 1];
    ngx_atomic_t   latency_sum_us;
} ngx_http_tollgate_redis_stats_t;


typedef struct {
    u_char         host[NGX_INET_ADDRSTRLEN + 1];
    int            port;
} ngx_http_tollgate_redis_addr_t;


typedef struct {
    ngx_uint_t     mode;
    ngx_array_t    addrs;           /* ngx_http_tollgate_redis_addr_t */
    ngx_str_t      master_name;     /* sentinel */
    ngx_str_t      password;
    ngx_int_t      db;
    ngx_msec_t     timeout_ms;
    ngx_msec_t     connect_timeout_ms;
} ngx_http_tollgate_redis_conf_t;


typedef void (*ngx_http_tollgate_redis_pt)(redisReply *reply, void *data);


ngx_int_t ngx_http_tollgate_redis_init(ngx_cycle_t *cycle,
    ngx_http_tollgate_redis_conf_t *conf,
    ngx_http_tollgate_redis_stats_t *stats);
void ngx_http_tollgate_redis_exit(void);

/* periodic upkeep: master discovery, slot map refresh */
void ngx_http_tollgate_redis_tick(void);

/*
 * 1 when a call routed by this cluster id could be sent now; with
 * proven, only once the connection has answered since it was made (a
 * frozen server still accepts connections).
 */
ngx_uint_t ngx_http_tollgate_redis_ready(ngx_str_t *cluster_id,
    ngx_uint_t proven);

/*
 * EVALSHA of a script (EVAL when the server lost it), or a plain
 * command with script NGX_HTTP_TOLLGATE_COMMAND.  argv holds the keys
 * first (nkeys of them) and then the arguments; it is copied.  In
 * cluster mode the call goes to the node owning the slot of
 * "{cluster_id}".
 */
ngx_int_t ngx_http_tollgate_redis_call(ngx_uint_t script,
    ngx_str_t *cluster_id, ngx_uint_t nkeys, ngx_uint_t argc,
    ngx_str_t *argv, ngx_http_tollgate_redis_pt handler, void *data);

uint16_t ngx_http_tollgate_redis_slot(u_char *tag, size_t len);

/*
 * Messages of a channel, through a connection of their own that the
 * client keeps to the master (or any Cluster node: PUBLISH reaches
 * every node); the handler gets each message's payload.
 */
typedef void (*ngx_http_tollgate_message_pt)(u_char *data, size_t len);

void ngx_http_tollgate_redis_subscribe(const char *channel,
    ngx_http_tollgate_message_pt handler);

/* each reply's latency and result (RESULT_*), for the health window */
void ngx_http_tollgate_health_record(uint32_t latency_us, int outcome);

/* counts connections made, so that a fresh one is seeded again */
extern ngx_uint_t  ngx_http_tollgate_redis_connects;

/* counts connections that failed: refused, lost, timed out */
extern ngx_uint_t  ngx_http_tollgate_redis_failures;

extern const char  *ngx_http_tollgate_script_names[];
extern ngx_msec_t   ngx_http_tollgate_redis_lat_bounds_us[];


/*
 * n in decimal at p, returning the end: for Redis arguments and keys,
 * built on every call, where ngx_sprintf() costs hundreds of
 * instructions a number.
 */

static ngx_inline u_char *
ngx_http_tollgate_decimal(u_char *p, uint64_t n)
{
    u_char   digits[NGX_INT64_LEN];
    u_char  *d;

    d = digits + sizeof(digits);

    do {
        *--d = (u_char) ('0' + n % 10);
        n /= 10;
    } while (n);

    return ngx_cpymem(p, d, digits + sizeof(digits) - d);
}


#endif /* _NGX_HTTP_TOLLGATE_REDIS_H_INCLUDED_ */
