/*
 * vakap.s3: objects in S3 (or an S3-compatible service).  The module
 * (s3.client, s3.sign) and the client handle: what it holds (the bucket;
 * the endpoint, credentials, retry policy and connection of its
 * s3/http.c client), S3's addressing of a bucket and a key, and the Lua
 * checks the methods share.  The methods live by concern: upload.c (put,
 * a sink), download.c (get, a source), objects.c (head, list, delete,
 * uploads, abort, presign).
 *
 * A client made in one process and used in another (a forked worker)
 * makes connections of its own there (s3/http.c): it never shares the
 * parent's.  Secrets never appear in a message; they are wiped when the
 * client is closed.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "s3/s3.h"

/* ---- the Lua checks ---- */

struct s3_client *s3_check_client(lua_State *L)
{
	struct s3_client *c = luaL_checkudata(L, 1, S3_CLIENT_MT);

	if (!c->open)
		luaL_error(L, "attempt to use a closed s3 client");
	return c;
}

const char *s3_check_key(lua_State *L, int idx)
{
	size_t len;
	const char *key = luaL_checklstring(L, idx, &len);

	luaL_argcheck(L, len > 0 && len <= 1024 && strlen(key) == len, idx,
	              "an object key is 1 to 1024 bytes, without NUL");
	return key;
}

const char *s3_opt_string(lua_State *L, int idx, const char *name,
                          const char *def)
{
	const char *s;

	lua_getfield(L, idx, name);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return def;
	}
	if (lua_type(L, -1) != LUA_TSTRING)
		luaL_error(L, "s3: option '%s' must be a string", name);
	s = lua_tostring(L, -1);
	lua_pop(L, 1); /* the table keeps it alive */
	return s;
}

lua_Integer s3_opt_int(lua_State *L, int idx, const char *name,
                       lua_Integer def, lua_Integer min, lua_Integer max)
{
	lua_Integer v;
	int isint;

	lua_getfield(L, idx, name);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return def;
	}
	v = lua_tointegerx(L, -1, &isint);
	lua_pop(L, 1);
	if (!isint || v < min || v > max)
		luaL_error(L, "s3: option '%s' must be an integer from %I to %I",
		           name, min, max);
	return v;
}

void s3_check_known(lua_State *L, int idx, const char *const *known)
{
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		const char *const *k;
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "s3: option names are strings");
		for (k = known; *k; k++)
			if (strcmp(*k, lua_tostring(L, -1)) == 0)
				break;
		if (*k == NULL)
			luaL_error(L, "s3: unknown option '%s'", lua_tostring(L, -1));
	}
}

/* ---- addressing ---- */

void s3_what(struct s3_client *c, const char *verb, const char *key,
             char *out, size_t len)
{
	msgf(out, len, "%s s3://%s/%s", verb, c->bucket, key ? key : "");
}

int s3_path(struct s3_client *c, const char *key, struct vk_buf *out)
{
	if (c->path_style && (vk_buf_adds(out, "/") != 0 ||
	                      s3_uri_encode(out, c->bucket, strlen(c->bucket),
	                                    0) != 0))
		return -1;
	if (key == NULL)
		return c->path_style ? 0 : vk_buf_adds(out, "/");
	return vk_buf_adds(out, "/") != 0 ||
	       s3_uri_encode(out, key, strlen(key), 1) != 0 ? -1 : 0;
}

int s3_host(struct s3_client *c, struct vk_buf *out)
{
	if (c->path_style)
		return vk_buf_adds(out, c->http.hostport);
	return vk_buf_printf(out, "%s.%s", c->bucket, c->http.hostport);
}

int s3_add_param(struct vk_buf *q, const char *name, const char *value)
{
	if (value == NULL)
		return 0;
	return vk_buf_printf(q, "%s%s=", q->len ? "&" : "", name) != 0 ||
	               s3_uri_encode(q, value, strlen(value), 0) != 0
	           ? -1
	           : 0;
}

/* rq's host and path for key, and its tally; 0, or -1 with a message. */
static int address(struct s3_client *c, enum s3_op op, const char *key,
                   struct http_request *rq, struct vk_buf *host,
                   struct vk_buf *path, char *err, size_t errlen)
{
	if (s3_path(c, key, path) != 0 || vk_buf_adds(path, "") != 0 ||
	    s3_host(c, host) != 0) {
		msgf(err, errlen, "s3: %s: out of memory", rq->what);
		return -1;
	}
	rq->host = host->p;
	rq->path = path->p;
	rq->tally = &c->by_op[op];
	return 0;
}

