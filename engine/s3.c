/*
 * vakap.s3: objects in S3 (or an S3-compatible service), with libcurl,
 * signed with AWS Signature Version 4 (s3/sign.c), answers read with
 * expat.
 *
 * A client holds the bucket, the credentials and one curl multi handle
 * (its connection cache).  Every request is signed afresh for each attempt
 * and retried with exponential backoff and full jitter when the failure
 * is transient (HTTP 500/502/503/504, SlowDown, RequestTimeout,
 * InternalError, a connection refused, reset, cut short or stalled).
 *
 * Writing a stream (c:put) is a sink: it drains the stream (vk_pump) into
 * a part buffer.  A stream that fits in the first part is one PUT; a
 * longer one is a multipart upload, parts of at least 5 MiB growing so
 * that 10,000 parts reach 5 TiB, each with its Content-MD5 and its
 * SHA-256 signed.  If the stream fails, a part cannot be stored, or the
 * run is interrupted, the upload is aborted: nothing is left behind.
 *
 * Reading (c:get) is a source: the curl transfer is driven from the
 * stream's read and paused while its buffer is full, so memory stays
 * bounded; a connection lost mid-body resumes with a Range request from
 * the bytes already received, provided the object (its ETag) is the same.
 *
 * Secrets (the secret key, the session token, signatures) never appear in
 * a message; they are wiped when the client is closed.
 */
#define _GNU_SOURCE /* strcasecmp, strncasecmp, timegm, memmem */

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <lauxlib.h>

#include "engine.h"
#include "s3/sign.h"
#include "s3/xml.h"
#include "stream.h"

#define CLIENT_MT "vakap.s3.client"
#define MIB (1024 * 1024)
#define MIN_PART ((size_t)5 * MIB)
#define MAX_PART ((size_t)5 * 1024 * MIB)
#define MAX_PARTS 10000
#define PARTS_PER_STEP 1000       /* the part size doubles after so many */
#define DELETE_BATCH 1000
#define MAX_RESPONSE (16 * MIB)   /* an answer larger than this is refused */
#define GET_BUFFER (256 * 1024)   /* what a GET stream holds at most */
#define BACKOFF_CAP_MS 20000
#define WHAT_LEN 1200             /* "PUT s3://bucket/key (part 12)" */
#define ERR_LEN 2000

enum op {
	OP_PUT, OP_PART, OP_INIT, OP_COMPLETE, OP_ABORT, OP_GET, OP_HEAD,
	OP_LIST, OP_DELETE, OP_UPLOADS, OP_N
};
static const char *const op_names[OP_N] = {
	"PUT", "PART", "INIT", "COMPLETE", "ABORT", "GET", "HEAD", "LIST",
	"DELETE", "UPLOADS",
};

struct client {
	int open;
	CURLM *multi;
	CURL *easy;
	char *bucket, *region, *scheme, *hostport;
	char *access_key, *secret_key, *session_token;
	int path_style;
	int retries;
	long retry_base_ms, connect_timeout, stall_timeout;
	uint64_t rng;
	lua_Integer requests, retried, by_op[OP_N];
};

/* ---- small helpers ---- */

/* snprintf for messages: what does not fit is cut, and that is fine. */
static void msgf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void msgf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void free_secret(char **p)
{
	if (*p) {
		s3_wipe(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

static void amz_time(char out[17])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

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

/* An ETag without its quotes. */
static void copy_etag(char *dst, size_t len, const char *src, size_t n)
{
	while (n > 0 && (*src == '"' || *src == ' ')) {
		src++;
		n--;
	}
	while (n > 0 && (src[n - 1] == '"' || src[n - 1] == ' ' ||
	                 src[n - 1] == '\r' || src[n - 1] == '\n'))
		n--;
	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static uint64_t next_random(struct client *c)
{
	/* xorshift64*: jitter, not secrets */
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * 2685821657736338717ULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Full jitter: a random wait up to base * 2^(attempt-1), capped.  Sleeps
 * in slices so an interruption is noticed; returns -1 if it was. */
static int backoff(struct client *c, int attempt, int interruptible)
{
	long cap = c->retry_base_ms, wait;

	while (attempt-- > 1 && cap < BACKOFF_CAP_MS)
		cap *= 2;
	if (cap > BACKOFF_CAP_MS)
		cap = BACKOFF_CAP_MS;
	wait = cap > 0 ? (long)(next_random(c) % (uint64_t)(cap + 1)) : 0;
	while (wait > 0) {
		long slice = wait < 50 ? wait : 50;
		if (interruptible && vk_interrupted)
			return -1;
		sleep_ms(slice);
		wait -= slice;
	}
	return interruptible && vk_interrupted ? -1 : 0;
}

/* ---- one HTTP exchange, with retries ---- */

struct request {
	enum op op;
	const char *method;
	const char *key;     /* NULL: the bucket */
	const char *query;   /* "name=value&..." with values encoded, or NULL */
	const char *body;    /* NULL: none */
	size_t body_len;
	const char *content_type;
	int if_none_match;   /* If-None-Match: * */
	int md5;             /* send Content-MD5 */
	int error_in_200;    /* a 200 whose body is <Error> failed */
	int cleanup;         /* runs after an interruption too (abort) */
	const char *what;    /* "PUT s3://bucket/key", for messages */
};

struct response {
	long status;
	struct vk_buf body;
	char etag[128];
	long long length;
	char last_modified[64];
	int too_large;
	const char *upload; /* the request body being sent */
	size_t upload_len, upload_pos;
};

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct response *rs = ud;
	size_t len = size * n, vlen;
	const char *colon = memchr(p, ':', len), *v;

	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		/* a new response (after a 100 Continue, say) */
		rs->etag[0] = rs->last_modified[0] = '\0';
		rs->length = -1;
		return len;
	}
	if (colon == NULL)
		return len;
	v = colon + 1;
	while (v < p + len && (*v == ' ' || *v == '\t'))
		v++;
	vlen = (size_t)(p + len - v);
	while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' ||
	                    v[vlen - 1] == ' '))
		vlen--;
	if ((size_t)(colon - p) == 4 && strncasecmp(p, "etag", 4) == 0)
		copy_etag(rs->etag, sizeof rs->etag, v, vlen);
	else if ((size_t)(colon - p) == 14 &&
	         strncasecmp(p, "content-length", 14) == 0)
		rs->length = strtoll(v, NULL, 10);
	else if ((size_t)(colon - p) == 13 &&
	         strncasecmp(p, "last-modified", 13) == 0 &&
	         vlen < sizeof rs->last_modified) {
		memcpy(rs->last_modified, v, vlen);
		rs->last_modified[vlen] = '\0';
	}
	return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct response *rs = ud;

	if (rs->body.len + size * n > MAX_RESPONSE) {
		rs->too_large = 1;
		return 0;
	}
	if (vk_buf_add(&rs->body, p, size * n) != 0)
		return 0;
	return size * n;
}

static size_t on_read(char *p, size_t size, size_t n, void *ud)
{
	struct response *rs = ud;
	size_t left = rs->upload_len - rs->upload_pos, k = size * n;

	if (k > left)
		k = left;
	if (k == 0)
		return 0;
	memcpy(p, rs->upload + rs->upload_pos, k);
	rs->upload_pos += k;
	return k;
}

static int on_seek(void *ud, curl_off_t offset, int origin)
{
	struct response *rs = ud;

	if (origin != SEEK_SET || offset < 0 || (size_t)offset > rs->upload_len)
		return CURL_SEEKFUNC_FAIL;
	rs->upload_pos = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

/* What a transfer's progress callback watches: an interruption, and a
 * transfer on which no byte moved for `stall` seconds.  (curl's own
 * CURLOPT_LOW_SPEED_* averages over several seconds: a stall right after
 * a burst would go unseen for longer than asked.) */
struct xfer {
	int cleanup;        /* not stopped by an interruption */
	int paused;         /* we paused it: not a stall */
	int stalled;        /* it was stopped for stalling */
	long stall;         /* seconds */
	curl_off_t dl, ul;  /* bytes moved at the last change */
	double last;        /* when they last changed */
};

static void xfer_start(struct xfer *x, long stall, int cleanup)
{
	memset(x, 0, sizeof *x);
	x->stall = stall;
	x->cleanup = cleanup;
	x->last = vk_clock();
}

static int on_progress(void *ud, curl_off_t dlt, curl_off_t dln,
                       curl_off_t ult, curl_off_t uln)
{
	struct xfer *x = ud;
	double now = vk_clock();

	(void)dlt, (void)ult;
	if (vk_interrupted && !x->cleanup)
		return 1;
	if (dln != x->dl || uln != x->ul || x->paused) {
		x->dl = dln;
		x->ul = uln;
		x->last = now;
	} else if (now - x->last >= (double)x->stall) {
		x->stalled = 1;
		return 1;
	}
	return 0;
}

static int retryable_curl(CURLcode rc, const struct xfer *x)
{
	switch (rc) {
	case CURLE_ABORTED_BY_CALLBACK:
		return x->stalled;
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		return 1;
	default:
		return 0;
	}
}

static int retryable_code(const char *code)
{
	return code && (strcmp(code, "SlowDown") == 0 ||
	                strcmp(code, "RequestTimeout") == 0 ||
	                strcmp(code, "InternalError") == 0);
}

static int retryable_status(long status)
{
	return status == 500 || status == 502 || status == 503 || status == 504;
}

static void endpoint_url(struct client *c, char *out, size_t len)
{
	msgf(out, len, "%s://%s", c->scheme, c->hostport);
}

/* What went wrong with a transfer curl could not finish. */
static void describe_curl(struct client *c, CURL *e, CURLcode rc,
                          const struct xfer *x, const char *what, char *err,
                          size_t len)
{
	long oserr = 0;
	char ep[300];
	curl_off_t connected = 0;

	curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &oserr);
	endpoint_url(c, ep, sizeof ep);
	if (rc == CURLE_ABORTED_BY_CALLBACK && x->stalled) {
		msgf(err, len, "s3: %s: the transfer stalled (no data for %ld s)",
		     what, x->stall);
		return;
	}
	if (rc == CURLE_ABORTED_BY_CALLBACK && vk_interrupted) {
		msgf(err, len, "s3: %s: interrupted", what);
		return;
	}
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) {
		msgf(err, len, "s3: cannot connect to %s: %s", ep,
		     oserr ? strerror((int)oserr) : curl_easy_strerror(rc));
		return;
	}
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connected);
		if (connected == 0) {
			msgf(err, len, "s3: cannot connect to %s: no answer "
			     "within %ld s", ep, c->connect_timeout);
			return;
		}
	}
	msgf(err, len, "s3: %s: %s%s%s", what, curl_easy_strerror(rc),
	     oserr ? ": " : "", oserr ? strerror((int)oserr) : "");
}

