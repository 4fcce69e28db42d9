/*
 * The client's methods that are one request, or a listing in pages:
 * c:head, c:list (ListObjectsV2), c:uploads (ListMultipartUploads),
 * c:delete (DeleteObjects, in batches), c:abort and c:presign.  Both
 * listings go through one pager (list_pages), which follows an answer's
 * markers to the next page; the records of each answer become Lua tables
 * (push_records).
 *
 * It owns nothing beyond a call: each answer is freed before the next.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3/s3.h"

#define DELETE_BATCH 1000
#define LIST_MAX_PAGES 1000000 /* a billion keys at 1,000 a page */

/* ISO 8601 "2026-11-21T22:00:00Z" from an S3 timestamp ("...T..:..:..
 * .000Z") or an HTTP date; "" when it is neither. */
static void iso_time(const char *in, char out[21])
{
	int y, mo, d, h, mi, s;
	time_t t;
	struct tm tm;

	out[0] = '\0';
	if (in == NULL)
		return;
	if (sscanf(in, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &s) == 6) {
		msgf(out, 21, "%04d-%02d-%02dT%02d:%02d:%02dZ", y % 10000,
		     mo % 100, d % 100, h % 100, mi % 100, s % 100);
		return;
	}
	t = curl_getdate(in, NULL);
	if (t == -1 || gmtime_r(&t, &tm) == NULL)
		return;
	strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* fail, message, status (when there was one): the failure of a request
 * for one object. */
static int push_fail_status(lua_State *L, const char *err, long status)
{
	vk_pushfail(L, "%s", err);
	if (status == 0)
		return 2;
	lua_pushinteger(L, status);
	return 3;
}

/* lua: c:head(key) -> { size, etag, last_modified } | fail, msg, status */
int s3_m_head(lua_State *L)
{
	struct s3_client *c = s3_check_client(L);
	const char *key = s3_check_key(L, 2);
	struct http_request rq = {0};
	struct http_response rs;
	char what[S3_WHAT_LEN], err[S3_ERR_LEN], when[21];

	s3_what(c, "HEAD", key, what, sizeof what);
	rq.method = "HEAD";
	rq.what = what;
	if (s3_send(c, OP_HEAD, key, &rq, &rs, err, sizeof err) != 0) {
		long status = rs.status;
		http_response_free(&rs);
		return push_fail_status(L, err, status);
	}
	lua_createtable(L, 0, 3);
	lua_pushinteger(L, rs.length >= 0 ? (lua_Integer)rs.length : 0);
	lua_setfield(L, -2, "size");
	lua_pushstring(L, rs.etag);
	lua_setfield(L, -2, "etag");
	iso_time(rs.last_modified, when);
	lua_pushstring(L, when);
	lua_setfield(L, -2, "last_modified");
	http_response_free(&rs);
	return 1;
}

/* ---- records of an answer ---- */

/* A field of a record in an answer: the child element's name, the key in
 * the Lua table (NULL: the record is that one value, not a table), and
 * how its text is read. */
enum field_kind { F_TEXT, F_INT, F_TIME, F_ETAG };
struct field {
	const char *xml, *lua;
	enum field_kind kind;
};

static void push_field(lua_State *L, const char *text, enum field_kind kind)
{
	char buf[128];

	switch (kind) {
	case F_INT:
		lua_pushinteger(L, text ? (lua_Integer)strtoll(text, NULL, 10) : 0);
		return;
	case F_TIME:
		iso_time(text, buf);
		break;
	case F_ETAG:
		http_etag(buf, sizeof buf, text ? text : "", text ? strlen(text) : 0);
		break;
	case F_TEXT:
		lua_pushstring(L, text ? text : "");
		return;
	}
	lua_pushstring(L, buf);
}

/* Append to the list at idx each element at path `record` of the answer,
 * as a table of its fields (absent ones empty).  Returns how many. */
static lua_Integer push_records(lua_State *L, int idx, const struct xml_doc *d,
                                const char *record, const struct field *f,
                                size_t nf)
{
	const char *val[8] = {NULL};
	size_t rlen = strlen(record), i, k;
	lua_Integer n = 0;

	for (i = 0; i < d->n; i++) {
		const char *p = d->v[i].path;
		if (strncmp(p, record, rlen) != 0)
			continue;
		if (p[rlen] == '/') {
			for (k = 0; k < nf && k < 8; k++)
				if (strcmp(p + rlen + 1, f[k].xml) == 0)
					val[k] = d->v[i].text;
			continue;
		}
		if (p[rlen] != '\0')
			continue;
		if (f[0].lua == NULL) {
			push_field(L, val[0], f[0].kind);
		} else {
			lua_createtable(L, 0, (int)nf);
			for (k = 0; k < nf && k < 8; k++) {
				push_field(L, val[k], f[k].kind);
				lua_setfield(L, -2, f[k].lua);
			}
		}
		lua_rawseti(L, idx, (lua_Integer)lua_rawlen(L, idx) + 1);
		memset(val, 0, sizeof val);
		n++;
	}
	return n;
}

static const struct field object_fields[] = {
	{"Key", "key", F_TEXT},
	{"Size", "size", F_INT},
	{"LastModified", "last_modified", F_TIME},
	{"ETag", "etag", F_ETAG},
};
static const struct field prefix_fields[] = {{"Prefix", NULL, F_TEXT}};
static const struct field delete_error_fields[] = {
	{"Key", "key", F_TEXT},
	{"Code", "code", F_TEXT},
	{"Message", "message", F_TEXT},
};
static const struct field upload_fields[] = {
	{"Key", "key", F_TEXT},
	{"UploadId", "upload_id", F_TEXT},
	{"Initiated", "initiated", F_TIME},
};
#define NFIELDS(f) (sizeof f / sizeof f[0])

/* ---- listings in pages ---- */

struct param {
	const char *name, *value; /* a NULL value is left out */
};

/* What one listing is: the pager does the rest. */
struct listing {
	enum s3_op op;
	const char *what;
	const char *root;         /* the answer's root element */
	struct param params[4];   /* the query of every page */
	struct param first;       /* and of the first page only */
	const char *next[2];      /* the answer's elements naming the next
	                           * page, the first one required, */
	const char *marker[2];    /* and the query parameters they become */
	const char *lacking;      /* "a continuation token" */
	const char *token;        /* "continuation token" */
	struct {
		const char *at;   /* the records, under the root */
		const struct field *f;
		size_t nf;
		int table;        /* the stack index of their list */
	} out[2];
};

/* The query of a page: markers[0] NULL for the first. */
static int page_query(const struct listing *ls, char *const marker[2],
                      struct vk_buf *q)
{
	size_t i;

	for (i = 0; i < 4; i++)
		if (ls->params[i].name &&
		    s3_add_param(q, ls->params[i].name, ls->params[i].value) != 0)
			return -1;
	if (marker[0] == NULL && ls->first.name &&
	    s3_add_param(q, ls->first.name, ls->first.value) != 0)
		return -1;
	for (i = 0; i < 2; i++)
		if (ls->marker[i] && s3_add_param(q, ls->marker[i], marker[i]) != 0)
			return -1;
	return vk_buf_adds(q, "");
}

static void page_records(lua_State *L, const struct listing *ls,
                         const struct xml_doc *d)
{
	char path[128];
	size_t i;

	for (i = 0; i < 2 && ls->out[i].at; i++) {
		msgf(path, sizeof path, "/%s/%s", ls->root, ls->out[i].at);
		push_records(L, ls->out[i].table, d, path, ls->out[i].f,
		             ls->out[i].nf);
	}
}

/* The markers of the page after d's (marker[0] left NULL: d's was the
 * last); 0, or -1 with a message in err. */
static int page_next(const struct listing *ls, const struct xml_doc *d,
                     char *marker[2], char *err, size_t errlen)
{
	char path[128];
	const char *v;
	size_t i;

	msgf(path, sizeof path, "/%s/IsTruncated", ls->root);
	v = xml_get(d, path);
	if (v == NULL || strcmp(v, "true") != 0)
		return 0;
	for (i = 0; i < 2 && ls->next[i]; i++) {
		msgf(path, sizeof path, "/%s/%s", ls->root, ls->next[i]);
		if ((v = xml_get(d, path)) != NULL &&
		    (marker[i] = strdup(v)) == NULL) {
			msgf(err, errlen, "s3: %s: out of memory", ls->what);
			return -1;
		}
	}
	if (marker[0] == NULL || *marker[0] == '\0') {
		msgf(err, errlen, "s3: %s: a truncated listing without %s",
		     ls->what, ls->lacking);
		return -1;
	}
	return 0;
}

static void markers_free(char *marker[2])
{
	free(marker[0]);
	free(marker[1]);
	marker[0] = marker[1] = NULL;
}

/* The markers seen so far in a listing, as a set of their hashes: a
 * server that sends one again would have the listing go round forever. */
struct seen {
	uint64_t *v; /* open addressing; 0 is a free slot */
	size_t n, cap;
};

static uint64_t marker_hash(char *const marker[2])
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */
	size_t i;
	const char *p;

	for (i = 0; i < 2; i++) {
		for (p = marker[i] ? marker[i] : ""; ; p++) {
			h = (h ^ (unsigned char)*p) * 1099511628211ULL;
			if (*p == '\0')
				break;
		}
	}
	return h ? h : 1;
}

