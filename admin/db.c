/*
 * Copyright (C) Tollgate developers
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"


/* any fixed number: it only has to be the same for every admin instance */
#define TGA_DB_MIGRATION_LOCK  "7361001"


#define TGA_DB_PREPARED_MAX  128


/*
 * Statements are prepared once per connection, keyed by their text: the
 * daemon has a fixed set of SQL texts, and planning each time was most
 * of the cost of a list request.
 */
typedef struct {
    uint64_t              hash;
    char                  name[24];
} tga_prepared_t;


static PGconn          *tga_pg;
static char             tga_pg_state[6];
static tga_prepared_t   tga_prepared[TGA_DB_PREPARED_MAX];
static size_t           tga_prepared_n;


/* libpq would print server notices raw on stderr: keep logs one format */
static void
tga_db_notice(void *arg, const char *message)
{
    (void) arg;

    tga_log_info("msg=\"postgres notice\" detail=\"%.*s\"",
                 (int) strcspn(message, "\n"), message);
}


int
tga_db_open(const char *conninfo)
{
    tga_pg = PQconnectdb(conninfo);

    if (PQstatus(tga_pg) != CONNECTION_OK) {
        tga_log_error("msg=\"postgres connect failed\" error=\"%s\"",
                      PQerrorMessage(tga_pg));
        return TGA_ERROR;
    }

    PQsetNoticeProcessor(tga_pg, tga_db_notice, NULL);

    return TGA_OK;
}


void
tga_db_close(void)
{
    PQfinish(tga_pg);
    tga_pg = NULL;
}


/* a connection lost since the last query is re-opened once, silently */
static void
tga_db_check(void)
{
    if (PQstatus(tga_pg) != CONNECTION_OK) {
        PQreset(tga_pg);
        tga_prepared_n = 0;
    }
}


static uint64_t
tga_db_hash(const char *sql)
{
    uint64_t  h;

    /* FNV-1a, 64 bits: collisions among a few dozen texts are unlikely */
    for (h = 14695981039346656037ULL; *sql; sql++) {
        h = (h ^ (unsigned char) *sql) * 1099511628211ULL;
    }

    return h;
}


/* the name of sql's prepared statement, or NULL to run it unprepared */
static const char *
tga_db_prepared(const char *sql, int n)
{
    size_t           i;
    uint64_t         h;
    PGresult        *res;
    tga_prepared_t  *p;

    h = tga_db_hash(sql);

    for (i = 0; i < tga_prepared_n; i++) {
        if (tga_prepared[i].hash == h) {
            return tga_prepared[i].name;
        }
    }

    if (tga_prepared_n == TGA_DB_PREPARED_MAX) {
        return NULL;
    }

    p = &tga_prepared[tga_prepared_n];
    snprintf(p->name, sizeof(p->name), "tga_%zu", tga_prepared_n);

    res = PQprepare(tga_pg, p->name, sql, n, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        PQclear(res);
        return NULL;
    }

    PQclear(res);
    p->hash = h;
    tga_prepared_n++;

    return p->name;
}


PGresult *
tga_db_exec(const char *sql, int n, const char *const *params)
{
    const char      *state, *name;
    PGresult        *res;
    ExecStatusType   st;

    tga_db_check();
    tga_pg_state[0] = '\0';

    name = tga_db_prepared(sql, n);
    res = name ? PQexecPrepared(tga_pg, name, n, params, NULL, NULL, 0)
               : PQexecParams(tga_pg, sql, n, NULL, params, NULL, NULL, 0);
    st = PQresultStatus(res);

    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        return res;
    }

    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state) {
        strncpy(tga_pg_state, state, sizeof(tga_pg_state) - 1);
    }

    /* conflicts are the client's doing, answered with 409/404: no log */
    if (tga_db_error() == TGA_ERROR) {
        tga_log_error("msg=\"postgres query failed\" sqlstate=%s error=\"%s\"",
                      state ? state : "none", PQerrorMessage(tga_pg));
    }

    PQclear(res);

    return NULL;
}