/* The message for an S3 error answer; sets *retry when it is transient. */
static void describe_error(long status, const char *body, size_t len,
                           const char *what, char *err, size_t errlen,
                           int *retry, char *code_out, size_t code_len)
{
	struct xml_doc d;
	const char *code = NULL, *msg = NULL;
	int parsed = xml_parse(body, len, &d) == 0;

	if (parsed && strcmp(d.root, "Error") == 0) {
		code = xml_get(&d, "/Error/Code");
		msg = xml_get(&d, "/Error/Message");
	}
	*retry = retryable_status(status) || retryable_code(code);
	if (code_out)
		msgf(code_out, code_len, "%s", code ? code : "");
	if (code && strcmp(code, "RequestTimeTooSkewed") == 0) {
		const char *server = xml_get(&d, "/Error/ServerTime");
		char local[21], now[17];
		amz_time(now);
		msgf(local, sizeof local, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ",
		     now, now + 4, now + 6, now + 9, now + 11, now + 13);
		msgf(err, errlen, "s3: %s: %ld RequestTimeTooSkewed: the "
		     "clocks differ too much: server time %s, local time %s",
		     what, status, server ? server : "unknown", local);
	} else if (status == 404 &&
	           (code == NULL || strcmp(code, "NoSuchKey") == 0 ||
	            strcmp(code, "NotFound") == 0)) {
		msgf(err, errlen, "s3: %s: not found", what);
	} else if (code) {
		msgf(err, errlen, "s3: %s: %ld %s%s%s", what, status, code,
		     msg && *msg ? ": " : "", msg ? msg : "");
	} else {
		msgf(err, errlen, "s3: %s: HTTP %ld%s", what, status,
		     status == 403 ? " Forbidden" : "");
	}
	if (parsed)
		xml_free(&d);
}

/* Wait for the transfer of e on m to end; 0 with its result in *rc, or
 * -1 when interrupted (the transfer is abandoned). */
static int run_transfer(CURLM *m, CURL *e, int cleanup, CURLcode *rc)
{
	int running = 1;

	if (curl_multi_add_handle(m, e) != CURLM_OK) {
		*rc = CURLE_FAILED_INIT;
		return 0;
	}
	*rc = CURLE_OK;
	for (;;) {
		CURLMsg *msg;
		int left;

		if (curl_multi_perform(m, &running) != CURLM_OK) {
			*rc = CURLE_FAILED_INIT;
			break;
		}
		while ((msg = curl_multi_info_read(m, &left)) != NULL)
			if (msg->msg == CURLMSG_DONE && msg->easy_handle == e) {
				*rc = msg->data.result;
				running = 0;
			}
		if (!running)
			break;
		if (vk_interrupted && !cleanup) {
			curl_multi_remove_handle(m, e);
			*rc = CURLE_ABORTED_BY_CALLBACK;
			return -1;
		}
		curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	curl_multi_remove_handle(m, e);
	return 0;
}

/* The path part of a URL: "/bucket/key" or "/key", encoded. */
static int object_path(struct client *c, const char *key, struct vk_buf *out)
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

static int request_host(struct client *c, struct vk_buf *out)
{
	if (c->path_style)
		return vk_buf_adds(out, c->hostport);
	return vk_buf_printf(out, "%s.%s", c->bucket, c->hostport);
}

/* The signed headers of a request, as a curl list (NULL: out of memory). */
static struct curl_slist *signed_headers(struct client *c, const char *method,
                                         const char *path, const char *query,
                                         const char *host,
                                         const char *payload_hash,
                                         const struct s3_header *extra,
                                         size_t nextra)
{
	struct s3_header h[12];
	struct s3_sign_input in;
	struct s3_signature sig;
	struct curl_slist *list = NULL, *l;
	struct vk_buf line = {0};
	char now[17];
	size_t n = 0, i;
	int ok = 1;

	amz_time(now);
	h[n++] = (struct s3_header){"Host", host};
	h[n++] = (struct s3_header){"x-amz-content-sha256", payload_hash};
	h[n++] = (struct s3_header){"x-amz-date", now};
	if (c->session_token)
		h[n++] = (struct s3_header){"x-amz-security-token",
		                            c->session_token};
	for (i = 0; i < nextra && n < sizeof h / sizeof h[0]; i++)
		h[n++] = extra[i];
	memset(&in, 0, sizeof in);
	in.method = method;
	in.path = path;
	in.query = query;
	in.headers = h;
	in.nheaders = n;
	in.payload_hash = payload_hash;
	in.region = c->region;
	in.access_key = c->access_key;
	in.secret_key = c->secret_key;
	in.time = now;
	if (s3_sign(&in, &sig) != 0)
		ok = 0;
	for (i = 0; ok && i <= n; i++) {
		line.len = 0;
		if (i < n)
			ok = vk_buf_printf(&line, "%s: %s", h[i].name, h[i].value) == 0;
		else
			ok = vk_buf_printf(&line, "Authorization: %s",
			               sig.authorization.p) == 0;
		if (ok && (l = curl_slist_append(list, line.p)) != NULL)
			list = l;
		else
			ok = 0;
	}
	/* no 100-continue round trip: S3 answers errors at the end anyway */
	if (ok && (l = curl_slist_append(list, "Expect:")) != NULL)
		list = l;
	else
		ok = 0;
	s3_wipe(line.p, line.len);
	vk_buf_free(&line);
	s3_signature_free(&sig);
	if (!ok) {
		curl_slist_free_all(list);
		return NULL;
	}
	return list;
}

static void common_options(struct client *c, CURL *e, struct xfer *x)
{
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, c->connect_timeout);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
}

static int build_url(struct client *c, const char *host, const char *path,
                     const char *query, struct vk_buf *url)
{
	if (vk_buf_printf(url, "%s://%s%s", c->scheme, host, path) != 0)
		return -1;
	if (query && *query && vk_buf_printf(url, "?%s", query) != 0)
		return -1;
	return 0;
}

