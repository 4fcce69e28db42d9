/*
 * c:put(key, stream) and c:put_string(key, data): writing an object.
 * c:put is a sink: it drains the stream (vk_pump) into a part buffer.  A
 * stream that fits in the first part is one PUT; a longer one is a
 * multipart upload, parts of at least 5 MiB growing so that 10,000 parts
 * reach 5 TiB, each with its Content-MD5 and its SHA-256 signed.  If the
 * stream fails, a part cannot be stored, or the run is interrupted, the
 * upload is aborted: nothing is left behind.
 *
 * A write whose answer was lost may meet itself when it is sent again:
 * its own If-None-Match fails (412), or its CompleteMultipartUpload finds
 * the upload completed (404 NoSuchUpload).  Then the storage is asked what
 * it holds (resolve): a HEAD of the key, whose size and ETag are compared
 * with the write's (the MD5 of the body; of a multipart upload, the MD5
 * of its parts' MD5s, "-" and their count).  The same, the write
 * succeeded; not, it failed.  Nothing is deleted on the way.
 *
 * It owns the part buffer, the upload id and the ETags of the parts
 * stored, for the length of one call.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "s3/s3.h"
#include "stream.h"

#define MIB (1024 * 1024)
#define MIN_PART ((size_t)5 * MIB)
#define MAX_PART ((size_t)5 * 1024 * MIB)
#define MAX_PARTS 10000
#define PARTS_PER_STEP 1000 /* the part size doubles after so many */

struct upload {
	struct s3_client *c;
	const char *key;
	const char *content_type;
	int if_none_match;
	char *buf;
	size_t len, cap, part_size;
	uint64_t total;
	char *upload_id;
	char (*etags)[128];
	int nparts;
	int failed_here; /* u->err is the whole message */
	char etag[128];
	char what[S3_WHAT_LEN];
	char err[S3_ERR_LEN];
};

static size_t initial_part_size(lua_Integer hint)
{
	size_t part = MIN_PART;

	/* a hinted size fits in half the parts, leaving room to grow */
	if (hint > 0) {
		uint64_t want = ((uint64_t)hint + MAX_PARTS / 2 - 1) /
		                (MAX_PARTS / 2);
		want = (want + MIB - 1) / MIB * MIB;
		if (want > part)
			part = want > MAX_PART ? MAX_PART : (size_t)want;
	}
	return part;
}

/* The headers of a request that makes the object. */
static void object_headers(struct upload *u, struct http_request *rq)
{
	http_header(rq, "Content-Type", u->content_type);
	http_header(rq, "If-None-Match", u->if_none_match ? "*" : NULL);
}

static int initiate(struct upload *u)
{
	struct http_request rq = {0};
	struct xml_doc d;
	const char *id;
	char what[S3_WHAT_LEN];

	msgf(what, sizeof what, "%s (starting a multipart upload)", u->what);
	rq.method = "POST";
	rq.query = "uploads=";
	rq.body = "";
	http_header(&rq, "Content-Type", u->content_type);
	rq.what = what;
	if (s3_send_xml(u->c, OP_INIT, u->key, &rq,
	                "InitiateMultipartUploadResult", &d, u->err,
	                sizeof u->err) != 0)
		return -1;
	id = xml_get(&d, "/InitiateMultipartUploadResult/UploadId");
	if (id && *id)
		u->upload_id = strdup(id);
	else
		msgf(u->err, sizeof u->err, "s3: %s: no UploadId in the "
		     "answer", what);
	xml_free(&d);
	return u->upload_id ? 0 : -1;
}

/* "uploadId=ID", after the rest of the query q; 0 or -1 (out of memory). */
static int upload_id_param(struct upload *u, struct vk_buf *q)
{
	return s3_add_param(q, "uploadId", u->upload_id);
}

/* Room for the ETag of one more part; 0, or -1 when memory ran out. */
static int etag_room(struct upload *u, int part)
{
	void *e;

	if (part % 64 != 1)
		return 0;
	e = realloc(u->etags, (size_t)(part + 63) * sizeof *u->etags);
	if (e == NULL)
		return -1;
	u->etags = e;
	return 0;
}

