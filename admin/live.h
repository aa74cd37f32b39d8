/*
 * Copyright (C) Tollgate developers
 *
 * Live data: the realtime snapshot, sampled once a second from the Redis
 * registry and state keys, the ring buffer of past samples, and history
 * queries (Prometheus when configured, else the ring buffer).
 */


#ifndef _TGA_LIVE_H_INCLUDED_
#define _TGA_LIVE_H_INCLUDED_


#include "tga.h"


int tga_live_init(const tga_config_t *cf);
void tga_live_destroy(void);

/* takes one sample and rebuilds the snapshot; called every second */
void tga_live_tick(void);

/* the latest snapshot as JSON text, and its sequence number */
const char *tga_live_snapshot(size_t *len, uint64_t *seq);

void tga_route_realtime(tga_req_t *r);
void tga_route_history(tga_req_t *r);
void tga_route_gateways(tga_req_t *r);


#endif /* _TGA_LIVE_H_INCLUDED_ */