/* Add h to the set: 1 when it was there already, 0, or -1 when memory
 * ran out. */
static int seen_add(struct seen *s, uint64_t h)
{
	size_t i;

	if (2 * (s->n + 1) > s->cap) {
		struct seen bigger = {0};
		bigger.cap = s->cap ? 2 * s->cap : 64;
		if ((bigger.v = calloc(bigger.cap, sizeof *bigger.v)) == NULL)
			return -1;
		for (i = 0; i < s->cap; i++)
			if (s->v[i])
				seen_add(&bigger, s->v[i]);
		free(s->v);
		*s = bigger;
	}
	for (i = h & (s->cap - 1); s->v[i]; i = (i + 1) & (s->cap - 1))
		if (s->v[i] == h)
			return 1;
	s->v[i] = h;
	s->n++;
	return 0;
}

/* One page of a listing, from its markers (marker[0] NULL for the
 * first): its records added to their lists, marker then the next page's
 * (marker[0] NULL: it was the last); 0, or -1 with a message in err. */
static int list_page(lua_State *L, struct s3_client *c,
                     const struct listing *ls, char *marker[2], char *err,
                     size_t errlen)
{
	struct http_request rq = {0};
	struct vk_buf q = {0};
	struct xml_doc d;
	int rc;

	rc = page_query(ls, marker, &q);
	markers_free(marker);
	if (rc != 0) {
		vk_buf_free(&q);
		msgf(err, errlen, "s3: %s: out of memory", ls->what);
		return -1;
	}
	rq.method = "GET";
	rq.query = q.p;
	rq.what = ls->what;
	rc = s3_send_xml(c, ls->op, NULL, &rq, ls->root, &d, err, errlen);
	vk_buf_free(&q);
	if (rc != 0)
		return -1;
	page_records(L, ls, &d);
	rc = page_next(ls, &d, marker, err, errlen);
	xml_free(&d);
	return rc;
}