static void count(struct client *c, enum op op)
{
	c->requests++;
	c->by_op[op]++;
}

/*
 * Send a request; retry what is transient.  Returns 0 on success (the
 * answer in rs), or -1 with a message in err (rs->status: the last HTTP
 * status, 0 when there was none).
 */
static int s3_request(struct client *c, const struct request *rq,
                      struct response *rs, char *err, size_t errlen)
{
	struct vk_buf path = {0}, query = {0}, host = {0}, url = {0};
	char payload_hash[65], md5[25];
	struct s3_header extra[4];
	size_t nextra = 0;
	int attempt, attempts = c->retries + 1, rc = -1, cleanup = rq->cleanup;
	struct xfer x;

	memset(rs, 0, sizeof *rs);
	rs->length = -1;
	if (object_path(c, rq->key, &path) != 0 || vk_buf_adds(&path, "") != 0 ||
	    s3_canonical_query(&query, rq->query) != 0 ||
	    request_host(c, &host) != 0 ||
	    build_url(c, host.p, path.p, query.p, &url) != 0) {
		msgf(err, errlen, "s3: %s: out of memory", rq->what);
		goto done;
	}
	s3_sha256_hex(rq->body ? rq->body : "", rq->body_len, payload_hash);
	if (rq->md5) {
		s3_md5_base64(rq->body ? rq->body : "", rq->body_len, md5);
		extra[nextra++] = (struct s3_header){"Content-MD5", md5};
	}
	if (rq->content_type)
		extra[nextra++] = (struct s3_header){"Content-Type",
		                                     rq->content_type};
	if (rq->if_none_match)
		extra[nextra++] = (struct s3_header){"If-None-Match", "*"};

	for (attempt = 1; attempt <= attempts; attempt++) {
		struct curl_slist *hdrs;
		CURL *e = c->easy;
		CURLcode cc;
		int retry = 0;

		if (attempt > 1) {
			c->retried++;
			if (vk_interrupted && cleanup)
				attempts = attempts < 3 ? attempts : 3;
			else if (backoff(c, attempt - 1, !cleanup) != 0) {
				msgf(err, errlen, "s3: %s: interrupted", rq->what);
				break;
			}
		}
		if (vk_interrupted && !cleanup) {
			msgf(err, errlen, "s3: %s: interrupted", rq->what);
			break;
		}
		hdrs = signed_headers(c, rq->method, path.p, rq->query, host.p,
		                      payload_hash, extra, nextra);
		if (hdrs == NULL) {
			msgf(err, errlen, "s3: %s: out of memory", rq->what);
			break;
		}
		vk_buf_free(&rs->body);
		rs->status = 0;
		rs->too_large = 0;
		rs->upload = rq->body;
		rs->upload_len = rq->body_len;
		rs->upload_pos = 0;
		curl_easy_reset(e);
		xfer_start(&x, c->stall_timeout, cleanup);
		common_options(c, e, &x);
		curl_easy_setopt(e, CURLOPT_URL, url.p);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(e, CURLOPT_HEADERDATA, rs);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, rs);
		if (strcmp(rq->method, "HEAD") == 0) {
			curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
		} else if (strcmp(rq->method, "PUT") == 0 ||
		           strcmp(rq->method, "POST") == 0) {
			curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
			curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(e, CURLOPT_READDATA, rs);
			curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
			curl_easy_setopt(e, CURLOPT_SEEKDATA, rs);
			curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
			                 (curl_off_t)rq->body_len);
			if (strcmp(rq->method, "POST") == 0)
				curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "POST");
		} else if (strcmp(rq->method, "GET") != 0) {
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
		}
		count(c, rq->op);
		if (run_transfer(c->multi, e, cleanup, &cc) != 0) {
			curl_slist_free_all(hdrs);
			msgf(err, errlen, "s3: %s: interrupted", rq->what);
			break;
		}
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
		curl_slist_free_all(hdrs);
		if (cc != CURLE_OK) {
			if (rs->too_large)
				msgf(err, errlen, "s3: %s: answer larger than "
				     "%d bytes", rq->what, MAX_RESPONSE);
			else
				describe_curl(c, e, cc, &x, rq->what, err, errlen);
			retry = retryable_curl(cc, &x);
		} else {
			curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &rs->status);
			if (rs->status >= 200 && rs->status < 300) {
				struct xml_doc d;
				if (!rq->error_in_200 ||
				    xml_parse(rs->body.p, rs->body.len, &d) != 0) {
					rc = 0; /* the caller judges the body */
					break;
				}
				if (strcmp(d.root, "Error") != 0) {
					xml_free(&d);
					rc = 0;
					break;
				}
				xml_free(&d);
			} else if (rs->status == 404 && rq->cleanup) {
				rc = 0; /* nothing left to clean up */
				break;
			}
			describe_error(rs->status, rs->body.p, rs->body.len,
			               rq->what, err, errlen, &retry, NULL, 0);
		}
		if (!retry || attempt == attempts) {
			if (attempt > 1) {
				size_t l = strlen(err);
				msgf(err + l, errlen - l, " (after %d attempts)",
				     attempt);
			}
			break;
		}
	}
done:
	vk_buf_free(&path);
	vk_buf_free(&query);
	vk_buf_free(&host);
	vk_buf_free(&url);
	return rc;
}

static void response_free(struct response *rs)
{
	vk_buf_free(&rs->body);
}

/* s3_request, and its answer read as XML whose root element is `root` (any
 * when NULL).  0 with the document in d (the caller frees it), or -1 with
 * a message in err. */
static int request_xml(struct client *c, const struct request *rq,
                       const char *root, struct xml_doc *d, char *err,
                       size_t errlen)
{
	struct response rs;
	int rc = -1;

	memset(d, 0, sizeof *d);
	if (s3_request(c, rq, &rs, err, errlen) == 0) {
		if (xml_parse(rs.body.p, rs.body.len, d) != 0) {
			msgf(err, errlen, "s3: %s: the answer is not XML", rq->what);
		} else if (root && strcmp(d->root, root) != 0) {
			msgf(err, errlen, "s3: %s: the answer is a %s, not a %s",
			     rq->what, d->root, root);
			xml_free(d);
		} else {
			rc = 0;
		}
	}
	response_free(&rs);
	return rc;
}

/* "VERB s3://bucket/key" */
static void what_of(struct client *c, const char *verb, const char *key,
                    char *out, size_t len)
{
	msgf(out, len, "%s s3://%s/%s", verb, c->bucket, key ? key : "");
}

/* ---- the client handle ---- */

static struct client *check_client(lua_State *L)
{
	struct client *c = luaL_checkudata(L, 1, CLIENT_MT);

	if (!c->open)
		luaL_error(L, "attempt to use a closed s3 client");
	return c;
}

static void client_release(struct client *c)
{
	if (c->easy)
		curl_easy_cleanup(c->easy);
	if (c->multi)
		curl_multi_cleanup(c->multi);
	c->easy = NULL;
	c->multi = NULL;
	free(c->bucket);
	free(c->region);
	free(c->scheme);
	free(c->hostport);
	c->bucket = c->region = c->scheme = c->hostport = NULL;
	free_secret(&c->access_key);
	free_secret(&c->secret_key);
	free_secret(&c->session_token);
	c->open = 0;
}

/* lua: c:close() -- also __gc and __close; closing twice is harmless */
static int m_close(lua_State *L)
{
	client_release(luaL_checkudata(L, 1, CLIENT_MT));
	return 0;
}