int
tga_db_error(void)
{
    if (strcmp(tga_pg_state, "23505") == 0) {
        return TGA_CONFLICT;
    }

    if (strcmp(tga_pg_state, "23503") == 0) {
        return TGA_NOT_FOUND;
    }

    return TGA_ERROR;
}


int
tga_db_run(const char *sql, int n, const char *const *params)
{
    PGresult  *res;

    res = tga_db_exec(sql, n, params);
    if (res == NULL) {
        return tga_db_error();
    }

    PQclear(res);

    return TGA_OK;
}


char *
tga_db_text(const char *sql, int n, const char *const *params, int *rc)
{
    char      *text;
    PGresult  *res;

    res = tga_db_exec(sql, n, params);
    if (res == NULL) {
        *rc = tga_db_error();
        return NULL;
    }

    if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) {
        PQclear(res);
        *rc = TGA_NOT_FOUND;
        return NULL;
    }

    text = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    *rc = text ? TGA_OK : TGA_ERROR;

    return text;
}


json_t *
tga_db_json(const char *sql, int n, const char *const *params, int *rc)
{
    char          *text;
    json_t        *value;
    json_error_t   err;

    text = tga_db_text(sql, n, params, rc);
    if (text == NULL) {
        return NULL;
    }

    value = json_loads(text, 0, &err);
    free(text);

    if (value == NULL) {
        tga_log_error("msg=\"postgres returned bad json\" error=\"%s\"",
                      err.text);
        *rc = TGA_ERROR;
    }

    return value;
}


int
tga_db_begin(void)
{
    return tga_db_run("BEGIN", 0, NULL);
}


int
tga_db_commit(void)
{
    return tga_db_run("COMMIT", 0, NULL);
}


void
tga_db_rollback(void)
{
    (void) tga_db_run("ROLLBACK", 0, NULL);
}


int
tga_db_ping(void)
{
    return tga_db_run("SELECT 1", 0, NULL);
}


static int
tga_db_apply(const tga_embedded_t *m)
{
    PGresult     *res;
    const char   *params[1];

    params[0] = m->name;
    res = tga_db_exec("SELECT 1 FROM schema_migrations WHERE name = $1",
                      1, params);
    if (res == NULL) {
        return TGA_ERROR;
    }

    if (PQntuples(res) > 0) {
        PQclear(res);
        return TGA_OK;
    }

    PQclear(res);

    /* a migration file holds several statements: simple query protocol */
    res = PQexec(tga_pg, m->text);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        tga_log_error("msg=\"migration failed\" name=%s error=\"%s\"",
                      m->name, PQerrorMessage(tga_pg));
        PQclear(res);
        return TGA_ERROR;
    }

    PQclear(res);

    tga_log_info("msg=\"migration applied\" name=%s", m->name);

    return tga_db_run("INSERT INTO schema_migrations (name) VALUES ($1)",
                      1, params);
}


/*
 * Applies the embedded migrations not yet recorded, each in its own
 * transaction, under an advisory lock so that two instances starting
 * together do not both apply one.
 */
int
tga_db_migrate(void)
{
    int                    rc;
    const tga_embedded_t  *m;

    rc = tga_db_run("CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " name text PRIMARY KEY,"
                    " applied_at timestamptz NOT NULL DEFAULT now())",
                    0, NULL);
    if (rc != TGA_OK) {
        return TGA_ERROR;
    }

    if (tga_db_run("SELECT pg_advisory_lock(" TGA_DB_MIGRATION_LOCK ")",
                   0, NULL) != TGA_OK)
    {
        return TGA_ERROR;
    }

    for (m = tga_migrations; m->name && rc == TGA_OK; m++) {
        rc = tga_db_begin();
        if (rc == TGA_OK) {
            rc = tga_db_apply(m);
        }

        if (rc == TGA_OK) {
            rc = tga_db_commit();
        } else {
            tga_db_rollback();
        }
    }

    (void) tga_db_run("SELECT pg_advisory_unlock(" TGA_DB_MIGRATION_LOCK ")",
                      0, NULL);

    return rc;
}
