/*
 * Copyright (C) Tollgate developers
 *
 * One-line key=value logs on stderr.  Callers pass the key=value pairs;
 * this adds the time and level and keeps the record on one line.
 */


#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "tga.h"


int64_t
tga_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


void
tga_log(const char *level, const char *fmt, ...)
{
    char      line[2048], stamp[32];
    char     *c;
    time_t    now_s;
    va_list   ap;
    struct tm tm;

    now_s = time(NULL);
    gmtime_r(&now_s, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);

    /* a value may carry a server's multi-line message */
    for (c = line; *c; c++) {
        if (*c == '\n' || *c == '\r') {
            *c = ' ';
        }
    }

    fprintf(stderr, "ts=%s level=%s %s\n", stamp, level, line);
}
