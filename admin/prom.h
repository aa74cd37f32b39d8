/*
 * Copyright (C) Tollgate developers
 *
 * History from Prometheus: a query_range sent with the libwebsockets
 * HTTP client on the daemon's one event loop, so that a slow Prometheus
 * holds only the request that asked, never the others.
 */


#ifndef _TGA_PROM_H_INCLUDED_
#define _TGA_PROM_H_INCLUDED_


#include <libwebsockets.h>

#include "tga.h"


/* the client protocol, to list in the context's protocols */
int tga_prom_callback(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len);

#define TGA_PROM_PROTOCOL  "tollgate-prometheus"

/* 1 when TOLLGATE_PROMETHEUS_URL is set and usable */
int tga_prom_enabled(void);
int tga_prom_init(struct lws_context *ctx, const char *url);

/*
 * Starts GET /api/v1/query_range for r and marks r pending: the reply
 * ({"source": "prometheus", "metric", "series"}, or a 503) is set later
 * and tga_http_resume() sends it.  The labels cluster and app of the
 * result become cluster_id and app_id.  Returns TGA_ERROR with r's
 * reply set when the query cannot start.
 */
int tga_prom_query_range(tga_req_t *r, const char *metric,
    const char *promql, int64_t start_s, int64_t end_s, int64_t step_s);

/* the request r is gone (its connection closed): forget it */
void tga_prom_cancel(tga_req_t *r);


#endif /* _TGA_PROM_H_INCLUDED_ */
