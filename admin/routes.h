/*
 * Copyright (C) Tollgate developers
 *
 * Route handlers.  Each reads the request, sets r->status and r->reply,
 * and leaves both unset only on an internal error (answered with 500).
 */


#ifndef _TGA_ROUTES_H_INCLUDED_
#define _TGA_ROUTES_H_INCLUDED_


#include "tga.h"


/* routes.c */
void tga_route_healthz(tga_req_t *r);
void tga_route_openapi(tga_req_t *r);
void tga_route_login(tga_req_t *r);
void tga_route_me(tga_req_t *r);
void tga_route_user_list(tga_req_t *r);
void tga_route_user_create(tga_req_t *r);
void tga_route_user_delete(tga_req_t *r);

/* routes_apps.c */
void tga_route_app_list(tga_req_t *r);
void tga_route_app_create(tga_req_t *r);
void tga_route_app_get(tga_req_t *r);
void tga_route_app_update(tga_req_t *r);
void tga_route_app_delete(tga_req_t *r);
void tga_route_app_quota(tga_req_t *r);

/* routes_clusters.c */
void tga_route_cluster_list(tga_req_t *r);
void tga_route_cluster_get(tga_req_t *r);
void tga_route_cluster_put(tga_req_t *r);
void tga_route_profile_list(tga_req_t *r);
void tga_route_profile_put(tga_req_t *r);

/* routes_ops.c: operations that go through Redis scripts */
void tga_route_emergency(tga_req_t *r);
void tga_route_degradation(tga_req_t *r);
void tga_route_borrow(tga_req_t *r);
void tga_route_repay(tga_req_t *r);

/* the emergency hash of a cluster as JSON; a default when absent */
json_t *tga_emergency_read(const char *cluster_id);

/* the same from the hash's fields, already read */
json_t *tga_emergency_json(json_t *hash);


#endif /* _TGA_ROUTES_H_INCLUDED_ */
