/*
 * What the files of the s3 primitive share, private to engine/s3/: the
 * client handle, S3's addressing (a bucket and a key made into the host
 * and the path of a request for s3/http.c), the requests c:stats()
 * counts, the checks of Lua arguments, and the methods each file adds.
 */
#ifndef VAKAP_S3_S3_H
#define VAKAP_S3_S3_H

#include <lauxlib.h>
#include <lua.h>

#include "base.h"
#include "s3/http.h"

#define S3_CLIENT_MT "vakap.s3.client"
#define S3_WHAT_LEN 1200 /* "PUT s3://bucket/key (part 12)" */
#define S3_ERR_LEN 2000

/* The requests counted apart by c:stats(). */
enum s3_op {
	OP_PUT, OP_PART, OP_INIT, OP_COMPLETE, OP_ABORT, OP_GET, OP_HEAD,
	OP_LIST, OP_DELETE, OP_UPLOADS, OP_N
};

/* The client handle (userdata S3_CLIENT_MT). */
struct s3_client {
	int open;
	struct http_client http; /* endpoint, credentials, retries, connection */
	char *bucket;
	int path_style;          /* /bucket/key, not bucket.host/key */
	long long by_op[OP_N];
};

/* ---- client.c ---- */

/* Argument 1, an open client; raises otherwise. */
struct s3_client *s3_check_client(lua_State *L);
/* An object key at idx: 1 to 1024 bytes, no NUL; raises otherwise. */
const char *s3_check_key(lua_State *L, int idx);
/* Options of the table at idx; each raises when one is of a wrong type,
 * out of range, or (s3_check_known) not in the NULL-terminated list. */
const char *s3_opt_string(lua_State *L, int idx, const char *name,
                          const char *def);
lua_Integer s3_opt_int(lua_State *L, int idx, const char *name,
                       lua_Integer def, lua_Integer min, lua_Integer max);
void s3_check_known(lua_State *L, int idx, const char *const *known);

/* "VERB s3://bucket/key", for messages. */
void s3_what(struct s3_client *c, const char *verb, const char *key,
             char *out, size_t len);
/* The path of key ("/bucket/key" or "/key", encoded; NULL: the bucket)
 * and the Host of the bucket; 0, or -1 when memory ran out. */
int s3_path(struct s3_client *c, const char *key, struct vk_buf *out);
int s3_host(struct s3_client *c, struct vk_buf *out);
/* "name=value" (the value encoded) added to the query q, after a '&'
 * unless q is empty; nothing when value is NULL.  0, or -1 when memory
 * ran out. */
int s3_add_param(struct vk_buf *q, const char *name, const char *value);

/* http_request and http_request_xml of rq (its method, query, body,
 * headers, what and flags set) addressed to key (NULL: the bucket) and
 * counted as op. */
int s3_send(struct s3_client *c, enum s3_op op, const char *key,
            struct http_request *rq, struct http_response *rs, char *err,
            size_t errlen);
int s3_send_xml(struct s3_client *c, enum s3_op op, const char *key,
                struct http_request *rq, const char *root,
                struct xml_doc *d, char *err, size_t errlen);

/* ---- the methods, in the file of their concern ---- */

int s3_m_put(lua_State *L);        /* upload.c */
int s3_m_put_string(lua_State *L);
int s3_m_get(lua_State *L);        /* download.c */
int s3_m_head(lua_State *L);       /* objects.c */
int s3_m_list(lua_State *L);
int s3_m_delete(lua_State *L);
int s3_m_uploads(lua_State *L);
int s3_m_abort(lua_State *L);
int s3_m_presign(lua_State *L);

#endif
