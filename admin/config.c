/*
 * Copyright (C) Tollgate developers
 *
 * Configuration: defaults, then a file of "key = value" lines, then the
 * TOLLGATE_* environment variables, which win.
 */


#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tga.h"


typedef struct {
    const char  *key;
    const char  *env;
    size_t       offset;
    size_t       size;
} tga_config_key_t;


#define TGA_CF_STR(field)                                                    \
    offsetof(tga_config_t, field), sizeof(((tga_config_t *) 0)->field)


/* "listen" and "token_ttl_s" are parsed apart: they are not strings */
static const tga_config_key_t  tga_config_keys[] = {
    { "database_url", "TOLLGATE_DATABASE_URL", TGA_CF_STR(database_url) },
    { "redis", "TOLLGATE_REDIS", TGA_CF_STR(redis) },
    { "jwt_secret", "TOLLGATE_JWT_SECRET", TGA_CF_STR(jwt_secret) },
    { "admin_user", "TOLLGATE_ADMIN_USER", TGA_CF_STR(admin_user) },
    { "admin_password", "TOLLGATE_ADMIN_PASSWORD",
      TGA_CF_STR(admin_password) },
    { "static_dir", "TOLLGATE_STATIC_DIR", TGA_CF_STR(static_dir) },
    { "prometheus_url", "TOLLGATE_PROMETHEUS_URL",
      TGA_CF_STR(prometheus_url) },
    { NULL, NULL, 0, 0 }
};


static int
tga_config_listen(tga_config_t *cf, const char *value)
{
    const char  *colon;
    char        *end;
    long         port;
    size_t       host_len;

    colon = strrchr(value, ':');
    if (colon == NULL) {
        tga_log_error("msg=\"listen needs host:port\" value=\"%s\"", value);
        return TGA_ERROR;
    }

    errno = 0;
    port = strtol(colon + 1, &end, 10);
    host_len = (size_t) (colon - value);

    if (errno || *end != '\0' || port < 1 || port > 65535
        || host_len >= sizeof(cf->listen_host))
    {
        tga_log_error("msg=\"invalid listen address\" value=\"%s\"", value);
        return TGA_ERROR;
    }

    memcpy(cf->listen_host, value, host_len);
    cf->listen_host[host_len] = '\0';
    cf->listen_port = (int) port;

    return TGA_OK;
}


static int
tga_config_set(tga_config_t *cf, const char *key, const char *value)
{
    char                    *field, *end;
    const tga_config_key_t  *k;

    if (strcmp(key, "listen") == 0) {
        return tga_config_listen(cf, value);
    }

    if (strcmp(key, "token_ttl_s") == 0) {
        cf->token_ttl_s = strtoll(value, &end, 10);
        if (*end != '\0' || cf->token_ttl_s < 1) {
            tga_log_error("msg=\"invalid token_ttl_s\" value=\"%s\"", value);
            return TGA_ERROR;
        }
        return TGA_OK;
    }

    for (k = tga_config_keys; k->key; k++) {
        if (strcmp(k->key, key) != 0) {
            continue;
        }

        if (strlen(value) >= k->size) {
            tga_log_error("msg=\"config value too long\" key=%s", key);
            return TGA_ERROR;
        }

        field = (char *) cf + k->offset;
        strcpy(field, value);
        return TGA_OK;
    }

    tga_log_error("msg=\"unknown config key\" key=\"%s\"", key);
    return TGA_ERROR;
}


static char *
tga_config_trim(char *s)
{
    char  *end;

    while (isspace((unsigned char) *s)) {
        s++;
    }

    end = s + strlen(s);
    while (end > s && isspace((unsigned char) end[-1])) {
        *--end = '\0';
    }

    return s;
}


static int
tga_config_file(tga_config_t *cf, const char *path)
{
    int    line_no, rc;
    char   line[2048];
    char  *eq, *key;
    FILE  *f;

    f = fopen(path, "r");
    if (f == NULL) {
        tga_log_error("msg=\"cannot open config\" path=\"%s\" error=\"%s\"",
                      path, strerror(errno));
        return TGA_ERROR;
    }

    rc = TGA_OK;
    line_no = 0;

    while (rc == TGA_OK && fgets(line, sizeof(line), f)) {
        line_no++;
        key = tga_config_trim(line);

        if (*key == '\0' || *key == '#') {
            continue;
        }

        eq = strchr(key, '=');
        if (eq == NULL) {
            tga_log_error("msg=\"config line is not key = value\" "
                          "path=\"%s\" line=%d", path, line_no);
            rc = TGA_ERROR;
            break;
        }

        *eq = '\0';
        rc = tga_config_set(cf, tga_config_trim(key), tga_config_trim(eq + 1));
    }

    fclose(f);

    return rc;
}


static int
tga_config_env(tga_config_t *cf)
{
    const char              *value;
    const tga_config_key_t  *k;

    value = getenv("TOLLGATE_ADMIN_LISTEN");
    if (value && tga_config_listen(cf, value) != TGA_OK) {
        return TGA_ERROR;
    }

    for (k = tga_config_keys; k->key; k++) {
        value = getenv(k->env);
        if (value && tga_config_set(cf, k->key, value) != TGA_OK) {
            return TGA_ERROR;
        }
    }

    return TGA_OK;
}


int
tga_config_load(tga_config_t *cf, const char *path)
{
    memset(cf, 0, sizeof(*cf));
    strcpy(cf->listen_host, "127.0.0.1");
    cf->listen_port = 8080;
    strcpy(cf->redis, "127.0.0.1:6379");
    cf->token_ttl_s = 3600;

    if (path && tga_config_file(cf, path) != TGA_OK) {
        return TGA_ERROR;
    }

    if (tga_config_env(cf) != TGA_OK) {
        return TGA_ERROR;
    }

    if (strlen(cf->jwt_secret) < 32) {
        tga_log_error("msg=\"jwt_secret must be at least 32 bytes\"");
        return TGA_ERROR;
    }

    return TGA_OK;
}
