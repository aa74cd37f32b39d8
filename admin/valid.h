/*
 * Copyright (C) Tollgate developers
 *
 * Input validation.  Each function either accepts the input or sets the
 * request's 400 reply and returns TGA_ERROR, so a handler stops at the
 * first bad field.
 */


#ifndef _TGA_VALID_H_INCLUDED_
#define _TGA_VALID_H_INCLUDED_


#include "tga.h"


/* 1 when s matches ^[A-Za-z0-9._-]{1,64}$ */
int tga_valid_id(const char *s);

/* the i-th ":x" path part must be an id */
int tga_valid_param(tga_req_t *r, int i, const char *what);

/* refuses any body field not in allowed (NULL-terminated) */
int tga_valid_fields(tga_req_t *r, const char *const *allowed);

/*
 * An integer field in [min, max].  An absent field is TGA_NOT_FOUND,
 * and an error only when required.
 */
int tga_valid_int(tga_req_t *r, const char *name, json_int_t min,
    json_int_t max, int required, json_int_t *out);

/* a string field of at most max_len bytes; id_only applies the id rule */
int tga_valid_str(tga_req_t *r, const char *name, size_t max_len,
    int id_only, int required, const char **out);

/* the limit and offset query arguments, as decimal text for SQL */
int tga_valid_page(tga_req_t *r, char *limit, char *offset);

/* an optional id query argument: "" when absent */
int tga_valid_query_id(tga_req_t *r, const char *name, char *buf,
    int size);

/*
 * Replies with one page of a list: select_sql is a SELECT of the rows
 * (its filters may use $1..$n), item_sql renders a row "p" as JSON and
 * order_sql orders rows; limit and offset come from the query.  All
 * three are fixed SQL text of the caller, never request data.
 */
void tga_reply_list(tga_req_t *r, const char *select_sql,
    const char *item_sql, const char *order_sql, int n,
    const char **params);

/* ?force=true */
int tga_valid_force(tga_req_t *r);


#endif /* _TGA_VALID_H_INCLUDED_ */