static const char *opt_string(lua_State *L, int idx, const char *name,
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

static lua_Integer opt_int(lua_State *L, int idx, const char *name,
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

static void check_known(lua_State *L, int idx, const char *const *known)
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

/* lua: s3.client{ bucket=, region=, endpoint=, path_style=, access_key=,
 *      secret_key=, session_token=, retries=, retry_base_ms=,
 *      connect_timeout=, stall_timeout= } -> client */
static int l_client(lua_State *L)
{
	struct client *c;
	const char *bucket, *region, *endpoint, *ak, *sk, *tok;
	lua_Integer retries, base, cto, sto;
	int path_style;
	char defep[200];

	luaL_checktype(L, 1, LUA_TTABLE);
	check_known(L, 1, client_opts);
	bucket = opt_string(L, 1, "bucket", NULL);
	region = opt_string(L, 1, "region", "us-east-1");
	endpoint = opt_string(L, 1, "endpoint", NULL);
	ak = opt_string(L, 1, "access_key", NULL);
	sk = opt_string(L, 1, "secret_key", NULL);
	tok = opt_string(L, 1, "session_token", NULL);
	retries = opt_int(L, 1, "retries", 5, 0, 100);
	base = opt_int(L, 1, "retry_base_ms", 200, 0, 60000);
	cto = opt_int(L, 1, "connect_timeout", 10, 1, 3600);
	sto = opt_int(L, 1, "stall_timeout", 60, 1, 3600);
	lua_getfield(L, 1, "path_style");
	path_style = lua_isnil(L, -1) ? endpoint != NULL : lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (bucket == NULL || *bucket == '\0')
		return luaL_error(L, "s3: option 'bucket' is required");
	if (ak == NULL || sk == NULL || *ak == '\0' || *sk == '\0')
		return luaL_error(L, "s3: options 'access_key' and 'secret_key' "
		                     "are required");
	if (strlen(region) == 0 || strlen(region) > 64 ||
	    strpbrk(region, "/ :") != NULL)
		return luaL_error(L, "s3: bad region '%s'", region);
	if (strchr(bucket, '/') != NULL)
		return luaL_error(L, "s3: bad bucket name '%s'", bucket);
	msgf(defep, sizeof defep, "https://s3.%s.amazonaws.com", region);

	c = lua_newuserdatauv(L, sizeof *c, 0);
	memset(c, 0, sizeof *c);
	luaL_setmetatable(L, CLIENT_MT);
	c->retries = (int)retries;
	c->retry_base_ms = (long)base;
	c->connect_timeout = (long)cto;
	c->stall_timeout = (long)sto;
	c->path_style = path_style;
	c->rng = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)c << 16) ^
	         0x9e3779b97f4a7c15ULL;
	if (parse_endpoint(endpoint ? endpoint : defep, &c->scheme,
	                   &c->hostport) != 0) {
		client_release(c);
		return luaL_error(L, "s3: bad endpoint '%s' (want "
		                     "http[s]://host[:port])", endpoint);
	}
	c->bucket = xstrdup(bucket);
	c->region = xstrdup(region);
	c->access_key = xstrdup(ak);
	c->secret_key = xstrdup(sk);
	c->session_token = tok && *tok ? xstrdup(tok) : NULL;
	c->multi = curl_multi_init();
	c->easy = curl_easy_init();
	if (!c->scheme || !c->hostport || !c->bucket || !c->region ||
	    !c->access_key || !c->secret_key || (tok && *tok && !c->session_token) ||
	    !c->multi || !c->easy) {
		client_release(c);
		return luaL_error(L, "s3: out of memory");
	}
	c->open = 1;
	return 1;
}

/* ---- put: a stream into an object ---- */

