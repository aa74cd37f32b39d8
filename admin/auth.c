/*
 * Copyright (C) Tollgate developers
 */


#include <string.h>
#include <time.h>

#include <jwt.h>
#include <sodium.h>

#include "auth.h"
#include "db.h"


static const tga_config_t  *tga_auth_cf;

/* verified against when the user does not exist, to spend the same time */
static char                 tga_auth_dummy_hash[crypto_pwhash_STRBYTES];


static const char  *tga_role_names[] = {
    "none", "viewer", "operator", "admin"
};


tga_role_e
tga_role_parse(const char *name)
{
    int  r;

    for (r = TGA_ROLE_VIEWER; r <= TGA_ROLE_ADMIN; r++) {
        if (strcmp(name, tga_role_names[r]) == 0) {
            return (tga_role_e) r;
        }
    }

    return TGA_ROLE_NONE;
}


const char *
tga_role_name(tga_role_e role)
{
    return tga_role_names[role];
}


int
tga_auth_hash(const char *password, char *hash)
{
    if (crypto_pwhash_str(hash, password, strlen(password),
                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
    {
        tga_log_error("msg=\"password hashing failed: out of memory\"");
        return TGA_ERROR;
    }

    return TGA_OK;
}


int
tga_auth_init(const tga_config_t *cf)
{
    tga_auth_cf = cf;

    if (sodium_init() < 0) {
        tga_log_error("msg=\"libsodium init failed\"");
        return TGA_ERROR;
    }

    return tga_auth_hash("no such user", tga_auth_dummy_hash);
}


int
tga_auth_ensure_admin(const char *user, const char *password)
{
    char         hash[crypto_pwhash_STRBYTES];
    const char  *params[2];

    if (*user == '\0') {
        return TGA_OK;
    }

    if (*password == '\0') {
        tga_log_error("msg=\"admin_user set without admin_password\" "
                      "user=\"%s\"", user);
        return TGA_ERROR;
    }

    if (tga_auth_hash(password, hash) != TGA_OK) {
        return TGA_ERROR;
    }

    /* an existing user keeps the password it was given through the API */
    params[0] = user;
    params[1] = hash;

    return tga_db_run("INSERT INTO users (username, password_hash, role)"
                      " VALUES ($1, $2, 'admin')"
                      " ON CONFLICT (username) DO NOTHING", 2, params);
}


int
tga_auth_login(const char *user, const char *password, tga_role_e *role)
{
    int          ok;
    PGresult    *res;
    const char  *params[1], *hash;

    params[0] = user;
    res = tga_db_exec("SELECT password_hash, role FROM users"
                      " WHERE username = $1", 1, params);
    if (res == NULL) {
        return TGA_ERROR;
    }

    hash = PQntuples(res) ? PQgetvalue(res, 0, 0) : tga_auth_dummy_hash;
    ok = crypto_pwhash_str_verify(hash, password, strlen(password)) == 0
         && PQntuples(res) > 0;

    if (ok) {
        *role = tga_role_parse(PQgetvalue(res, 0, 1));
    }

    PQclear(res);

    return ok ? TGA_OK : TGA_NOT_FOUND;
}


char *
tga_auth_issue(const char *user, tga_role_e role, int64_t *expires_s)
{
    char     *token;
    jwt_t    *jwt;
    int64_t   now_s;

    if (jwt_new(&jwt) != 0) {
        return NULL;
    }

    now_s = (int64_t) time(NULL);
    *expires_s = now_s + tga_auth_cf->token_ttl_s;
    token = NULL;

    if (jwt_add_grant(jwt, "sub", user) == 0
        && jwt_add_grant(jwt, "role", tga_role_name(role)) == 0
        && jwt_add_grant_int(jwt, "iat", (long) now_s) == 0
        && jwt_add_grant_int(jwt, "exp", (long) *expires_s) == 0
        && jwt_set_alg(jwt, JWT_ALG_HS256,
                       (const unsigned char *) tga_auth_cf->jwt_secret,
                       (int) strlen(tga_auth_cf->jwt_secret)) == 0)
    {
        token = jwt_encode_str(jwt);
    }

    jwt_free(jwt);

    return token;
}


/*
 * The algorithm is checked after decoding: a token that names another
 * algorithm ("none" above all) is refused whatever libjwt made of it.
 */
int
tga_auth_verify(const char *token, char *user, size_t user_size,
    tga_role_e *role)
{
    int          rc;
    long         exp_s;
    jwt_t       *jwt;
    const char  *sub, *role_name;

    if (jwt_decode(&jwt, token,
                   (const unsigned char *) tga_auth_cf->jwt_secret,
                   (int) strlen(tga_auth_cf->jwt_secret)) != 0)
    {
        return TGA_ERROR;
    }

    rc = TGA_ERROR;
    exp_s = jwt_get_grant_int(jwt, "exp");
    sub = jwt_get_grant(jwt, "sub");
    role_name = jwt_get_grant(jwt, "role");

    if (jwt_get_alg(jwt) == JWT_ALG_HS256
        && exp_s > (long) time(NULL)
        && sub && strlen(sub) < user_size
        && role_name && tga_role_parse(role_name) != TGA_ROLE_NONE)
    {
        strcpy(user, sub);
        *role = tga_role_parse(role_name);
        rc = TGA_OK;
    }

    jwt_free(jwt);

    return rc;
}
