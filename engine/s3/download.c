/*
 * c:get(key): an object as a stream source.  Its transfer is an exchange
 * of s3/http.c driven from the stream's read, and paused while the
 * buffer is full, so memory stays bounded.  A transfer that fails
 * mid-body is made again by http.c's retry loop, as a Range request from
 * the bytes already received, provided the object (its ETag) is the same.
 *
 * It owns the stream's buffer, the path and host of its request, and a
 * connection of its own (the client's may be busy with other requests
 * while the stream is read).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include "s3/s3.h"
#include "stream.h"

#define GET_BUFFER (256 * 1024) /* what a GET stream holds at most */

struct get_source {
	struct vk_stream s;
	struct s3_client *c;
	struct http_conn conn;
	struct http_call call;
	struct vk_buf path, host;
	char what[S3_WHAT_LEN];
	char range[48];     /* "bytes=N-" */
	char *buf;
	size_t start, end;  /* the bytes held: buf[start, end) */
	uint64_t received;  /* bytes of the object taken from the wire */
	long long total;    /* the object's size, -1 unknown */
	char etag[128];     /* the object's, from the first answer */
	char bad[300];      /* the answer was not the object it should be */
};

/* hook: before each attempt, a Range from where we are */
static int get_attempt(struct http_call *k, char *err, size_t errlen)
{
	struct get_source *g = k->ctx;

	if (!g->c->open) {
		msgf(err, errlen, "s3: %s: the client was closed", g->what);
		return -1;
	}
	k->rq.nheaders = 0;
	if (g->received > 0) {
		msgf(g->range, sizeof g->range, "bytes=%llu-",
		     (unsigned long long)g->received);
		http_header(&k->rq, "Range", g->range);
		if (g->etag[0])
			http_header(&k->rq, "If-Match", g->etag);
	}
	return 0;
}

/* hook: the answer is the object from where we are (or g->bad says why
 * not); an error answer's body is kept by http.c */
static void get_answer(struct http_call *k)
{
	struct get_source *g = k->ctx;

	if (k->status < 200 || k->status >= 300)
		return;
	if (g->received == 0 && k->status == 200) {
		if (g->etag[0] && strcmp(g->etag, k->rs.etag) != 0) {
			msgf(g->bad, sizeof g->bad, "the object changed while "
			     "it was read (ETag %s, then %s)", g->etag,
			     k->rs.etag);
			return;
		}
		memcpy(g->etag, k->rs.etag, sizeof g->etag);
		g->total = k->rs.length;
		return;
	}
	if (k->status != 206)
		msgf(g->bad, sizeof g->bad, "the server ignored the Range of "
		     "a resumed read (HTTP %ld)", k->status);
	else if (strcmp(g->etag, k->rs.etag) != 0)
		msgf(g->bad, sizeof g->bad, "the object changed while it "
		     "was read (ETag %s, then %s)", g->etag, k->rs.etag);
}

/* hook: the object's bytes into the buffer, pausing when it is full */
static size_t get_data(struct http_call *k, const char *p, size_t len)
{
	struct get_source *g = k->ctx;

	if (g->bad[0])
		return 0;
	if (GET_BUFFER - g->end < len && g->start > 0) {
		memmove(g->buf, g->buf + g->start, g->end - g->start);
		g->end -= g->start;
		g->start = 0;
	}
	if (GET_BUFFER - g->end < len)
		return CURL_WRITEFUNC_PAUSE;
	memcpy(g->buf + g->end, p, len);
	g->end += len;
	g->received += len;
	return len;
}

/* hook: an attempt ended; 0 when the object was all received */
static int get_judge(struct http_call *k, char *err, size_t errlen,
                     int *transient)
{
	struct get_source *g = k->ctx;

	*transient = 0;
	if (g->bad[0]) {
		msgf(err, errlen, "s3: %s: %s", g->what, g->bad);
		return -1;
	}
	if (k->result == CURLE_OK && k->status == 412 && g->received > 0) {
		msgf(err, errlen, "s3: %s: the object changed while it was "
		     "read", g->what);
		return -1;
	}
	if (http_judge(k, err, errlen, transient) != 0)
		return -1;
	if (g->total >= 0 && g->received < (uint64_t)g->total) {
		msgf(err, errlen, "s3: %s: the answer ended after %llu of "
		     "%lld bytes", g->what, (unsigned long long)g->received,
		     g->total);
		*transient = http_transient(CURLE_PARTIAL_FILE, 0, 0, NULL);
		return -1;
	}
	return 0;
}

static const struct http_hooks get_hooks = {
	.attempt = get_attempt,
	.answer = get_answer,
	.data = get_data,
	.judge = get_judge,
};