/* Store the buffer as the next part. */
static int flush_part(struct upload *u)
{
	struct http_request rq = {0};
	struct http_response rs;
	struct vk_buf q = {0};
	char what[S3_WHAT_LEN];
	int part = u->nparts + 1, rc;

	if (part > MAX_PARTS) {
		msgf(u->err, sizeof u->err, "s3: %s: the stream is larger "
		     "than %d parts", u->what, MAX_PARTS);
		return -1;
	}
	if (u->upload_id == NULL && initiate(u) != 0)
		return -1;
	if (etag_room(u, part) != 0 ||
	    vk_buf_printf(&q, "partNumber=%d", part) != 0 ||
	    upload_id_param(u, &q) != 0) {
		vk_buf_free(&q);
		msgf(u->err, sizeof u->err, "s3: out of memory");
		return -1;
	}
	msgf(what, sizeof what, "%s (part %d)", u->what, part);
	rq.method = "PUT";
	rq.query = q.p;
	rq.body = u->buf;
	rq.body_len = u->len;
	rq.md5 = 1;
	rq.what = what;
	rc = s3_send(u->c, OP_PART, u->key, &rq, &rs, u->err, sizeof u->err);
	vk_buf_free(&q);
	http_response_free(&rs);
	if (rc != 0)
		return -1;
	if (rs.etag[0] == '\0') {
		msgf(u->err, sizeof u->err, "s3: %s: no ETag in the answer",
		     what);
		return -1;
	}
	memcpy(u->etags[part - 1], rs.etag, sizeof rs.etag);
	u->nparts = part;
	u->len = 0;
	if (part % PARTS_PER_STEP == 0 && u->part_size < MAX_PART) {
		u->part_size *= 2;
		if (u->part_size > MAX_PART)
			u->part_size = MAX_PART;
	}
	return 0;
}

/* Room for n more bytes in the part buffer, up to a part; 0 or -1. */
static int part_room(struct upload *u, size_t n)
{
	size_t cap = u->cap ? u->cap : 256 * 1024;
	char *b;

	if (u->cap >= u->part_size || u->len + n <= u->cap)
		return 0;
	while (cap < u->len + n && cap < u->part_size)
		cap *= 2;
	if (cap > u->part_size)
		cap = u->part_size;
	b = realloc(u->buf, cap);
	if (b == NULL)
		return -1;
	u->buf = b;
	u->cap = cap;
	return 0;
}

/* vk_write_fn: keep bytes in the part buffer, storing full parts. */
static int upload_write(void *ctx, const void *data, size_t n, char *errbuf,
                        size_t errlen)
{
	struct upload *u = ctx;
	const char *p = data;

	while (n > 0) {
		size_t take;
		if (u->len == u->part_size && flush_part(u) != 0) {
			u->failed_here = 1;
			msgf(errbuf, errlen, "%s", u->err);
			return -1;
		}
		if (part_room(u, n) != 0) {
			msgf(errbuf, errlen, "s3: out of memory");
			return -1;
		}
		take = u->part_size - u->len;
		if (take > u->cap - u->len)
			take = u->cap - u->len;
		if (take > n)
			take = n;
		memcpy(u->buf + u->len, p, take);
		u->len += take;
		u->total += take;
		p += take;
		n -= take;
	}
	return 0;
}

/* ---- a write whose answer was lost ---- */

/* A write that went out more than once (its answer lost) and met itself,
 * maybe: its If-None-Match failed, or its Complete (when complete) found
 * the upload gone. */
static int met_itself(const struct upload *u, const struct http_response *rs,
                      int complete)
{
	if (rs->sent < 2)
		return 0;
	if (rs->status == 412)
		return u->if_none_match;
	return complete && rs->status == 404 &&
	       strcmp(rs->code, "NoSuchUpload") == 0;
}

