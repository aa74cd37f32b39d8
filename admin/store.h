/*
 * Copyright (C) Tollgate developers
 *
 * Events (the audit log) and the push of configuration to Redis.
 */


#ifndef _TGA_STORE_H_INCLUDED_
#define _TGA_STORE_H_INCLUDED_


#include "tga.h"


/*
 * Records an event in the current transaction.  details are
 * {who, what, before, after}; before and after may be NULL.
 */
int tga_event(const char *type, const char *app_id, const char *cluster_id,
    const tga_req_t *r, const char *what, json_t *before, json_t *after);

void tga_route_events(tga_req_t *r);


/*
 * Each writes one object, as PostgreSQL returned it, to its Redis keys.
 * A failure is logged and marks the configuration for a full re-sync.
 */
void tga_sync_app(json_t *app);
void tga_sync_app_delete(json_t *app);
void tga_sync_cluster(json_t *cluster);
void tga_sync_profile(json_t *profile);

/* writes every cluster, application and profile; drops stale apps */
int tga_sync_all(void);

/* re-syncs when a write failed or Redis restarted; called every second */
void tga_sync_check(void);


#endif /* _TGA_STORE_H_INCLUDED_ */