/* Whether the listing may go on to the page of these markers: not when
 * they were seen before, nor past LIST_MAX_PAGES; 0, or -1 with a
 * message in err. */
static int page_new(const struct listing *ls, char *const marker[2],
                    struct seen *s, char *err, size_t errlen)
{
	int rc = seen_add(s, marker_hash(marker));

	if (rc < 0)
		msgf(err, errlen, "s3: %s: out of memory", ls->what);
	else if (rc > 0)
		msgf(err, errlen, "s3: %s: the listing repeats its %s '%.80s' "
		     "after page %zu: the server is misbehaving", ls->what,
		     ls->token, marker[0], s->n + 1);
	else if (s->n >= LIST_MAX_PAGES)
		msgf(err, errlen, "s3: %s: the listing goes on past %d pages: "
		     "the server is misbehaving", ls->what, LIST_MAX_PAGES);
	return rc == 0 && s->n < LIST_MAX_PAGES ? 0 : -1;
}

/* Every page of a listing, its records added to their lists; 0, or -1
 * with a message in err. */
static int list_pages(lua_State *L, struct s3_client *c,
                      const struct listing *ls, char *err, size_t errlen)
{
	char *marker[2] = {NULL, NULL};
	struct seen s = {0};
	int rc;

	do {
		rc = list_page(L, c, ls, marker, err, errlen);
		if (rc == 0 && marker[0] != NULL)
			rc = page_new(ls, marker, &s, err, errlen);
	} while (rc == 0 && marker[0] != NULL);
	markers_free(marker);
	free(s.v);
	return rc;
}

static const char *const list_opts[] = {
	"start_after", "delimiter", "max_keys", NULL,
};

/* lua: c:list(prefix [, { start_after=, delimiter=, max_keys= }]) ->
 *      { {key, size, last_modified, etag}... }, { common prefixes } |
 *      fail, message.  All pages, max_keys objects a page (default 1000). */