/* Whether the write made the object at the key, asked of the storage: 0
 * when the object there has this write's size and ETag; else -1 with the
 * message in u->err (a failed HEAD's added to the write's own). */
static int resolve(struct upload *u, uint64_t size, const char *etag)
{
	struct http_request rq = {0};
	struct http_response rs;
	char what[S3_WHAT_LEN], err[S3_ERR_LEN];
	size_t l = strlen(u->err);
	int rc;

	s3_what(u->c, "HEAD", u->key, what, sizeof what);
	rq.method = "HEAD";
	rq.what = what;
	rc = s3_send(u->c, OP_HEAD, u->key, &rq, &rs, err, sizeof err);
	if (rc != 0) {
		msgf(u->err + l, sizeof u->err - l, "; and then %s", err);
	} else if (rs.length >= 0 && (uint64_t)rs.length == size &&
	           etag[0] != '\0' && strcasecmp(rs.etag, etag) == 0) {
		memcpy(u->etag, rs.etag, sizeof u->etag);
	} else {
		msgf(u->err, sizeof u->err, "s3: %s: an object already exists "
		     "at s3://%s/%s and is not the one written (%lld bytes, "
		     "ETag %s; written: %llu bytes, ETag %s)", u->what,
		     u->c->bucket, u->key, rs.length, rs.etag,
		     (unsigned long long)size, etag[0] ? etag : "unknown");
		rc = -1;
	}
	http_response_free(&rs);
	return rc;
}

