/*
 * Copyright (C) Tollgate developers
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis.h"


typedef struct {
    char              host[256];
    int               port;
    char              password[256];
    int               db;
    struct timeval    timeout;
    char              sentinels[512];     /* "host:port,host:port" */
    char              master[128];
} tga_redis_conf_t;


static tga_redis_conf_t   tga_rconf;
static redisContext      *tga_rc;


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


static int
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
        snprintf(rc->sentinels, sizeof(rc->sentinels), "%s", w + 9);
        return TGA_OK;
    }

    if (strncmp(w, "master=", 7) == 0) {
        snprintf(rc->master, sizeof(rc->master), "%s", w + 7);
        return TGA_OK;
    }

    if (strncmp(w, "cluster=", 8) == 0) {
        /* the admin talks to one seed node: see docs/limitations.md */
        return tga_redis_parse_addr(w + 8, rc->host, sizeof(rc->host),
                                    &rc->port);
    }

    return tga_redis_parse_addr(w, rc->host, sizeof(rc->host), &rc->port);
}


int
tga_redis_init(const char *spec)
{
    char  copy[512], *word, *save;

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

    if (tga_rconf.host[0] == '\0' && tga_rconf.sentinels[0] == '\0') {
        tga_log_error("msg=\"redis setting names no address\" value=\"%s\"",
                      spec);
        return TGA_ERROR;
    }

    return TGA_OK;
}


void
tga_redis_close(void)
{
    if (tga_rc) {
        redisFree(tga_rc);
        tga_rc = NULL;
    }
}


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


static int
tga_redis_connect(void)
{
    int            port;
    char           host[256];
    redisContext  *c;

    snprintf(host, sizeof(host), "%s", tga_rconf.host);
    port = tga_rconf.port;

    if (tga_rconf.sentinels[0]
        && tga_redis_resolve_master(host, sizeof(host), &port) != TGA_OK)
    {
        tga_log_error("msg=\"no sentinel knows the redis master\" "
                      "master=\"%s\"", tga_rconf.master);
        return TGA_ERROR;
    }

    c = redisConnectWithTimeout(host, port, tga_rconf.timeout);
    if (c == NULL || c->err) {
        tga_log_error("msg=\"redis connect failed\" addr=\"%s:%d\" "
                      "error=\"%s\"", host, port, c ? c->errstr : "oom");
        redisFree(c);
        return TGA_ERROR;
    }

    redisSetTimeout(c, tga_rconf.timeout);

    if (tga_redis_handshake(c) != TGA_OK) {
        tga_log_error("msg=\"redis auth or select failed\" addr=\"%s:%d\"",
                      host, port);
        redisFree(c);
        return TGA_ERROR;
    }

    tga_rc = c;

    return TGA_OK;
}


static redisReply *
tga_redis_check(redisReply *r, const char *what)
{
    if (r == NULL) {
        tga_log_error("msg=\"redis call failed\" command=%s error=\"%s\"",
                      what, tga_rc->errstr);
        tga_redis_close();
        return NULL;
    }

    if (r->type == REDIS_REPLY_ERROR) {
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
    if (tga_rc == NULL && tga_redis_connect() != TGA_OK) {
        return NULL;
    }

    return tga_redis_check(redisCommandArgv(tga_rc, argc, argv, NULL),
                           argv[0]);
}


int
tga_redis_append(int argc, const char **argv)
{
    if (tga_rc == NULL && tga_redis_connect() != TGA_OK) {
        return TGA_ERROR;
    }

    return redisAppendCommandArgv(tga_rc, argc, argv, NULL) == REDIS_OK
           ? TGA_OK : TGA_ERROR;
}


redisReply *
tga_redis_read(void)
{
    void  *r;

    if (tga_rc == NULL) {
        return NULL;
    }

    if (redisGetReply(tga_rc, &r) != REDIS_OK) {
        r = NULL;
    }

    return tga_redis_check(r, "pipeline");
}


int
tga_redis_ping(void)
{
    const char  *argv[] = { "PING" };
    redisReply  *r;

    r = tga_redis_cmd(1, argv);
    freeReplyObject(r);

    return r ? TGA_OK : TGA_ERROR;
}


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


redisReply *
tga_redis_multi(int n, const int *argc, const char **const *argv)
{
    int          i;
    const char  *multi[] = { "MULTI" }, *exec[] = { "EXEC" };
    redisReply  *r;

    if (tga_redis_append(1, multi) != TGA_OK) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        (void) tga_redis_append(argc[i], argv[i]);
    }

    (void) tga_redis_append(1, exec);

    /* OK, then QUEUED for each command: a refused one aborts the EXEC */
    for (i = 0; i <= n; i++) {
        r = tga_redis_read();
        if (r == NULL && tga_rc == NULL) {
            return NULL;
        }

        freeReplyObject(r);
    }

    r = tga_redis_read();

    if (r && (r->type != REDIS_REPLY_ARRAY || (int) r->elements != n)) {
        tga_log_error("msg=\"redis transaction not run\" commands=%d", n);
        freeReplyObject(r);
        return NULL;
    }

    return r;
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
