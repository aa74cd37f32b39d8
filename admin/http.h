/*
 * Copyright (C) Tollgate developers
 *
 * The HTTP and WebSocket server (libwebsockets) and the route table.
 */


#ifndef _TGA_HTTP_H_INCLUDED_
#define _TGA_HTTP_H_INCLUDED_


#include "tga.h"


typedef void (*tga_handler_pt)(tga_req_t *r);

typedef struct {
    tga_method_e          method;
    const char           *pattern;     /* ":x" matches one path segment */
    tga_role_e            role;        /* TGA_ROLE_NONE: no token needed */
    tga_handler_pt        handler;
} tga_route_t;


extern const tga_route_t  tga_routes[];


int tga_http_init(const tga_config_t *cf);
void tga_http_run(void);
void tga_http_stop(void);
void tga_http_destroy(void);

/*
 * Sends the reply of a request a handler left pending (r->pending), once
 * it is set; r must still be open (see tga_prom_cancel).
 */
void tga_http_resume(tga_req_t *r);

/* wakes every WebSocket client so it is sent the latest snapshot */
void tga_http_ws_notify(void);

/* a query argument, URL-decoded, or NULL when absent */
const char *tga_req_arg(tga_req_t *r, const char *name, char *buf,
    int size);

/* sets the reply: takes the reference to body (NULL: no body) */
void tga_reply(tga_req_t *r, int status, json_t *body);

/* sets a reply already rendered as JSON text: takes json_text, malloc'ed */
void tga_reply_text(tga_req_t *r, int status, char *json_text);

void tga_reply_error(tga_req_t *r, int status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));


#endif /* _TGA_HTTP_H_INCLUDED_ */
