/*
 * Copyright (C) Tollgate developers
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "http.h"
#include "valid.h"


int
tga_valid_id(const char *s)
{
    size_t  n;

    n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                  "0123456789._-");

    return n >= 1 && n <= TGA_ID_MAX_LEN && s[n] == '\0';
}


int
tga_valid_param(tga_req_t *r, int i, const char *what)
{
    if (tga_valid_id(r->params[i])) {
        return TGA_OK;
    }

    tga_reply_error(r, 400, "bad_request",
                    "%s must match ^[A-Za-z0-9._-]{1,64}$", what);

    return TGA_ERROR;
}


int
tga_valid_fields(tga_req_t *r, const char *const *allowed)
{
    size_t              i;
    const char         *key;
    json_t             *value;

    json_object_foreach(r->body, key, value) {
        for (i = 0; allowed[i]; i++) {
            if (strcmp(allowed[i], key) == 0) {
                break;
            }
        }

        if (allowed[i] == NULL) {
            tga_reply_error(r, 400, "bad_request", "unknown field \"%.64s\"",
                            key);
            return TGA_ERROR;
        }
    }

    return TGA_OK;
}


int
tga_valid_int(tga_req_t *r, const char *name, json_int_t min,
    json_int_t max, int required, json_int_t *out)
{
    json_t  *v;

    v = json_object_get(r->body, name);

    if (v == NULL) {
        if (!required) {
            return TGA_NOT_FOUND;
        }

        tga_reply_error(r, 400, "bad_request", "%s is required", name);
        return TGA_ERROR;
    }

    if (!json_is_integer(v)
        || json_integer_value(v) < min || json_integer_value(v) > max)
    {
        tga_reply_error(r, 400, "bad_request",
                        "%s must be an integer in [%lld, %lld]", name,
                        (long long) min, (long long) max);
        return TGA_ERROR;
    }

    *out = json_integer_value(v);

    return TGA_OK;
}


int
tga_valid_str(tga_req_t *r, const char *name, size_t max_len,
    int id_only, int required, const char **out)
{
    json_t      *v;
    const char  *s;

    v = json_object_get(r->body, name);

    if (v == NULL) {
        if (!required) {
            return TGA_NOT_FOUND;
        }

        tga_reply_error(r, 400, "bad_request", "%s is required", name);
        return TGA_ERROR;
    }

    s = json_is_string(v) ? json_string_value(v) : NULL;

    /* a NUL inside the string would cut it short on its way to SQL */
    if (s == NULL || strlen(s) != json_string_length(v)
        || strlen(s) > max_len || (id_only && !tga_valid_id(s)))
    {
        tga_reply_error(r, 400, "bad_request",
                        id_only ? "%s must match ^[A-Za-z0-9._-]{1,64}$"
                                : "%s must be a string of at most %zu bytes",
                        name, max_len);
        return TGA_ERROR;
    }

    *out = s;

    return TGA_OK;
}


static int
tga_valid_query_int(tga_req_t *r, const char *name, long long min,
    long long max, long long dflt, char *out)
{
    char        buf[32], *end;
    long long   n;
    const char *arg;

    arg = tga_req_arg(r, name, buf, sizeof(buf));
    n = dflt;

    if (arg) {
        n = strtoll(arg, &end, 10);

        if (*arg == '\0' || *end != '\0' || n < min || n > max) {
            tga_reply_error(r, 400, "bad_request",
                            "%s must be an integer in [%lld, %lld]",
                            name, min, max);
            return TGA_ERROR;
        }
    }

    snprintf(out, 24, "%lld", n);

    return TGA_OK;
}


int
tga_valid_page(tga_req_t *r, char *limit, char *offset)
{
    if (tga_valid_query_int(r, "limit", 1, TGA_PAGE_MAX, TGA_PAGE_DEFAULT,
                            limit) != TGA_OK)
    {
        return TGA_ERROR;
    }

    return tga_valid_query_int(r, "offset", 0, 1000000000, 0, offset);
}


int
tga_valid_query_id(tga_req_t *r, const char *name, char *buf, int size)
{
    const char  *arg;

    arg = tga_req_arg(r, name, buf, size);

    if (arg == NULL) {
        buf[0] = '\0';
        return TGA_OK;
    }

    /* lws returns the value inside buf, after "name=" */
    memmove(buf, arg, strlen(arg) + 1);

    if (buf[0] == '\0' || tga_valid_id(buf)) {
        return TGA_OK;
    }

    tga_reply_error(r, 400, "bad_request",
                    "%s must match ^[A-Za-z0-9._-]{1,64}$", name);

    return TGA_ERROR;
}


int
tga_valid_force(tga_req_t *r)
{
    char        buf[16];
    const char *arg;

    arg = tga_req_arg(r, "force", buf, sizeof(buf));

    return arg && (strcmp(arg, "true") == 0 || strcmp(arg, "1") == 0);
}


void
tga_reply_list(tga_req_t *r, const char *select_sql, const char *item_sql,
    const char *order_sql, int n, const char **params)
{
    int          rc;
    char         sql[2048], limit[24], offset[24];
    char        *page;
    const char  *all[8];

    if (tga_valid_page(r, limit, offset) != TGA_OK) {
        return;
    }

    if (n > 0) {
        memcpy(all, params, n * sizeof(params[0]));
    }
    all[n] = limit;
    all[n + 1] = offset;

    snprintf(sql, sizeof(sql),
             "WITH m AS (%s) SELECT json_build_object("
             " 'items', COALESCE((SELECT json_agg(%s ORDER BY %s)"
             "   FROM (SELECT * FROM m p ORDER BY %s"
             "         LIMIT $%d::int OFFSET $%d::int) p), '[]'::json),"
             " 'total', (SELECT count(*) FROM m),"
             " 'limit', $%d::int, 'offset', $%d::int)",
             select_sql, item_sql, order_sql, order_sql, n + 1, n + 2,
             n + 1, n + 2);

    /* a page can be large: passed on as PostgreSQL wrote it */
    page = tga_db_text(sql, n + 2, all, &rc);

    if (page) {
        tga_reply_text(r, 200, page);
    }
}