int s3_send(struct s3_client *c, enum s3_op op, const char *key,
            struct http_request *rq, struct http_response *rs, char *err,
            size_t errlen)
{
	struct vk_buf host = {0}, path = {0};
	int rc = -1;

	memset(rs, 0, sizeof *rs);
	if (address(c, op, key, rq, &host, &path, err, errlen) == 0)
		rc = http_request(&c->http, rq, rs, err, errlen);
	vk_buf_free(&host);
	vk_buf_free(&path);
	return rc;
}

int s3_send_xml(struct s3_client *c, enum s3_op op, const char *key,
                struct http_request *rq, const char *root,
                struct xml_doc *d, char *err, size_t errlen)
{
	struct vk_buf host = {0}, path = {0};
	int rc = -1;

	memset(d, 0, sizeof *d);
	if (address(c, op, key, rq, &host, &path, err, errlen) == 0)
		rc = http_request_xml(&c->http, rq, root, d, err, errlen);
	vk_buf_free(&host);
	vk_buf_free(&path);
	return rc;
}

/* ---- the handle ---- */

static void client_release(struct s3_client *c)
{
	http_client_free(&c->http);
	free(c->bucket);
	c->bucket = NULL;
	c->open = 0;
}

/* lua: c:close() -- also __gc and __close; closing twice is harmless */
static int m_close(lua_State *L)
{
	client_release(luaL_checkudata(L, 1, S3_CLIENT_MT));
	return 0;
}

/* scheme://host[:port][/] -> scheme, host[:port] */
static int parse_endpoint(const char *ep, char **scheme, char **hostport)
{
	const char *sep = strstr(ep, "://"), *host;
	size_t hlen;

	if (sep == NULL)
		return -1;
	if (!((sep - ep == 4 && strncmp(ep, "http", 4) == 0) ||
	      (sep - ep == 5 && strncmp(ep, "https", 5) == 0)))
		return -1;
	host = sep + 3;
	hlen = strcspn(host, "/?#");
	if (hlen == 0 || (host[hlen] != '\0' && strcmp(host + hlen, "/") != 0))
		return -1;
	*scheme = strndup(ep, (size_t)(sep - ep));
	*hostport = strndup(host, hlen);
	return 0;
}

static const char *const client_opts[] = {
	"bucket", "region", "endpoint", "path_style", "access_key", "secret_key",
	"session_token", "retries", "retry_base_ms", "connect_timeout",
	"stall_timeout", NULL,
};

struct client_opts {
	const char *bucket, *region, *endpoint, *ak, *sk, *tok;
	lua_Integer retries, base, cto, sto;
	int path_style;
};

/* The options of s3.client{}, checked: a mistake raises. */
static void client_options(lua_State *L, struct client_opts *o)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	s3_check_known(L, 1, client_opts);
	o->bucket = s3_opt_string(L, 1, "bucket", NULL);
	o->region = s3_opt_string(L, 1, "region", "us-east-1");
	o->endpoint = s3_opt_string(L, 1, "endpoint", NULL);
	o->ak = s3_opt_string(L, 1, "access_key", NULL);
	o->sk = s3_opt_string(L, 1, "secret_key", NULL);
	o->tok = s3_opt_string(L, 1, "session_token", NULL);
	o->retries = s3_opt_int(L, 1, "retries", 5, 0, 100);
	o->base = s3_opt_int(L, 1, "retry_base_ms", 200, 0, 60000);
	o->cto = s3_opt_int(L, 1, "connect_timeout", 10, 1, 3600);
	o->sto = s3_opt_int(L, 1, "stall_timeout", 60, 1, 3600);
	lua_getfield(L, 1, "path_style");
	o->path_style = lua_isnil(L, -1) ? o->endpoint != NULL
	                                 : lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (o->bucket == NULL || *o->bucket == '\0')
		luaL_error(L, "s3: option 'bucket' is required");
	if (o->ak == NULL || o->sk == NULL || *o->ak == '\0' || *o->sk == '\0')
		luaL_error(L, "s3: options 'access_key' and 'secret_key' are "
		              "required");
	if (strlen(o->region) == 0 || strlen(o->region) > 64 ||
	    strpbrk(o->region, "/ :") != NULL)
		luaL_error(L, "s3: bad region '%s'", o->region);
	if (strchr(o->bucket, '/') != NULL)
		luaL_error(L, "s3: bad bucket name '%s'", o->bucket);
}