/* until: bytes to hand on */
static int has_data(struct http_call *k)
{
	struct get_source *g = k->ctx;

	return g->end > g->start;
}

/* until: the headers of a 2xx answer */
static int answered(struct http_call *k)
{
	return k->headers_done && k->status >= 200 && k->status < 300;
}

/* Hand on up to n bytes of the buffer, resuming the transfer when there
 * is room again. */
static size_t take(struct get_source *g, void *buf, size_t n)
{
	size_t k = g->end - g->start;

	if (k > n)
		k = n;
	memcpy(buf, g->buf + g->start, k);
	g->start += k;
	if (g->start == g->end)
		g->start = g->end = 0;
	if (g->call.paused &&
	    GET_BUFFER - (g->end - g->start) >= 4 * CURL_MAX_WRITE_SIZE)
		http_resume(&g->call);
	return k;
}

static ssize_t get_read(struct vk_stream *s, void *buf, size_t n)
{
	struct get_source *g = (struct get_source *)s;
	char err[S3_ERR_LEN];

	if (g->end == g->start) {
		if (vk_interrupted) {
			http_stop(&g->call);
			return vk_fail(s, "s3: %s: interrupted", g->what);
		}
		if (http_drive(&g->call, has_data, err, sizeof err) < 0) {
			http_stop(&g->call);
			return vk_fail(s, "%s", err);
		}
		if (g->end == g->start) {
			http_stop(&g->call);
			return 0; /* all of it */
		}
	}
	return (ssize_t)take(g, buf, n);
}

static void get_release(struct vk_stream *s)
{
	struct get_source *g = (struct get_source *)s;

	http_call_free(&g->call);
	http_conn_close(&g->conn);
	vk_buf_free(&g->path);
	vk_buf_free(&g->host);
	free(g->buf);
	g->buf = NULL;
}

static void get_info(struct vk_stream *s, lua_State *L)
{
	struct get_source *g = (struct get_source *)s;

	if (g->total >= 0) {
		lua_pushinteger(L, (lua_Integer)g->total);
		lua_setfield(L, -2, "size");
	}
	if (g->etag[0]) {
		lua_pushstring(L, g->etag);
		lua_setfield(L, -2, "etag");
	}
	lua_pushinteger(L, g->call.attempts);
	lua_setfield(L, -2, "attempts");
}

static const struct vk_stream_ops get_ops = {
	.name = "s3",
	.read = get_read,
	.release = get_release,
	.info = get_info,
};

/* The request, its connection and buffer; 0, or -1 with a message. */
static int get_init(struct get_source *g, const char *key, char *err,
                    size_t errlen)
{
	struct s3_client *c = g->c;
	struct http_request rq = {0};

	g->buf = malloc(GET_BUFFER);
	if (g->buf == NULL || s3_path(c, key, &g->path) != 0 ||
	    s3_host(c, &g->host) != 0 || http_conn_open(&g->conn) != 0) {
		msgf(err, errlen, "s3: %s: out of memory", g->what);
		return -1;
	}
	rq.method = "GET";
	rq.host = g->host.p;
	rq.path = g->path.p;
	rq.what = g->what;
	rq.tally = &c->by_op[OP_GET];
	return http_call_init(&g->call, &c->http, &g->conn, &rq, &get_hooks, g,
	                      err, errlen);
}

/* lua: c:get(key) -> stream | fail, message, http_status
 *      The answer's status is known before this returns (a missing object
 *      is nil, "...: not found", 404); errors later, such as a connection
 *      lost for good, end the stream with a failure. */
int s3_m_get(lua_State *L)
{
	struct s3_client *c = s3_check_client(L);
	const char *key = s3_check_key(L, 2);
	struct get_source *g;
	char err[S3_ERR_LEN];

	g = (struct get_source *)vk_stream_push(L, sizeof *g, &get_ops);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1); /* the client outlives its streams */
	g->c = c;
	g->total = -1;
	s3_what(c, "GET", key, g->what, sizeof g->what);
	vk_open(&g->s);
	if (get_init(g, key, err, sizeof err) != 0 ||
	    http_start(&g->call, err, sizeof err) != 0) {
		vk_close(&g->s);
		return vk_pushfail(L, "%s", err);
	}
	/* wait for the answer's headers, retrying what is transient */
	if (http_drive(&g->call, answered, err, sizeof err) < 0) {
		long status = g->call.status;
		vk_close(&g->s);
		vk_pushfail(L, "%s", err);
		if (status == 0)
			return 2;
		lua_pushinteger(L, status);
		return 3;
	}
	return 1;
}
