/*
 * Copyright (C) Tollgate developers
 *
 * The PostgreSQL connection.  Every query is parameterized; results that
 * go out as JSON are rendered by PostgreSQL itself (json_build_object),
 * so a row is read here as one JSON value.
 */


#ifndef _TGA_DB_H_INCLUDED_
#define _TGA_DB_H_INCLUDED_


#include <libpq-fe.h>

#include "tga.h"


int tga_db_open(const char *conninfo);
void tga_db_close(void);
int tga_db_migrate(void);
int tga_db_ping(void);

/*
 * Runs a parameterized statement.  Returns NULL on error, logged once
 * here; tga_db_error() then tells what kind of error it was.
 */
PGresult *tga_db_exec(const char *sql, int n, const char *const *params);

/*
 * Runs a statement whose first row's first column is JSON text and
 * returns it parsed.  TGA_NOT_FOUND in *rc when there is no row.
 */
json_t *tga_db_json(const char *sql, int n, const char *const *params,
    int *rc);

/* the same as text, to pass through unparsed; free() it */
char *tga_db_text(const char *sql, int n, const char *const *params,
    int *rc);

int tga_db_run(const char *sql, int n, const char *const *params);
int tga_db_begin(void);
int tga_db_commit(void);
void tga_db_rollback(void);

/* TGA_CONFLICT, TGA_NOT_FOUND (a missing reference) or TGA_ERROR */
int tga_db_error(void);


#endif /* _TGA_DB_H_INCLUDED_ */