static int hex_digit(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* The 16 bytes of an MD5 from its hex (a part's ETag); 0, or -1 when it
 * is not one (SSE-KMS makes other ETags). */
static int md5_of_etag(const char *etag, unsigned char md[16])
{
	int i, hi, lo;

	if (strlen(etag) != 32)
		return -1;
	for (i = 0; i < 16; i++) {
		hi = hex_digit(etag[2 * i]);
		lo = hex_digit(etag[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		md[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* The ETag S3 gives the object the parts make: the MD5 of their MD5s,
 * "-" and their count; "" when it cannot be told. */
static void multipart_etag(const struct upload *u, char *out, size_t len)
{
	unsigned char *md = malloc((size_t)u->nparts * 16 + 1);
	char hex[33];
	int i;

	out[0] = '\0';
	if (md == NULL)
		return;
	for (i = 0; i < u->nparts; i++)
		if (md5_of_etag(u->etags[i], md + 16 * i) != 0) {
			free(md);
			return;
		}
	s3_md5_hex(md, (size_t)u->nparts * 16, hex);
	msgf(out, len, "%s-%d", hex, u->nparts);
	free(md);
}

/* ---- finishing ---- */

/* The body of CompleteMultipartUpload: every part and its ETag. */
static int complete_body(struct upload *u, struct vk_buf *body)
{
	int i;

	if (vk_buf_adds(body, "<CompleteMultipartUpload>") != 0)
		return -1;
	for (i = 0; i < u->nparts; i++)
		if (vk_buf_printf(body, "<Part><PartNumber>%d</PartNumber>"
		                  "<ETag>\"", i + 1) != 0 ||
		    vk_buf_add_xml(body, u->etags[i]) != 0 ||
		    vk_buf_adds(body, "\"</ETag></Part>") != 0)
			return -1;
	return vk_buf_adds(body, "</CompleteMultipartUpload>");
}

/* The ETag in the answer of a Complete, into u->etag. */
static int completed(struct upload *u, const struct http_response *rs,
                     const char *what)
{
	struct xml_doc d;
	char path[100];
	const char *etag;

	if (xml_parse(rs->body.p, rs->body.len, &d) != 0) {
		msgf(u->err, sizeof u->err, "s3: %s: %s", what, d.err);
		return -1;
	}
	/* any root: moto says CompleteMultipartUploadResponse */
	msgf(path, sizeof path, "/%s/ETag", d.root);
	etag = xml_get(&d, path);
	if (etag)
		http_etag(u->etag, sizeof u->etag, etag, strlen(etag));
	xml_free(&d);
	return 0;
}

static int complete(struct upload *u)
{
	struct http_request rq = {0};
	struct http_response rs;
	struct vk_buf body = {0}, q = {0};
	char what[S3_WHAT_LEN], etag[128];
	int rc;

	if (complete_body(u, &body) != 0 || upload_id_param(u, &q) != 0) {
		vk_buf_free(&body);
		vk_buf_free(&q);
		msgf(u->err, sizeof u->err, "s3: out of memory");
		return -1;
	}
	msgf(what, sizeof what, "%s (completing the multipart upload)",
	     u->what);
	rq.method = "POST";
	rq.query = q.p;
	rq.body = body.p;
	rq.body_len = body.len;
	http_header(&rq, "Content-Type", "application/xml");
	http_header(&rq, "If-None-Match", u->if_none_match ? "*" : NULL);
	rq.error_in_200 = 1;
	rq.what = what;
	rc = s3_send(u->c, OP_COMPLETE, u->key, &rq, &rs, u->err,
	             sizeof u->err);
	if (rc == 0) {
		rc = completed(u, &rs, what);
	} else if (met_itself(u, &rs, 1)) {
		multipart_etag(u, etag, sizeof etag);
		rc = resolve(u, u->total, etag);
	}
	http_response_free(&rs);
	vk_buf_free(&body);
	vk_buf_free(&q);
	return rc;
}

/* Abort the multipart upload, if one was started; the error message of
 * the failure that led here is kept, the abort's own added to it. */
static void abort_upload(struct upload *u)
{
	struct http_request rq = {0};
	struct http_response rs;
	struct vk_buf q = {0};
	char what[S3_WHAT_LEN], err[S3_ERR_LEN];

	if (u->upload_id == NULL)
		return;
	if (upload_id_param(u, &q) != 0) {
		vk_buf_free(&q);
		return;
	}
	msgf(what, sizeof what, "%s (aborting the multipart upload)",
	     u->what);
	rq.method = "DELETE";
	rq.query = q.p;
	rq.cleanup = 1;
	rq.what = what;
	if (s3_send(u->c, OP_ABORT, u->key, &rq, &rs, err, sizeof err) != 0) {
		size_t l = strlen(u->err);
		msgf(u->err + l, sizeof u->err - l, "; and then %s (upload "
		     "id %s is left: c:uploads() lists it)", err, u->upload_id);
	}
	http_response_free(&rs);
	vk_buf_free(&q);
}

static int single_put(struct upload *u, const char *data, size_t len)
{
	struct http_request rq = {0};
	struct http_response rs;
	char md5[33];
	int rc;

	rq.method = "PUT";
	rq.body = data;
	rq.body_len = len;
	rq.md5 = 1;
	object_headers(u, &rq);
	rq.what = u->what;
	rc = s3_send(u->c, OP_PUT, u->key, &rq, &rs, u->err, sizeof u->err);
	if (rc == 0) {
		memcpy(u->etag, rs.etag, sizeof u->etag);
	} else if (met_itself(u, &rs, 0)) {
		s3_md5_hex(data, len, md5);
		rc = resolve(u, len, md5);
	}
	http_response_free(&rs);
	return rc;
}

/* The stream ended cleanly: store what is left and finish. */
static int upload_finish(struct upload *u)
{
	if (u->upload_id == NULL && u->nparts == 0)
		return single_put(u, u->buf, u->len);
	if (u->len > 0 && flush_part(u) != 0)
		return -1;
	return complete(u);
}

static void upload_free(struct upload *u)
{
	free(u->buf);
	free(u->etags);
	free(u->upload_id);
	u->buf = NULL;
	u->etags = NULL;
	u->upload_id = NULL;
}

/* The end of a put: the result, or the failure after the upload was
 * aborted. */
static int upload_end(lua_State *L, struct upload *u, int rc)
{
	if (rc != 0) {
		abort_upload(u);
		upload_free(u);
		return vk_pushfail(L, "%s", u->err);
	}
	upload_free(u);
	lua_createtable(L, 0, 3);
	lua_pushinteger(L, (lua_Integer)u->total);
	lua_setfield(L, -2, "size");
	lua_pushstring(L, u->etag);
	lua_setfield(L, -2, "etag");
	lua_pushinteger(L, u->nparts ? u->nparts : 1);
	lua_setfield(L, -2, "parts");
	return 1;
}

static const char *const put_opts[] = {
	"size_hint", "progress", "if_none_match", "content_type", NULL,
};

/* Set up u for c and key, with the options table at idx; leaves the
 * progress function (or nil) on the stack and returns its index. */
static int upload_init(lua_State *L, struct upload *u, struct s3_client *c,
                       const char *key, int idx)
{
	lua_Integer hint = 0;

	memset(u, 0, sizeof *u);
	u->c = c;
	u->key = key;
	s3_what(c, "PUT", key, u->what, sizeof u->what);
	if (!lua_isnoneornil(L, idx)) {
		luaL_checktype(L, idx, LUA_TTABLE);
		s3_check_known(L, idx, put_opts);
		hint = s3_opt_int(L, idx, "size_hint", 0, 0, LUA_MAXINTEGER);
		u->content_type = s3_opt_string(L, idx, "content_type", NULL);
		lua_getfield(L, idx, "if_none_match");
		u->if_none_match = lua_toboolean(L, -1);
		lua_pop(L, 1);
		lua_getfield(L, idx, "progress");
		if (!lua_isnil(L, -1) && !lua_isfunction(L, -1))
			luaL_error(L, "s3: option 'progress' must be a function");
	} else {
		lua_pushnil(L);
	}
	u->part_size = initial_part_size(hint);
	return lua_gettop(L);
}

/* lua: c:put(key, stream [, opts]) -> { size, etag, parts } | fail, msg
 *      opts: size_hint (bytes expected), progress (function(bytes)),
 *      if_none_match (never overwrite), content_type */
int s3_m_put(lua_State *L)
{
	struct s3_client *c = s3_check_client(L);
	const char *key = s3_check_key(L, 2);
	struct vk_stream *s = vk_stream_check(L, 3);
	struct upload u;
	int progress, rc;
	char err[S3_ERR_LEN];

	progress = upload_init(L, &u, c, key, 4);
	rc = vk_pump(L, s, upload_write, &u, progress, err, sizeof err);
	if (rc == 0)
		rc = upload_finish(&u);
	else if (!u.failed_here)
		msgf(u.err, sizeof u.err, "s3: %s: %s", u.what, err);
	if (rc != 0 && vk_interrupted && strstr(u.err, "interrupted") == NULL) {
		size_t l = strlen(u.err);
		msgf(u.err + l, sizeof u.err - l, " (interrupted)");
	}
	return upload_end(L, &u, rc);
}

/* lua: c:put_string(key, data [, opts]) -> as c:put */
int s3_m_put_string(lua_State *L)
{
	struct s3_client *c = s3_check_client(L);
	const char *key = s3_check_key(L, 2);
	size_t len, off;
	const char *data = luaL_checklstring(L, 3, &len);
	struct upload u;
	int progress, rc = 0;
	char err[S3_ERR_LEN];

	progress = upload_init(L, &u, c, key, 4);
	if (len <= u.part_size) {
		rc = single_put(&u, data, len);
		u.total = len;
	} else {
		for (off = 0; rc == 0 && off < len; off += VK_CHUNK) {
			size_t n = len - off < VK_CHUNK ? len - off : VK_CHUNK;
			rc = upload_write(&u, data + off, n, err, sizeof err);
		}
		if (rc == 0)
			rc = upload_finish(&u);
	}
	if (rc == 0 && lua_isfunction(L, progress)) {
		lua_pushvalue(L, progress);
		lua_pushinteger(L, (lua_Integer)len);
		if (lua_pcall(L, 1, 0, 0) != LUA_OK)
			lua_pop(L, 1); /* stored already: the report is only news */
	}
	return upload_end(L, &u, rc);
}