/* Fill c from the options: 0, -1 when memory ran out, -2 for a bad
 * endpoint.  client_release frees what it holds either way. */
static int client_setup(struct s3_client *c, const struct client_opts *o)
{
	struct http_client *hc = &c->http;
	const char *tok = o->tok && *o->tok ? o->tok : NULL;
	char defep[200];

	hc->service = "s3";
	hc->retries = (int)o->retries;
	hc->retry_base_ms = (long)o->base;
	hc->connect_timeout = (long)o->cto;
	hc->stall_timeout = (long)o->sto;
	hc->rng = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)c << 16) ^
	          0x9e3779b97f4a7c15ULL;
	c->path_style = o->path_style;
	msgf(defep, sizeof defep, "https://s3.%s.amazonaws.com", o->region);
	if (parse_endpoint(o->endpoint ? o->endpoint : defep, &hc->scheme,
	                   &hc->hostport) != 0)
		return -2;
	c->bucket = strdup(o->bucket);
	hc->region = strdup(o->region);
	hc->access_key = strdup(o->ak);
	hc->secret_key = strdup(o->sk);
	hc->session_token = tok ? strdup(tok) : NULL;
	if (!hc->scheme || !hc->hostport || !c->bucket || !hc->region ||
	    !hc->access_key || !hc->secret_key || (tok && !hc->session_token) ||
	    http_conn_open(&hc->conn) != 0)
		return -1;
	return 0;
}

/* lua: s3.client{ bucket=, region=, endpoint=, path_style=, access_key=,
 *      secret_key=, session_token=, retries=, retry_base_ms=,
 *      connect_timeout=, stall_timeout= } -> client */
static int l_client(lua_State *L)
{
	struct client_opts o;
	struct s3_client *c;
	int rc;

	client_options(L, &o);
	c = lua_newuserdatauv(L, sizeof *c, 0);
	memset(c, 0, sizeof *c);
	luaL_setmetatable(L, S3_CLIENT_MT);
	rc = client_setup(c, &o);
	if (rc != 0) {
		client_release(c);
		if (rc == -2)
			return luaL_error(L, "s3: bad endpoint '%s' (want "
			                     "http[s]://host[:port])", o.endpoint);
		return luaL_error(L, "s3: out of memory");
	}
	c->open = 1;
	return 1;
}

static const char *const op_names[OP_N] = {
	"PUT", "PART", "INIT", "COMPLETE", "ABORT", "GET", "HEAD", "LIST",
	"DELETE", "UPLOADS",
};

/* lua: c:stats() -> { requests = n, retries = n, by_op = { PUT = n, ... } }
 *      by_op counts every request sent, retries included; names: PUT
 *      (PutObject), PART, INIT, COMPLETE, ABORT (multipart), GET, HEAD,
 *      LIST, DELETE (DeleteObjects batches), UPLOADS */
static int m_stats(lua_State *L)
{
	struct s3_client *c = luaL_checkudata(L, 1, S3_CLIENT_MT);
	int i;

	lua_createtable(L, 0, 3);
	lua_pushinteger(L, (lua_Integer)c->http.requests);
	lua_setfield(L, -2, "requests");
	lua_pushinteger(L, (lua_Integer)c->http.retried);
	lua_setfield(L, -2, "retries");
	lua_createtable(L, 0, OP_N);
	for (i = 0; i < OP_N; i++) {
		lua_pushinteger(L, (lua_Integer)c->by_op[i]);
		lua_setfield(L, -2, op_names[i]);
	}
	lua_setfield(L, -2, "by_op");
	return 1;
}

static int m_tostring(lua_State *L)
{
	struct s3_client *c = luaL_checkudata(L, 1, S3_CLIENT_MT);

	if (c->open)
		lua_pushfstring(L, "vakap.s3.client (s3://%s, %s://%s)", c->bucket,
		                c->http.scheme, c->http.hostport);
	else
		lua_pushliteral(L, "vakap.s3.client (closed)");
	return 1;
}

/* ---- pure signing, for tests ---- */