struct upload {
	struct client *c;
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
	char what[WHAT_LEN];
	char err[ERR_LEN];
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

static int initiate(struct upload *u)
{
	struct request rq = {0};
	struct xml_doc d;
	const char *id;
	char what[WHAT_LEN];

	msgf(what, sizeof what, "%s (starting a multipart upload)", u->what);
	rq.op = OP_INIT;
	rq.method = "POST";
	rq.key = u->key;
	rq.query = "uploads=";
	rq.body = "";
	rq.content_type = u->content_type;
	rq.what = what;
	if (request_xml(u->c, &rq, "InitiateMultipartUploadResult", &d, u->err,
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

/* Store the buffer as the next part. */
static int flush_part(struct upload *u)
{
	struct request rq = {0};
	struct response rs;
	struct vk_buf q = {0};
	char what[WHAT_LEN];
	int part = u->nparts + 1;

	if (part > MAX_PARTS) {
		msgf(u->err, sizeof u->err, "s3: %s: the stream is larger "
		     "than %d parts", u->what, MAX_PARTS);
		return -1;
	}
	if (u->upload_id == NULL && initiate(u) != 0)
		return -1;
	if (part % 64 == 1) {
		void *e = realloc(u->etags, (size_t)(part + 63) * sizeof *u->etags);
		if (e == NULL) {
			msgf(u->err, sizeof u->err, "s3: out of memory");
			return -1;
		}
		u->etags = e;
	}
	if (vk_buf_printf(&q, "partNumber=%d&uploadId=", part) != 0 ||
	    s3_uri_encode(&q, u->upload_id, strlen(u->upload_id), 0) != 0) {
		vk_buf_free(&q);
		msgf(u->err, sizeof u->err, "s3: out of memory");
		return -1;
	}
	msgf(what, sizeof what, "%s (part %d)", u->what, part);
	rq.op = OP_PART;
	rq.method = "PUT";
	rq.key = u->key;
	rq.query = q.p;
	rq.body = u->buf;
	rq.body_len = u->len;
	rq.md5 = 1;
	rq.what = what;
	if (s3_request(u->c, &rq, &rs, u->err, sizeof u->err) != 0) {
		response_free(&rs);
		vk_buf_free(&q);
		return -1;
	}
	vk_buf_free(&q);
	response_free(&rs);
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
		if (u->cap < u->part_size && u->len + n > u->cap) {
			size_t cap = u->cap ? u->cap : 256 * 1024;
			char *b;
			while (cap < u->len + n && cap < u->part_size)
				cap *= 2;
			if (cap > u->part_size)
				cap = u->part_size;
			b = realloc(u->buf, cap);
			if (b == NULL) {
				msgf(errbuf, errlen, "s3: out of memory");
				return -1;
			}
			u->buf = b;
			u->cap = cap;
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

static int complete(struct upload *u)
{
	struct request rq = {0};
	struct vk_buf body = {0}, q = {0};
	struct xml_doc d;
	const char *etag;
	char what[WHAT_LEN];
	int i, rc = -1;

	if (vk_buf_adds(&body, "<CompleteMultipartUpload>") != 0)
		goto oom;
	for (i = 0; i < u->nparts; i++)
		if (vk_buf_printf(&body, "<Part><PartNumber>%d</PartNumber><ETag>\"",
		              i + 1) != 0 ||
		    vk_buf_add_xml(&body, u->etags[i]) != 0 ||
		    vk_buf_adds(&body, "\"</ETag></Part>") != 0)
			goto oom;
	if (vk_buf_adds(&body, "</CompleteMultipartUpload>") != 0 ||
	    vk_buf_adds(&q, "uploadId=") != 0 ||
	    s3_uri_encode(&q, u->upload_id, strlen(u->upload_id), 0) != 0)
		goto oom;
	msgf(what, sizeof what, "%s (completing the multipart upload)",
	     u->what);
	rq.op = OP_COMPLETE;
	rq.method = "POST";
	rq.key = u->key;
	rq.query = q.p;
	rq.body = body.p;
	rq.body_len = body.len;
	rq.content_type = "application/xml";
	rq.if_none_match = u->if_none_match;
	rq.error_in_200 = 1;
	rq.what = what;
	/* any root: moto says CompleteMultipartUploadResponse */
	if (request_xml(u->c, &rq, NULL, &d, u->err, sizeof u->err) == 0) {
		char path[100];
		msgf(path, sizeof path, "/%s/ETag", d.root);
		etag = xml_get(&d, path);
		if (etag)
			copy_etag(u->etag, sizeof u->etag, etag, strlen(etag));
		xml_free(&d);
		rc = 0;
	}
	vk_buf_free(&body);
	vk_buf_free(&q);
	return rc;
oom:
	vk_buf_free(&body);
	vk_buf_free(&q);
	msgf(u->err, sizeof u->err, "s3: out of memory");
	return -1;
}

/* Abort the multipart upload, if one was started; the error message of
 * the failure that led here is kept, the abort's own added to it. */
static void abort_upload(struct upload *u)
{
	struct request rq = {0};
	struct response rs;
	struct vk_buf q = {0};
	char what[WHAT_LEN], err[ERR_LEN];

	if (u->upload_id == NULL)
		return;
	if (vk_buf_adds(&q, "uploadId=") != 0 ||
	    s3_uri_encode(&q, u->upload_id, strlen(u->upload_id), 0) != 0) {
		vk_buf_free(&q);
		return;
	}
	msgf(what, sizeof what, "%s (aborting the multipart upload)",
	     u->what);
	rq.op = OP_ABORT;
	rq.method = "DELETE";
	rq.key = u->key;
	rq.query = q.p;
	rq.cleanup = 1;
	rq.what = what;
	if (s3_request(u->c, &rq, &rs, err, sizeof err) != 0) {
		size_t l = strlen(u->err);
		msgf(u->err + l, sizeof u->err - l, "; and then %s (upload "
		     "id %s is left: c:uploads() lists it)", err, u->upload_id);
	}
	response_free(&rs);
	vk_buf_free(&q);
}

static int single_put(struct upload *u, const char *data, size_t len)
{
	struct request rq = {0};
	struct response rs;
	int rc;

	rq.op = OP_PUT;
	rq.method = "PUT";
	rq.key = u->key;
	rq.body = data;
	rq.body_len = len;
	rq.md5 = 1;
	rq.content_type = u->content_type;
	rq.if_none_match = u->if_none_match;
	rq.what = u->what;
	rc = s3_request(u->c, &rq, &rs, u->err, sizeof u->err);
	if (rc == 0)
		memcpy(u->etag, rs.etag, sizeof u->etag);
	response_free(&rs);
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

static const char *const put_opts[] = {
	"size_hint", "progress", "if_none_match", "content_type", NULL,
};

/* Read the options table at idx into u; leaves the progress function (or
 * nil) on the stack and returns its index. */
static int put_options(lua_State *L, int idx, struct upload *u,
                       lua_Integer *hint)
{
	*hint = 0;
	if (lua_isnoneornil(L, idx)) {
		lua_pushnil(L);
		return lua_gettop(L);
	}
	luaL_checktype(L, idx, LUA_TTABLE);
	check_known(L, idx, put_opts);
	*hint = opt_int(L, idx, "size_hint", 0, 0, LUA_MAXINTEGER);
	u->content_type = opt_string(L, idx, "content_type", NULL);
	lua_getfield(L, idx, "if_none_match");
	u->if_none_match = lua_toboolean(L, -1);
	lua_pop(L, 1);
	lua_getfield(L, idx, "progress");
	if (!lua_isnil(L, -1) && !lua_isfunction(L, -1))
		luaL_error(L, "s3: option 'progress' must be a function");
	return lua_gettop(L);
}

static int push_put_result(lua_State *L, struct upload *u)
{
	lua_createtable(L, 0, 3);
	lua_pushinteger(L, (lua_Integer)u->total);
	lua_setfield(L, -2, "size");
	lua_pushstring(L, u->etag);
	lua_setfield(L, -2, "etag");
	lua_pushinteger(L, u->nparts ? u->nparts : 1);
	lua_setfield(L, -2, "parts");
	return 1;
}

static const char *check_key(lua_State *L, int idx)
{
	size_t len;
	const char *key = luaL_checklstring(L, idx, &len);

	luaL_argcheck(L, len > 0 && len <= 1024 && strlen(key) == len, idx,
	              "an object key is 1 to 1024 bytes, without NUL");
	return key;
}

/* lua: c:put(key, stream [, opts]) -> { size, etag, parts } | fail, msg
 *      opts: size_hint (bytes expected), progress (function(bytes)),
 *      if_none_match (never overwrite), content_type */
static int m_put(lua_State *L)
{
	struct client *c = check_client(L);
	const char *key = check_key(L, 2);
	struct vk_stream *s = vk_stream_check(L, 3);
	struct upload u;
	lua_Integer hint;
	int progress, rc;
	char err[ERR_LEN];

	memset(&u, 0, sizeof u);
	u.c = c;
	u.key = key;
	progress = put_options(L, 4, &u, &hint);
	u.part_size = initial_part_size(hint);
	what_of(c, "PUT", key, u.what, sizeof u.what);
	rc = vk_pump(L, s, upload_write, &u, progress, err, sizeof err);
	if (rc == 0)
		rc = upload_finish(&u);
	else if (!u.failed_here)
		msgf(u.err, sizeof u.err, "s3: %s: %s", u.what, err);
	if (rc != 0) {
		if (vk_interrupted && strstr(u.err, "interrupted") == NULL) {
			size_t l = strlen(u.err);
			msgf(u.err + l, sizeof u.err - l, " (interrupted)");
		}
		abort_upload(&u);
		upload_free(&u);
		return vk_pushfail(L, "%s", u.err);
	}
	upload_free(&u);
	return push_put_result(L, &u);
}

/* lua: c:put_string(key, data [, opts]) -> as c:put */
static int m_put_string(lua_State *L)
{
	struct client *c = check_client(L);
	const char *key = check_key(L, 2);
	size_t len;
	const char *data = luaL_checklstring(L, 3, &len);
	struct upload u;
	lua_Integer hint;
	int progress, rc = 0;

	memset(&u, 0, sizeof u);
	u.c = c;
	u.key = key;
	progress = put_options(L, 4, &u, &hint);
	u.part_size = initial_part_size(hint);
	what_of(c, "PUT", key, u.what, sizeof u.what);
	if (len <= u.part_size) {
		rc = single_put(&u, data, len);
		u.total = len;
	} else {
		char err[ERR_LEN];
		size_t off;
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
	if (rc != 0) {
		abort_upload(&u);
		upload_free(&u);
		return vk_pushfail(L, "%s", u.err);
	}
	upload_free(&u);
	return push_put_result(L, &u);
}

/* ---- get: an object as a stream source ---- */

struct get_source {
	struct vk_stream s;
	struct client *c;
	CURLM *multi;
	CURL *easy;
	struct curl_slist *hdrs;
	char *key;
	char what[WHAT_LEN];
	char *buf;
	size_t start, end;  /* the bytes held: buf[start, end) */
	uint64_t received;  /* bytes of the object taken from the wire */
	long long total;    /* the object's size, -1 unknown */
	char etag[128];     /* the object's, from the first answer */
	long status;        /* of the current answer */
	int headers_done, done, paused, running, attempts;
	int headers_done_now; /* the headers ended during this step */
	struct xfer x;      /* the current transfer's progress */
	CURLcode result;
	struct response rs; /* headers of the current answer; error bodies */
	char bad[300];      /* the answer was not the object it should be */
};

static int check_answer(struct get_source *g);

static size_t get_header(char *p, size_t size, size_t n, void *ud)
{
	struct get_source *g = ud;
	size_t len = size * n;

	if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
		long status = 0;
		curl_easy_getinfo(g->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200) {
			g->status = status;
			g->headers_done = g->headers_done_now = 1;
			check_answer(g);
		}
		return len;
	}
	return on_header(p, size, n, &g->rs);
}

/* The answer is the object from where we are (or says why not). */
static int check_answer(struct get_source *g)
{
	if (g->status < 200 || g->status >= 300)
		return 0; /* an error answer: its body is kept */
	if (g->received == 0 && g->status == 200) {
		if (g->etag[0] && strcmp(g->etag, g->rs.etag) != 0) {
			msgf(g->bad, sizeof g->bad, "the object changed while "
			     "it was read (ETag %s, then %s)", g->etag,
			     g->rs.etag);
			return -1;
		}
		memcpy(g->etag, g->rs.etag, sizeof g->etag);
		g->total = g->rs.length;
		return 0;
	}
	if (g->status != 206)
		msgf(g->bad, sizeof g->bad, "the server ignored the Range of "
		     "a resumed read (HTTP %ld)", g->status);
	else if (strcmp(g->etag, g->rs.etag) != 0)
		msgf(g->bad, sizeof g->bad, "the object changed while it "
		     "was read (ETag %s, then %s)", g->etag, g->rs.etag);
	else
		return 0;
	return -1;
}

static size_t get_write(char *p, size_t size, size_t n, void *ud)
{
	struct get_source *g = ud;
	size_t len = size * n;

	if (!g->headers_done) {
		g->headers_done = 1;
		curl_easy_getinfo(g->easy, CURLINFO_RESPONSE_CODE, &g->status);
	}
	if (g->status < 200 || g->status >= 300)
		return on_body(p, size, n, &g->rs);
	if (g->bad[0])
		return 0;
	if (GET_BUFFER - g->end < len && g->start > 0) {
		memmove(g->buf, g->buf + g->start, g->end - g->start);
		g->end -= g->start;
		g->start = 0;
	}
	if (GET_BUFFER - g->end < len) {
		g->paused = g->x.paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	memcpy(g->buf + g->end, p, len);
	g->end += len;
	g->received += len;
	return len;
}

static void get_stop(struct get_source *g)
{
	if (g->running) {
		curl_multi_remove_handle(g->multi, g->easy);
		g->running = 0;
	}
	curl_slist_free_all(g->hdrs);
	g->hdrs = NULL;
}

/* Send the GET (from g->received on, when resuming). */
static int get_start(struct get_source *g, char *err, size_t errlen)
{
	struct client *c = g->c;
	struct vk_buf path = {0}, host = {0}, url = {0}, range = {0};
	struct s3_header extra[2];
	size_t nextra = 0;
	char payload[65];
	int rc = -1;

	get_stop(g);
	if (!c->open) {
		msgf(err, errlen, "s3: %s: the client was closed", g->what);
		return -1;
	}
	s3_sha256_hex("", 0, payload);
	if (g->received > 0) {
		if (vk_buf_printf(&range, "bytes=%llu-",
		              (unsigned long long)g->received) != 0)
			goto done;
		extra[nextra++] = (struct s3_header){"Range", range.p};
		if (g->etag[0])
			extra[nextra++] = (struct s3_header){"If-Match", g->etag};
	}
	if (object_path(c, g->key, &path) != 0 || request_host(c, &host) != 0 ||
	    build_url(c, host.p, path.p, NULL, &url) != 0)
		goto done;
	g->hdrs = signed_headers(c, "GET", path.p, NULL, host.p, payload, extra,
	                         nextra);
	if (g->hdrs == NULL)
		goto done;
	vk_buf_free(&g->rs.body);
	g->rs.etag[0] = g->rs.last_modified[0] = '\0';
	g->rs.length = -1;
	g->rs.too_large = 0;
	g->status = 0;
	g->headers_done = g->done = g->paused = 0;
	g->result = CURLE_OK;
	curl_easy_reset(g->easy);
	xfer_start(&g->x, c->stall_timeout, 0);
	common_options(c, g->easy, &g->x);
	curl_easy_setopt(g->easy, CURLOPT_URL, url.p);
	curl_easy_setopt(g->easy, CURLOPT_HTTPHEADER, g->hdrs);
	curl_easy_setopt(g->easy, CURLOPT_HEADERFUNCTION, get_header);
	curl_easy_setopt(g->easy, CURLOPT_HEADERDATA, g);
	curl_easy_setopt(g->easy, CURLOPT_WRITEFUNCTION, get_write);
	curl_easy_setopt(g->easy, CURLOPT_WRITEDATA, g);
	if (curl_multi_add_handle(g->multi, g->easy) != CURLM_OK)
		goto done;
	g->running = 1;
	g->attempts++;
	count(c, OP_GET);
	rc = 0;
done:
	if (rc != 0 && err[0] == '\0')
		msgf(err, errlen, "s3: %s: out of memory", g->what);
	vk_buf_free(&path);
	vk_buf_free(&host);
	vk_buf_free(&url);
	vk_buf_free(&range);
	return rc;
}

/* Move the transfer on a little: up to wait_ms for something to happen. */
static void get_step(struct get_source *g, int wait_ms)
{
	CURLMsg *msg;
	int running, left;

	if (!g->running || g->done)
		return;
	curl_multi_perform(g->multi, &running);
	while ((msg = curl_multi_info_read(g->multi, &left)) != NULL)
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == g->easy) {
			g->done = 1;
			g->result = msg->data.result;
		}
	/* wait only when there is nothing to hand on */
	if (!g->done && wait_ms > 0 && g->end == g->start && !g->paused &&
	    !g->headers_done_now)
		curl_multi_poll(g->multi, NULL, 0, wait_ms, NULL);
	g->headers_done_now = 0;
}

/* The transfer ended: 0 when the object was all received; else -1 with
 * the message in err and *retry telling whether trying again may help. */
static int get_outcome(struct get_source *g, char *err, size_t errlen,
                       int *retry)
{
	*retry = 0;
	if (g->bad[0]) {
		msgf(err, errlen, "s3: %s: %s", g->what, g->bad);
		return -1;
	}
	if (g->result != CURLE_OK && !(g->result == CURLE_WRITE_ERROR &&
	                               g->rs.too_large)) {
		describe_curl(g->c, g->easy, g->result, &g->x, g->what, err,
		              errlen);
		*retry = retryable_curl(g->result, &g->x);
		return -1;
	}
	if (g->status == 412 && g->received > 0) {
		msgf(err, errlen, "s3: %s: the object changed while it was "
		     "read", g->what);
		return -1;
	}
	if (g->status < 200 || g->status >= 300) {
		describe_error(g->status, g->rs.body.p, g->rs.body.len, g->what,
		               err, errlen, retry, NULL, 0);
		return -1;
	}
	if (g->total >= 0 && g->received < (uint64_t)g->total) {
		msgf(err, errlen, "s3: %s: the answer ended after %llu of "
		     "%lld bytes", g->what, (unsigned long long)g->received,
		     g->total);
		*retry = 1;
		return -1;
	}
	return 0;
}

static void with_attempts(struct get_source *g, char *err, size_t errlen)
{
	size_t l = strlen(err);

	if (g->attempts > 1)
		msgf(err + l, errlen - l, " (after %d attempts)", g->attempts);
}

/* The current transfer failed transiently: try again if allowed. */
static int get_retry(struct get_source *g, char *err, size_t errlen)
{
	if (g->attempts > g->c->retries) {
		with_attempts(g, err, errlen);
		return -1;
	}
	get_stop(g);
	g->c->retried++;
	if (backoff(g->c, g->attempts, 1) != 0) {
		msgf(err, errlen, "s3: %s: interrupted", g->what);
		return -1;
	}
	err[0] = '\0';
	return get_start(g, err, errlen);
}

static ssize_t get_read(struct vk_stream *s, void *buf, size_t n)
{
	struct get_source *g = (struct get_source *)s;
	char err[ERR_LEN];
	int retry;

	for (;;) {
		if (g->end > g->start) {
			size_t k = g->end - g->start;
			if (k > n)
				k = n;
			memcpy(buf, g->buf + g->start, k);
			g->start += k;
			if (g->start == g->end)
				g->start = g->end = 0;
			if (g->paused && GET_BUFFER - (g->end - g->start) >=
			                         4 * CURL_MAX_WRITE_SIZE) {
				g->paused = 0;
				curl_easy_pause(g->easy, CURLPAUSE_CONT);
				g->x.paused = g->paused;
				g->x.last = vk_clock();
			}
			return (ssize_t)k;
		}
		if (vk_interrupted) {
			get_stop(g);
			return vk_fail(s, "s3: %s: interrupted", g->what);
		}
		if (g->done) {
			err[0] = '\0';
			if (get_outcome(g, err, sizeof err, &retry) == 0) {
				get_stop(g);
				return 0;
			}
			if (!retry || get_retry(g, err, sizeof err) != 0) {
				get_stop(g);
				if (!retry)
					with_attempts(g, err, sizeof err);
				return vk_fail(s, "%s", err);
			}
			continue;
		}
		get_step(g, 100);
	}
}

static void get_release(struct vk_stream *s)
{
	struct get_source *g = (struct get_source *)s;

	get_stop(g);
	if (g->easy)
		curl_easy_cleanup(g->easy);
	if (g->multi)
		curl_multi_cleanup(g->multi);
	g->easy = NULL;
	g->multi = NULL;
	free(g->buf);
	free(g->key);
	g->buf = g->key = NULL;
	vk_buf_free(&g->rs.body);
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
	lua_pushinteger(L, g->attempts);
	lua_setfield(L, -2, "attempts");
}

static const struct vk_stream_ops get_ops = {
	.name = "s3",
	.read = get_read,
	.release = get_release,
	.info = get_info,
};

/* lua: c:get(key) -> stream | fail, message, http_status
 *      The answer's status is known before this returns (a missing object
 *      is nil, "...: not found", 404); errors later, such as a connection
 *      lost for good, end the stream with a failure. */
static int m_get(lua_State *L)
{
	struct client *c = check_client(L);
	const char *key = check_key(L, 2);
	struct get_source *g;
	char err[ERR_LEN];
	int retry;

	g = (struct get_source *)vk_stream_push(L, sizeof *g, &get_ops);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1); /* the client outlives its streams */
	g->c = c;
	g->total = -1;
	g->rs.length = -1;
	what_of(c, "GET", key, g->what, sizeof g->what);
	g->key = strdup(key);
	g->buf = malloc(GET_BUFFER);
	g->multi = curl_multi_init();
	g->easy = curl_easy_init();
	vk_open(&g->s);
	if (!g->key || !g->buf || !g->multi || !g->easy) {
		vk_close(&g->s);
		return vk_pushfail(L, "s3: %s: out of memory", g->what);
	}
	err[0] = '\0';
	if (get_start(g, err, sizeof err) != 0) {
		vk_close(&g->s);
		return vk_pushfail(L, "%s", err);
	}
	/* wait for the answer's headers, retrying what is transient */
	for (;;) {
		while (!g->headers_done && !g->done) {
			if (vk_interrupted) {
				vk_close(&g->s);
				return vk_pushfail(L, "s3: %s: interrupted", g->what);
			}
			get_step(g, 100);
		}
		if (g->headers_done && g->status >= 200 && g->status < 300)
			break;
		while (!g->done) /* an error answer: read its (short) body */
			get_step(g, 100);
		err[0] = '\0';
		get_outcome(g, err, sizeof err, &retry);
		if (!retry || get_retry(g, err, sizeof err) != 0) {
			long status = g->status;
			if (!retry)
				with_attempts(g, err, sizeof err);
			vk_close(&g->s);
			vk_pushfail(L, "%s", err);
			if (status == 0)
				return 2;
			lua_pushinteger(L, status);
			return 3;
		}
	}
	return 1;
}

/* ---- head ---- */

/* lua: c:head(key) -> { size, etag, last_modified } | fail, msg, status */
static int m_head(lua_State *L)
{
	struct client *c = check_client(L);
	const char *key = check_key(L, 2);
	struct request rq = {0};
	struct response rs;
	char what[WHAT_LEN], err[ERR_LEN], when[21];

	what_of(c, "HEAD", key, what, sizeof what);
	rq.op = OP_HEAD;
	rq.method = "HEAD";
	rq.key = key;
	rq.what = what;
	if (s3_request(c, &rq, &rs, err, sizeof err) != 0) {
		long status = rs.status;
		response_free(&rs);
		vk_pushfail(L, "%s", err);
		if (status == 0)
			return 2;
		lua_pushinteger(L, status);
		return 3;
	}
	lua_createtable(L, 0, 3);
	lua_pushinteger(L, rs.length >= 0 ? (lua_Integer)rs.length : 0);
	lua_setfield(L, -2, "size");
	lua_pushstring(L, rs.etag);
	lua_setfield(L, -2, "etag");
	iso_time(rs.last_modified, when);
	lua_pushstring(L, when);
	lua_setfield(L, -2, "last_modified");
	response_free(&rs);
	return 1;
}

/* ---- list ---- */

static int add_param(struct vk_buf *q, const char *name, const char *value)
{
	if (value == NULL)
		return 0;
	return vk_buf_printf(q, "%s%s=", q->len ? "&" : "", name) != 0 ||
	               s3_uri_encode(q, value, strlen(value), 0) != 0
	           ? -1
	           : 0;
}

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
		copy_etag(buf, sizeof buf, text ? text : "", text ? strlen(text) : 0);
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

static const char *const list_opts[] = {
	"start_after", "delimiter", "max_keys", NULL,
};

/* lua: c:list(prefix [, { start_after=, delimiter=, max_keys= }]) ->
 *      { {key, size, last_modified, etag}... }, { common prefixes } |
 *      fail, message.  All pages, max_keys objects a page (default 1000). */
static int m_list(lua_State *L)
{
	struct client *c = check_client(L);
	const char *prefix = luaL_optstring(L, 2, "");
	const char *start_after = NULL, *delimiter = NULL;
	lua_Integer max_keys = 1000;
	char *token = NULL;
	char what[WHAT_LEN], err[ERR_LEN];
	int objs, prefixes;

	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		check_known(L, 3, list_opts);
		start_after = opt_string(L, 3, "start_after", NULL);
		delimiter = opt_string(L, 3, "delimiter", NULL);
		max_keys = opt_int(L, 3, "max_keys", 1000, 1, 1000);
	}
	what_of(c, "LIST", prefix, what, sizeof what);
	lua_newtable(L);
	objs = lua_gettop(L);
	lua_newtable(L);
	prefixes = lua_gettop(L);
	for (;;) {
		struct request rq = {0};
		struct vk_buf q = {0};
		struct xml_doc d;
		const char *trunc, *next;
		int rc;
		char mk[16];

		msgf(mk, sizeof mk, "%d", (int)max_keys);
		if (add_param(&q, "list-type", "2") != 0 ||
		    add_param(&q, "prefix", prefix) != 0 ||
		    add_param(&q, "max-keys", mk) != 0 ||
		    add_param(&q, "delimiter", delimiter) != 0 ||
		    add_param(&q, "continuation-token", token) != 0 ||
		    add_param(&q, "start-after", token ? NULL : start_after) != 0) {
			vk_buf_free(&q);
			free(token);
			return vk_pushfail(L, "s3: %s: out of memory", what);
		}
		rq.op = OP_LIST;
		rq.method = "GET";
		rq.query = q.p;
		rq.what = what;
		free(token);
		token = NULL;
		rc = request_xml(c, &rq, "ListBucketResult", &d, err, sizeof err);
		vk_buf_free(&q);
		if (rc != 0)
			return vk_pushfail(L, "%s", err);
		push_records(L, objs, &d, "/ListBucketResult/Contents",
		             object_fields, NFIELDS(object_fields));
		push_records(L, prefixes, &d, "/ListBucketResult/CommonPrefixes",
		             prefix_fields, NFIELDS(prefix_fields));
		trunc = xml_get(&d, "/ListBucketResult/IsTruncated");
		next = xml_get(&d, "/ListBucketResult/NextContinuationToken");
		if (trunc && strcmp(trunc, "true") == 0) {
			if (next == NULL || *next == '\0') {
				xml_free(&d);
				return vk_pushfail(L, "s3: %s: a truncated listing "
				                   "without a continuation token", what);
			}
			token = strdup(next);
		}
		xml_free(&d);
		if (token == NULL)
			break;
	}
	return 2;
}

/* ---- delete ---- */

/* lua: c:delete(keys) -> { deleted = n, errors = { {key, code, message}...
 *      } } | fail, message.  Batches of 1,000 keys. */
static int m_delete(lua_State *L)
{
	struct client *c = check_client(L);
	lua_Integer n, i, first, deleted = 0;
	char what[WHAT_LEN], err[ERR_LEN];

	luaL_checktype(L, 2, LUA_TTABLE);
	n = (lua_Integer)lua_rawlen(L, 2);
	for (i = 1; i <= n; i++) {
		if (lua_rawgeti(L, 2, i) != LUA_TSTRING)
			luaL_error(L, "s3: delete: key %d is not a string", (int)i);
		check_key(L, -1);
		lua_pop(L, 1);
	}
	lua_createtable(L, 0, 2);
	lua_newtable(L); /* errors */
	for (first = 1; first <= n; first += DELETE_BATCH) {
		lua_Integer last = first + DELETE_BATCH - 1;
		struct request rq = {0};
		struct vk_buf body = {0};
		struct xml_doc d;
		lua_Integer batch_err;
		int rc;

		if (last > n)
			last = n;
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
		if (vk_buf_adds(&body, "</Delete>") != 0) {
			vk_buf_free(&body);
			return vk_pushfail(L, "s3: %s: out of memory", what);
		}
		rq.op = OP_DELETE;
		rq.method = "POST";
		rq.query = "delete=";
		rq.body = body.p;
		rq.body_len = body.len;
		rq.md5 = 1;
		rq.content_type = "application/xml";
		rq.what = what;
		rc = request_xml(c, &rq, "DeleteResult", &d, err, sizeof err);
		vk_buf_free(&body);
		if (rc != 0)
			return vk_pushfail(L, "%s", err);
		batch_err = push_records(L, lua_gettop(L), &d, "/DeleteResult/Error",
		                         delete_error_fields,
		                         NFIELDS(delete_error_fields));
		xml_free(&d);
		deleted += last - first + 1 - batch_err;
	}
	lua_setfield(L, -2, "errors");
	lua_pushinteger(L, deleted);
	lua_setfield(L, -2, "deleted");
	return 1;
}

/* ---- multipart uploads in progress ---- */

/* lua: c:uploads([prefix]) -> { {key, upload_id, initiated}... } |
 *      fail, message.  All pages. */
static int m_uploads(lua_State *L)
{
	struct client *c = check_client(L);
	const char *prefix = luaL_optstring(L, 2, "");
	char *key_marker = NULL, *id_marker = NULL;
	char what[WHAT_LEN], err[ERR_LEN];

	what_of(c, "LIST UPLOADS", prefix, what, sizeof what);
	lua_newtable(L);
	for (;;) {
		struct request rq = {0};
		struct vk_buf q = {0};
		struct xml_doc d;
		const char *trunc;
		int rc;

		if (add_param(&q, "uploads", "") != 0 ||
		    add_param(&q, "prefix", prefix) != 0 ||
		    add_param(&q, "key-marker", key_marker) != 0 ||
		    add_param(&q, "upload-id-marker", id_marker) != 0) {
			vk_buf_free(&q);
			free(key_marker);
			free(id_marker);
			return vk_pushfail(L, "s3: %s: out of memory", what);
		}
		free(key_marker);
		free(id_marker);
		key_marker = id_marker = NULL;
		rq.op = OP_UPLOADS;
		rq.method = "GET";
		rq.query = q.p;
		rq.what = what;
		rc = request_xml(c, &rq, "ListMultipartUploadsResult", &d, err,
		                 sizeof err);
		vk_buf_free(&q);
		if (rc != 0)
			return vk_pushfail(L, "%s", err);
		push_records(L, lua_gettop(L), &d, "/ListMultipartUploadsResult/Upload",
		             upload_fields, NFIELDS(upload_fields));
		trunc = xml_get(&d, "/ListMultipartUploadsResult/IsTruncated");
		if (trunc && strcmp(trunc, "true") == 0) {
			key_marker = xstrdup(
				xml_get(&d, "/ListMultipartUploadsResult/NextKeyMarker"));
			id_marker = xstrdup(xml_get(
				&d, "/ListMultipartUploadsResult/NextUploadIdMarker"));
			if (key_marker == NULL || *key_marker == '\0') {
				free(key_marker);
				free(id_marker);
				xml_free(&d);
				return vk_pushfail(L, "s3: %s: a truncated listing "
				                   "without a next marker", what);
			}
		}
		xml_free(&d);
		if (key_marker == NULL)
			break;
	}
	return 1;
}

/* lua: c:abort(key, upload_id) -> true | fail, message */
static int m_abort(lua_State *L)
{
	struct client *c = check_client(L);
	const char *key = check_key(L, 2);
	const char *id = luaL_checkstring(L, 3);
	struct request rq = {0};
	struct response rs;
	struct vk_buf q = {0};
	char what[WHAT_LEN], err[ERR_LEN];
	int rc;

	what_of(c, "ABORT", key, what, sizeof what);
	if (add_param(&q, "uploadId", id) != 0) {
		vk_buf_free(&q);
		return vk_pushfail(L, "s3: %s: out of memory", what);
	}
	rq.op = OP_ABORT;
	rq.method = "DELETE";
	rq.key = key;
	rq.query = q.p;
	rq.what = what;
	rc = s3_request(c, &rq, &rs, err, sizeof err);
	vk_buf_free(&q);
	response_free(&rs);
	if (rc != 0)
		return vk_pushfail(L, "%s", err);
	lua_pushboolean(L, 1);
	return 1;
}

/* ---- presigned URLs ---- */

/* lua: c:presign(method, key, expires_seconds [, time]) -> url
 *      time: "YYYYMMDDTHHMMSSZ", default now */
static int m_presign(lua_State *L)
{
	struct client *c = check_client(L);
	const char *method = luaL_checkstring(L, 2);
	const char *key = check_key(L, 3);
	lua_Integer expires = luaL_checkinteger(L, 4);
	const char *t = luaL_optstring(L, 5, NULL);
	struct s3_presign_input in;
	struct vk_buf path = {0}, host = {0}, q = {0};
	char now[17];

	luaL_argcheck(L, expires >= 1 && expires <= 604800, 4,
	              "from 1 to 604800 seconds");
	if (t == NULL) {
		amz_time(now);
		t = now;
	}
	memset(&in, 0, sizeof in);
	in.method = method;
	in.region = c->region;
	in.access_key = c->access_key;
	in.secret_key = c->secret_key;
	in.session_token = c->session_token;
	in.time = t;
	in.expires = (long)expires;
	if (object_path(c, key, &path) != 0 || request_host(c, &host) != 0) {
		vk_buf_free(&path);
		vk_buf_free(&host);
		return luaL_error(L, "s3: out of memory");
	}
	in.path = path.p;
	in.host = host.p;
	if (s3_presign(&in, &q) != 0) {
		vk_buf_free(&path);
		vk_buf_free(&host);
		vk_buf_free(&q);
		return luaL_argerror(L, 5, "a time like 20130524T000000Z");
	}
	lua_pushfstring(L, "%s://%s%s?%s", c->scheme, host.p, path.p, q.p);
	vk_buf_free(&path);
	vk_buf_free(&host);
	vk_buf_free(&q);
	return 1;
}

/* lua: c:stats() -> { requests = n, retries = n, by_op = { PUT = n, ... } }
 *      by_op counts every request sent, retries included; names: PUT
 *      (PutObject), PART, INIT, COMPLETE, ABORT (multipart), GET, HEAD,
 *      LIST, DELETE (DeleteObjects batches), UPLOADS */
static int m_stats(lua_State *L)
{
	struct client *c = luaL_checkudata(L, 1, CLIENT_MT);
	int i;

	lua_createtable(L, 0, 3);
	lua_pushinteger(L, c->requests);
	lua_setfield(L, -2, "requests");
	lua_pushinteger(L, c->retried);
	lua_setfield(L, -2, "retries");
	lua_createtable(L, 0, OP_N);
	for (i = 0; i < OP_N; i++) {
		lua_pushinteger(L, c->by_op[i]);
		lua_setfield(L, -2, op_names[i]);
	}
	lua_setfield(L, -2, "by_op");
	return 1;
}

static int m_tostring(lua_State *L)
{
	struct client *c = luaL_checkudata(L, 1, CLIENT_MT);

	if (c->open)
		lua_pushfstring(L, "vakap.s3.client (s3://%s, %s://%s)", c->bucket,
		                c->scheme, c->hostport);
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

/* lua: s3.sign{ method, path, query, headers = { {name, value}... },
 *      payload_hash, region, service, access_key, secret_key,
 *      session_token, time } ->
 *      { canonical_request, string_to_sign, signature, authorization } */
static int l_sign(lua_State *L)
{
	struct s3_sign_input in;
	struct s3_signature sig;
	struct s3_header *h;
	size_t n, i;

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
	if (lua_getfield(L, 1, "headers") != LUA_TTABLE && !lua_isnil(L, -1))
		luaL_error(L, "s3.sign: field 'headers' must be a list");
	n = lua_istable(L, -1) ? lua_rawlen(L, -1) : 0;
	/* userdata, so a raised error frees it */
	h = lua_newuserdatauv(L, (n ? n : 1) * sizeof *h, 0);
	for (i = 0; i < n; i++) {
		if (lua_rawgeti(L, -2, (lua_Integer)i + 1) != LUA_TTABLE ||
		    lua_rawgeti(L, -1, 1) != LUA_TSTRING ||
		    lua_rawgeti(L, -2, 2) != LUA_TSTRING)
			luaL_error(L, "s3.sign: header %d is not {name, value}",
			           (int)i + 1);
		h[i].name = lua_tostring(L, -2);
		h[i].value = lua_tostring(L, -1);
		lua_pop(L, 3); /* the headers table keeps them alive */
	}
	in.headers = h;
	in.nheaders = n;
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

static const luaL_Reg methods[] = {
	{"put", m_put},         {"put_string", m_put_string},
	{"get", m_get},         {"head", m_head},
	{"list", m_list},       {"delete", m_delete},
	{"uploads", m_uploads}, {"abort", m_abort},
	{"presign", m_presign}, {"stats", m_stats},
	{"close", m_close},     {NULL, NULL},
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
	vk_class(L, CLIENT_MT, metamethods, methods);
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