int s3_m_list(lua_State *L)
{
	struct s3_client *c = s3_check_client(L);
	const char *prefix = luaL_optstring(L, 2, "");
	const char *start_after = NULL, *delimiter = NULL;
	lua_Integer max_keys = 1000;
	char what[S3_WHAT_LEN], err[S3_ERR_LEN], mk[16];
	struct listing ls;

	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		s3_check_known(L, 3, list_opts);
		start_after = s3_opt_string(L, 3, "start_after", NULL);
		delimiter = s3_opt_string(L, 3, "delimiter", NULL);
		max_keys = s3_opt_int(L, 3, "max_keys", 1000, 1, 1000);
	}
	s3_what(c, "LIST", prefix, what, sizeof what);
	msgf(mk, sizeof mk, "%d", (int)max_keys);
	lua_newtable(L); /* objects */
	lua_newtable(L); /* common prefixes */
	ls = (struct listing){
		.op = OP_LIST, .what = what, .root = "ListBucketResult",
		.params = {{"list-type", "2"}, {"prefix", prefix},
		           {"max-keys", mk}, {"delimiter", delimiter}},
		.first = {"start-after", start_after},
		.next = {"NextContinuationToken", NULL},
		.marker = {"continuation-token", NULL},
		.lacking = "a continuation token",
		.token = "continuation token",
		.out = {{"Contents", object_fields, NFIELDS(object_fields),
		         lua_gettop(L) - 1},
		        {"CommonPrefixes", prefix_fields, NFIELDS(prefix_fields),
		         lua_gettop(L)}},
	};
	if (list_pages(L, c, &ls, err, sizeof err) != 0)
		return vk_pushfail(L, "%s", err);
	return 2;
}

/* lua: c:uploads([prefix]) -> { {key, upload_id, initiated}... } |
 *      fail, message.  All pages. */
int s3_m_uploads(lua_State *L)
{
	struct s3_client *c = s3_check_client(L);
	const char *prefix = luaL_optstring(L, 2, "");
	char what[S3_WHAT_LEN], err[S3_ERR_LEN];
	struct listing ls;

	s3_what(c, "LIST UPLOADS", prefix, what, sizeof what);
	lua_newtable(L);
	ls = (struct listing){
		.op = OP_UPLOADS, .what = what,
		.root = "ListMultipartUploadsResult",
		.params = {{"uploads", ""}, {"prefix", prefix}},
		.next = {"NextKeyMarker", "NextUploadIdMarker"},
		.marker = {"key-marker", "upload-id-marker"},
		.lacking = "a next marker",
		.token = "marker",
		.out = {{"Upload", upload_fields, NFIELDS(upload_fields),
		         lua_gettop(L)}},
	};
	if (list_pages(L, c, &ls, err, sizeof err) != 0)
		return vk_pushfail(L, "%s", err);
	return 1;
}

/* ---- delete ---- */

/* The keys at idx, each checked (a mistake raises); how many. */
static lua_Integer check_keys(lua_State *L, int idx)
{
	lua_Integer n, i;

	luaL_checktype(L, idx, LUA_TTABLE);
	n = (lua_Integer)lua_rawlen(L, idx);
	for (i = 1; i <= n; i++) {
		if (lua_rawgeti(L, idx, i) != LUA_TSTRING)
			luaL_error(L, "s3: delete: key %d is not a string", (int)i);
		s3_check_key(L, -1);
		lua_pop(L, 1);
	}
	return n;
}

/* Delete keys[first..last] (the list at 2) in one request, their errors
 * added to the list at errors; 0 with how many were deleted in *deleted,
 * or -1 with a message in err. */
static int delete_batch(lua_State *L, struct s3_client *c, lua_Integer first,
                        lua_Integer last, int errors, lua_Integer *deleted,
                        char *err, size_t errlen)
{
	struct http_request rq = {0};
	struct vk_buf body = {0};
	struct xml_doc d;
	char what[S3_WHAT_LEN];
	lua_Integer i;
	int rc;

	msgf(what, sizeof what, "DELETE s3://%s (%d keys)", c->bucket,
	     (int)(last - first + 1));
	vk_buf_adds(&body, "<Delete><Quiet>true</Quiet>");
	for (i = first; i <= last; i++) {
		lua_rawgeti(L, 2, i);
		vk_buf_adds(&body, "<Object><Key>");
		vk_buf_add_xml(&body, lua_tostring(L, -1));
		vk_buf_adds(&body, "</Key></Object>");
		lua_pop(L, 1);
	}
	if (vk_buf_adds(&body, "</Delete>") != 0) { /* or any add before */
		vk_buf_free(&body);
		msgf(err, errlen, "s3: %s: out of memory", what);
		return -1;
	}
	rq.method = "POST";
	rq.query = "delete=";
	rq.body = body.p;
	rq.body_len = body.len;
	rq.md5 = 1;
	http_header(&rq, "Content-Type", "application/xml");
	rq.what = what;
	rc = s3_send_xml(c, OP_DELETE, NULL, &rq, "DeleteResult", &d, err,
	                 errlen);
	vk_buf_free(&body);
	if (rc != 0)
		return -1;
	*deleted = last - first + 1 -
	           push_records(L, errors, &d, "/DeleteResult/Error",
	                        delete_error_fields, NFIELDS(delete_error_fields));
	xml_free(&d);
	return 0;
}