static const char *field(lua_State *L, int idx, const char *name, int required)
{
	const char *s;

	lua_getfield(L, idx, name);
	if (lua_isnil(L, -1) && !required) {
		lua_pop(L, 1);
		return NULL;
	}
	if (lua_type(L, -1) != LUA_TSTRING)
		luaL_error(L, "s3.sign: field '%s' must be a string", name);
	s = lua_tostring(L, -1);
	lua_pop(L, 1);
	return s;
}

/* The headers field of the table at idx, as a list in a userdata (so a
 * raised error frees it) left on the stack above the headers table. */
static struct s3_header *sign_headers(lua_State *L, int idx, size_t *n)
{
	struct s3_header *h;
	size_t i;

	if (lua_getfield(L, idx, "headers") != LUA_TTABLE && !lua_isnil(L, -1))
		luaL_error(L, "s3.sign: field 'headers' must be a list");
	*n = lua_istable(L, -1) ? lua_rawlen(L, -1) : 0;
	h = lua_newuserdatauv(L, (*n ? *n : 1) * sizeof *h, 0);
	for (i = 0; i < *n; i++) {
		if (lua_rawgeti(L, -2, (lua_Integer)i + 1) != LUA_TTABLE ||
		    lua_rawgeti(L, -1, 1) != LUA_TSTRING ||
		    lua_rawgeti(L, -2, 2) != LUA_TSTRING)
			luaL_error(L, "s3.sign: header %d is not {name, value}",
			           (int)i + 1);
		h[i].name = lua_tostring(L, -2);
		h[i].value = lua_tostring(L, -1);
		lua_pop(L, 3); /* the headers table keeps them alive */
	}
	return h;
}

/* lua: s3.sign{ method, path, query, headers = { {name, value}... },
 *      payload_hash, region, service, access_key, secret_key,
 *      session_token, time } ->
 *      { canonical_request, string_to_sign, signature, authorization } */
static int l_sign(lua_State *L)
{
	struct s3_sign_input in;
	struct s3_signature sig;

	luaL_checktype(L, 1, LUA_TTABLE);
	memset(&in, 0, sizeof in);
	in.method = field(L, 1, "method", 1);
	in.path = field(L, 1, "path", 1);
	in.query = field(L, 1, "query", 0);
	in.payload_hash = field(L, 1, "payload_hash", 1);
	in.region = field(L, 1, "region", 1);
	in.service = field(L, 1, "service", 0);
	in.access_key = field(L, 1, "access_key", 1);
	in.secret_key = field(L, 1, "secret_key", 1);
	in.session_token = field(L, 1, "session_token", 0);
	in.time = field(L, 1, "time", 1);
	in.headers = sign_headers(L, 1, &in.nheaders);
	if (s3_sign(&in, &sig) != 0) {
		s3_signature_free(&sig);
		return luaL_error(L, "s3.sign: cannot sign (a bad time, or out "
		                     "of memory)");
	}
	lua_createtable(L, 0, 4);
	lua_pushstring(L, sig.canonical_request.p);
	lua_setfield(L, -2, "canonical_request");
	lua_pushstring(L, sig.string_to_sign.p);
	lua_setfield(L, -2, "string_to_sign");
	lua_pushstring(L, sig.signature);
	lua_setfield(L, -2, "signature");
	lua_pushstring(L, sig.authorization.p);
	lua_setfield(L, -2, "authorization");
	s3_signature_free(&sig);
	return 1;
}

/* ---- the module ---- */

static const luaL_Reg methods[] = {
	{"put", s3_m_put},         {"put_string", s3_m_put_string},
	{"get", s3_m_get},         {"head", s3_m_head},
	{"list", s3_m_list},       {"delete", s3_m_delete},
	{"uploads", s3_m_uploads}, {"abort", s3_m_abort},
	{"presign", s3_m_presign}, {"stats", m_stats},
	{"close", m_close},        {NULL, NULL},
};

static const luaL_Reg metamethods[] = {
	{"__index", NULL}, /* the methods table */
	{"__gc", m_close},
	{"__close", m_close},
	{"__tostring", m_tostring},
	{NULL, NULL},
};

static const luaL_Reg funcs[] = {
	{"client", l_client},
	{"sign", l_sign},
	{NULL, NULL},
};

int luaopen_vakap_s3(lua_State *L)
{
	static int initialised;

	if (!initialised) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return luaL_error(L, "s3: cannot initialise libcurl");
		initialised = 1;
	}
	vk_class(L, S3_CLIENT_MT, metamethods, methods);
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
