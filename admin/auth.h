/*
 * Copyright (C) Tollgate developers
 *
 * Users, passwords (argon2id) and tokens (JWT HS256).
 */


#ifndef _TGA_AUTH_H_INCLUDED_
#define _TGA_AUTH_H_INCLUDED_


#include "tga.h"


int tga_auth_init(const tga_config_t *cf);
int tga_auth_ensure_admin(const char *user, const char *password);

tga_role_e tga_role_parse(const char *name);
const char *tga_role_name(tga_role_e role);

/* writes an argon2id hash string of TGA_AUTH_HASH_LEN bytes at most */
#define TGA_AUTH_HASH_LEN  128
int tga_auth_hash(const char *password, char *hash);

/*
 * Checks a user's password; on success fills *role.  Takes about as long
 * for an unknown user as for a wrong password.
 */
int tga_auth_login(const char *user, const char *password, tga_role_e *role);

/* a token for user, expiring at *expires_s (Unix seconds); free() it */
char *tga_auth_issue(const char *user, tga_role_e role, int64_t *expires_s);

/* TGA_OK and user/role filled, or TGA_ERROR for any bad token */
int tga_auth_verify(const char *token, char *user, size_t user_size,
    tga_role_e *role);


#endif /* _TGA_AUTH_H_INCLUDED_ */