/* lua: c:delete(keys) -> { deleted = n, errors = { {key, code, message}...
 *      } } | fail, message.  Batches of 1,000 keys. */
int s3_m_delete(lua_State *L)
{
	struct s3_client *c = s3_check_client(L);
	lua_Integer n = check_keys(L, 2), first, deleted = 0, batch;
	char err[S3_ERR_LEN];

	lua_createtable(L, 0, 2);
	lua_newtable(L); /* errors */
	for (first = 1; first <= n; first += DELETE_BATCH) {
		lua_Integer last = first + DELETE_BATCH - 1;
		if (last > n)
			last = n;
		if (delete_batch(L, c, first, last, lua_gettop(L), &batch, err,
		                 sizeof err) != 0)
			return vk_pushfail(L, "%s", err);
		deleted += batch;
	}
	lua_setfield(L, -2, "errors");
	lua_pushinteger(L, deleted);
	lua_setfield(L, -2, "deleted");
	return 1;
}

/* ---- abort, presign ---- */

/* lua: c:abort(key, upload_id) -> true | fail, message */
int s3_m_abort(lua_State *L)
{
	struct s3_client *c = s3_check_client(L);
	const char *key = s3_check_key(L, 2);
	const char *id = luaL_checkstring(L, 3);
	struct http_request rq = {0};
	struct http_response rs;
	struct vk_buf q = {0};
	char what[S3_WHAT_LEN], err[S3_ERR_LEN];
	int rc;

	s3_what(c, "ABORT", key, what, sizeof what);
	if (s3_add_param(&q, "uploadId", id) != 0) {
		vk_buf_free(&q);
		return vk_pushfail(L, "s3: %s: out of memory", what);
	}
	rq.method = "DELETE";
	rq.query = q.p;
	rq.what = what;
	rc = s3_send(c, OP_ABORT, key, &rq, &rs, err, sizeof err);
	vk_buf_free(&q);
	http_response_free(&rs);
	if (rc != 0)
		return vk_pushfail(L, "%s", err);
	lua_pushboolean(L, 1);
	return 1;
}

/* lua: c:presign(method, key, expires_seconds [, time]) -> url
 *      time: "YYYYMMDDTHHMMSSZ", default now */
int s3_m_presign(lua_State *L)
{
	struct s3_client *c = s3_check_client(L);
	const char *method = luaL_checkstring(L, 2);
	const char *key = s3_check_key(L, 3);
	lua_Integer expires = luaL_checkinteger(L, 4);
	const char *t = luaL_optstring(L, 5, NULL);
	struct s3_presign_input in;
	struct vk_buf path = {0}, host = {0}, q = {0};
	char now[17];
	int rc;

	luaL_argcheck(L, expires >= 1 && expires <= 604800, 4,
	              "from 1 to 604800 seconds");
	if (t == NULL) {
		http_amz_time(now);
		t = now;
	}
	memset(&in, 0, sizeof in);
	in.method = method;
	in.region = c->http.region;
	in.access_key = c->http.access_key;
	in.secret_key = c->http.secret_key;
	in.session_token = c->http.session_token;
	in.time = t;
	in.expires = (long)expires;
	if (s3_path(c, key, &path) != 0 || s3_host(c, &host) != 0) {
		vk_buf_free(&path);
		vk_buf_free(&host);
		return luaL_error(L, "s3: out of memory");
	}
	in.path = path.p;
	in.host = host.p;
	rc = s3_presign(&in, &q);
	if (rc == 0)
		lua_pushfstring(L, "%s://%s%s?%s", c->http.scheme, host.p, path.p,
		                q.p);
	vk_buf_free(&path);
	vk_buf_free(&host);
	vk_buf_free(&q);
	if (rc != 0)
		return luaL_argerror(L, 5, "a time like 20130524T000000Z");
	return 1;
}
