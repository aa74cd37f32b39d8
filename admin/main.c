/*
 * Copyright (C) Tollgate developers
 *
 * tollgate-admin [--config FILE]
 */


#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "db.h"
#include "http.h"
#include "live.h"
#include "redis.h"
#include "store.h"


static void
tga_on_signal(int signo)
{
    (void) signo;

    tga_http_stop();
}


static int
tga_args(int argc, char **argv, const char **config)
{
    *config = NULL;

    if (argc == 3 && strcmp(argv[1], "--config") == 0) {
        *config = argv[2];
        return TGA_OK;
    }

    if (argc == 1) {
        return TGA_OK;
    }

    fprintf(stderr, "usage: tollgate-admin [--config FILE]\n");

    return TGA_ERROR;
}


/* PostgreSQL is required at start; Redis may come later (re-synced) */
static int
tga_start(tga_config_t *cf)
{
    if (tga_auth_init(cf) != TGA_OK
        || tga_db_open(cf->database_url) != TGA_OK
        || tga_db_migrate() != TGA_OK
        || tga_auth_ensure_admin(cf->admin_user, cf->admin_password)
           != TGA_OK
        || tga_redis_init(cf->redis) != TGA_OK
        || tga_live_init(cf) != TGA_OK)
    {
        return TGA_ERROR;
    }

    tga_sync_check();

    return tga_http_init(cf);
}


int
main(int argc, char **argv)
{
    int                rc;
    const char        *config;
    tga_config_t       cf;
    struct sigaction   sa;

    if (tga_args(argc, argv, &config) != TGA_OK
        || tga_config_load(&cf, config) != TGA_OK)
    {
        return 2;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = tga_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = tga_start(&cf);

    if (rc == TGA_OK) {
        tga_log_info("msg=\"listening\" addr=\"%s:%d\"", cf.listen_host,
                     cf.listen_port);
        tga_http_run();
        tga_log_info("msg=\"shutting down\"");
        tga_http_destroy();
    }

    tga_live_destroy();
    tga_redis_close();
    tga_db_close();

    return rc == TGA_OK ? 0 : 1;
}
