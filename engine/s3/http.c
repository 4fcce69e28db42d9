/*
 * The HTTP transport (see s3/http.h): requests signed with SigV4 and sent
 * with libcurl's multi interface, so that a transfer can be driven a
 * little at a time and an interruption noticed within 100 ms; the one
 * retry loop, with its backoff; the one definition of a transient
 * failure; and the messages that say what went wrong, from curl or from
 * an AWS error answer.
 *
 * It owns the connections (curl handles) of a client and of each
 * exchange that has its own, and the headers and URL of the attempt in
 * flight.  Secrets (the secret key, the session token, signatures) never
 * appear in a message.
 */
#define _POSIX_C_SOURCE 200809L

#include "s3/http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "stream.h" /* vk_interrupted */

#define BACKOFF_CAP_MS 20000

/* ---- connections, clients, requests ---- */

int http_conn_open(struct http_conn *k)
{
	k->owner = getpid();
	k->multi = curl_multi_init();
	k->easy = curl_easy_init();
	if (k->multi && k->easy)
		return 0;
	http_conn_close(k);
	return -1;
}

void http_conn_close(struct http_conn *k)
{
	/* another process's connections (a forked child's inheritance) are
	 * theirs: cleaning them up here would end the parent's TLS sessions */
	if (k->owner == getpid()) {
		if (k->easy)
			curl_easy_cleanup(k->easy);
		if (k->multi)
			curl_multi_cleanup(k->multi);
	}
	k->easy = NULL;
	k->multi = NULL;
}

/* The connection, made anew in a process that did not make it. */
static int conn_mine(struct http_conn *k)
{
	if (k->multi != NULL && k->owner == getpid())
		return 0;
	/* another process's: neither used nor freed here */
	k->inherited_multi = k->multi;
	k->inherited_easy = k->easy;
	return http_conn_open(k);
}

static void free_secret(char **p)
{
	if (*p) {
		s3_wipe(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

void http_client_free(struct http_client *hc)
{
	http_conn_close(&hc->conn);
	free(hc->scheme);
	free(hc->hostport);
	free(hc->region);
	hc->scheme = hc->hostport = hc->region = NULL;
	free_secret(&hc->access_key);
	free_secret(&hc->secret_key);
	free_secret(&hc->session_token);
}

void http_header(struct http_request *rq, const char *name, const char *value)
{
	if (value != NULL && rq->nheaders < HTTP_MAX_HEADERS)
		rq->headers[rq->nheaders++] = (struct s3_header){name, value};
}

void http_response_free(struct http_response *rs)
{
	vk_buf_free(&rs->body);
}

void http_etag(char *dst, size_t len, const char *src, size_t n)
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

void http_amz_time(char out[17])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* ---- the backoff ---- */

static uint64_t next_random(struct http_client *hc)
{
	/* xorshift64*: jitter, not secrets */
	hc->rng ^= hc->rng >> 12;
	hc->rng ^= hc->rng << 25;
	hc->rng ^= hc->rng >> 27;
	return hc->rng * 2685821657736338717ULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Full jitter: a random wait up to base * 2^(attempt-1), capped.  Sleeps
 * in slices so an interruption is noticed; returns -1 if it was. */
static int backoff(struct http_client *hc, int attempt, int interruptible)
{
	long cap = hc->retry_base_ms, wait;

	while (attempt-- > 1 && cap < BACKOFF_CAP_MS)
		cap *= 2;
	if (cap > BACKOFF_CAP_MS)
		cap = BACKOFF_CAP_MS;
	wait = cap > 0 ? (long)(next_random(hc) % (uint64_t)(cap + 1)) : 0;
	while (wait > 0) {
		long slice = wait < 50 ? wait : 50;
		if (interruptible && vk_interrupted)
			return -1;
		sleep_ms(slice);
		wait -= slice;
	}
	return interruptible && vk_interrupted ? -1 : 0;
}

/* ---- curl's callbacks ---- */

/* A header line of the answer into rs: ETag, Content-Length, Last-Modified. */
static void header_field(struct http_response *rs, const char *p, size_t len)
{
	const char *colon = memchr(p, ':', len), *v;
	size_t vlen, nlen;

	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		/* a new response (after a 100 Continue, say) */
		rs->etag[0] = rs->last_modified[0] = '\0';
		rs->length = -1;
		return;
	}
	if (colon == NULL)
		return;
	nlen = (size_t)(colon - p);
	v = colon + 1;
	while (v < p + len && (*v == ' ' || *v == '\t'))
		v++;
	vlen = (size_t)(p + len - v);
	while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' ||
	                    v[vlen - 1] == ' '))
		vlen--;
	if (nlen == 4 && strncasecmp(p, "etag", 4) == 0) {
		http_etag(rs->etag, sizeof rs->etag, v, vlen);
	} else if (nlen == 14 && strncasecmp(p, "content-length", 14) == 0) {
		rs->length = strtoll(v, NULL, 10);
	} else if (nlen == 13 && strncasecmp(p, "last-modified", 13) == 0 &&
	           vlen < sizeof rs->last_modified) {
		memcpy(rs->last_modified, v, vlen);
		rs->last_modified[vlen] = '\0';
	}
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct http_call *k = ud;
	size_t len = size * n;

	if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
		long status = 0;
		curl_easy_getinfo(k->conn->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200) {
			k->status = status;
			k->headers_done = k->headers_done_now = 1;
			if (k->hooks && k->hooks->answer)
				k->hooks->answer(k);
		}
		return len;
	}
	header_field(&k->rs, p, len);
	return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct http_call *k = ud;
	size_t len = size * n, r;

	if (!k->headers_done) {
		k->headers_done = 1;
		curl_easy_getinfo(k->conn->easy, CURLINFO_RESPONSE_CODE, &k->status);
	}
	if (k->hooks && k->hooks->data && k->status >= 200 && k->status < 300) {
		r = k->hooks->data(k, p, len);
		if (r == CURL_WRITEFUNC_PAUSE)
			k->paused = k->x.paused = 1;
		return r;
	}
	if (k->rs.body.len + len > HTTP_MAX_RESPONSE) {
		k->rs.too_large = 1;
		return 0;
	}
	if (vk_buf_add(&k->rs.body, p, len) != 0)
		return 0;
	return len;
}

static size_t on_read(char *p, size_t size, size_t n, void *ud)
{
	struct http_call *k = ud;
	size_t left = k->rq.body_len - k->upload_pos, len = size * n;

	if (len > left)
		len = left;
	if (len == 0)
		return 0;
	memcpy(p, k->rq.body + k->upload_pos, len);
	k->upload_pos += len;
	return len;
}

static int on_seek(void *ud, curl_off_t offset, int origin)
{
	struct http_call *k = ud;

	if (origin != SEEK_SET || offset < 0 ||
	    (size_t)offset > k->rq.body_len)
		return CURL_SEEKFUNC_FAIL;
	k->upload_pos = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

/* Just before the request goes out on a connection: each time, curl's own
 * resend of a request on a reused connection that died too. */
static int on_prereq(void *ud, char *remote_ip, char *local_ip,
                     int remote_port, int local_port)
{
	struct http_call *k = ud;

	(void)remote_ip, (void)local_ip, (void)remote_port, (void)local_port;
	k->sent++;
	return CURL_PREREQFUNC_OK;
}

static void xfer_start(struct http_xfer *x, long stall, int cleanup)
{
	memset(x, 0, sizeof *x);
	x->stall = stall;
	x->cleanup = cleanup;
	x->last = vk_clock();
}

static int on_progress(void *ud, curl_off_t dlt, curl_off_t dln,
                       curl_off_t ult, curl_off_t uln)
{
	struct http_xfer *x = ud;
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

/* ---- what went wrong ---- */

int http_transient(CURLcode rc, int stalled, long status, const char *code)
{
	switch (rc) {
	case CURLE_OK:
		break;
	case CURLE_ABORTED_BY_CALLBACK:
		return stalled;
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
	return status == 500 || status == 502 || status == 503 ||
	       status == 504 ||
	       (code && (strcmp(code, "SlowDown") == 0 ||
	                 strcmp(code, "RequestTimeout") == 0 ||
	                 strcmp(code, "InternalError") == 0));
}

/* What went wrong with a transfer curl could not finish. */
static void describe_curl(struct http_call *k, char *err, size_t len)
{
	struct http_client *hc = k->hc;
	const char *svc = hc->service, *what = k->rq.what;
	CURLcode rc = k->result;
	long oserr = 0;
	curl_off_t connected = 0;

	curl_easy_getinfo(k->conn->easy, CURLINFO_OS_ERRNO, &oserr);
	if (rc == CURLE_ABORTED_BY_CALLBACK && k->x.stalled) {
		msgf(err, len, "%s: %s: the transfer stalled (no data for %ld s)",
		     svc, what, k->x.stall);
		return;
	}
	if (rc == CURLE_ABORTED_BY_CALLBACK && vk_interrupted) {
		msgf(err, len, "%s: %s: interrupted", svc, what);
		return;
	}
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) {
		msgf(err, len, "%s: cannot connect to %s://%s: %s", svc,
		     hc->scheme, hc->hostport,
		     oserr ? strerror((int)oserr) : curl_easy_strerror(rc));
		return;
	}
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		curl_easy_getinfo(k->conn->easy, CURLINFO_CONNECT_TIME_T,
		                  &connected);
		if (connected == 0) {
			msgf(err, len, "%s: cannot connect to %s://%s: no answer "
			     "within %ld s", svc, hc->scheme, hc->hostport,
			     hc->connect_timeout);
			return;
		}
	}
	msgf(err, len, "%s: %s: %s%s%s", svc, what, curl_easy_strerror(rc),
	     oserr ? ": " : "", oserr ? strerror((int)oserr) : "");
}

/* "server time ..., local time ...", for RequestTimeTooSkewed. */
static void describe_skew(struct http_call *k, const struct xml_doc *d,
                          long status, char *err, size_t errlen)
{
	const char *server = xml_get(d, "/Error/ServerTime");
	char local[21], now[17];

	http_amz_time(now);
	msgf(local, sizeof local, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", now,
	     now + 4, now + 6, now + 9, now + 11, now + 13);
	msgf(err, errlen, "%s: %s: %ld RequestTimeTooSkewed: the clocks "
	     "differ too much: server time %s, local time %s", k->hc->service,
	     k->rq.what, status, server ? server : "unknown", local);
}

/* The message for an error answer (an AWS <Error>, or only a status). */
static void describe_answer(struct http_call *k, long status, char *err,
                            size_t errlen, int *transient)
{
	const char *svc = k->hc->service, *what = k->rq.what;
	const struct vk_buf *body = &k->rs.body;
	const char *code = NULL, *msg = NULL;
	struct xml_doc d;
	int parsed = xml_parse(body->p, body->len, &d) == 0;

	if (parsed && strcmp(d.root, "Error") == 0) {
		code = xml_get(&d, "/Error/Code");
		msg = xml_get(&d, "/Error/Message");
	}
	*transient = http_transient(CURLE_OK, 0, status, code);
	if (code)
		msgf(k->rs.code, sizeof k->rs.code, "%s", code);
	if (code && strcmp(code, "RequestTimeTooSkewed") == 0)
		describe_skew(k, &d, status, err, errlen);
	else if (status == 404 &&
	         (code == NULL || strcmp(code, "NoSuchKey") == 0 ||
	          strcmp(code, "NotFound") == 0))
		msgf(err, errlen, "%s: %s: not found", svc, what);
	else if (code)
		msgf(err, errlen, "%s: %s: %ld %s%s%s", svc, what, status, code,
		     msg && *msg ? ": " : "", msg ? msg : "");
	else
		msgf(err, errlen, "%s: %s: HTTP %ld%s", svc, what, status,
		     status == 403 ? " Forbidden" : "");
	if (parsed)
		xml_free(&d);
}

/* A 2xx answer whose body is an <Error> after all. */
static int error_in_200(const struct http_response *rs)
{
	struct xml_doc d;
	int error;

	if (xml_parse(rs->body.p, rs->body.len, &d) != 0)
		return 0; /* the caller judges the body */
	error = strcmp(d.root, "Error") == 0;
	xml_free(&d);
	return error;
}

int http_judge(struct http_call *k, char *err, size_t errlen, int *transient)
{
	struct http_response *rs = &k->rs;

	*transient = 0;
	if (k->result != CURLE_OK) {
		if (rs->too_large)
			msgf(err, errlen, "%s: %s: answer larger than %d bytes",
			     k->hc->service, k->rq.what, HTTP_MAX_RESPONSE);
		else
			describe_curl(k, err, errlen);
		*transient = http_transient(k->result, k->x.stalled, 0, NULL);
		return -1;
	}
	curl_easy_getinfo(k->conn->easy, CURLINFO_RESPONSE_CODE, &rs->status);
	if (rs->status >= 200 && rs->status < 300) {
		if (!k->rq.error_in_200 || !error_in_200(rs))
			return 0;
	} else if (rs->status == 404 && k->rq.cleanup) {
		return 0; /* nothing left to clean up */
	}
	describe_answer(k, rs->status, err, errlen, transient);
	return -1;
}

/* ---- an attempt ---- */

/* The signed headers as curl's list, "Expect:" last; NULL: out of memory. */
static struct curl_slist *header_list(const struct s3_header *h, size_t n,
                                      const char *authorization)
{
	struct curl_slist *list = NULL, *l;
	struct vk_buf line = {0};
	size_t i;
	int ok = 1;

	for (i = 0; ok && i <= n; i++) {
		line.len = 0;
		if (i < n)
			ok = vk_buf_printf(&line, "%s: %s", h[i].name,
			                   h[i].value) == 0;
		else
			ok = vk_buf_printf(&line, "Authorization: %s",
			                   authorization) == 0;
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
	if (!ok) {
		curl_slist_free_all(list);
		return NULL;
	}
	return list;
}

/* The headers of this attempt, signed now: curl's list, or NULL. */
static struct curl_slist *signed_headers(struct http_call *k)
{
	struct http_client *hc = k->hc;
	struct s3_header h[5 + HTTP_MAX_HEADERS];
	struct s3_sign_input in;
	struct s3_signature sig;
	struct curl_slist *list = NULL;
	char now[17];
	size_t n = 0, i;

	http_amz_time(now);
	h[n++] = (struct s3_header){"Host", k->rq.host};
	h[n++] = (struct s3_header){"x-amz-content-sha256", k->payload_hash};
	h[n++] = (struct s3_header){"x-amz-date", now};
	if (hc->session_token)
		h[n++] = (struct s3_header){"x-amz-security-token",
		                            hc->session_token};
	if (k->rq.md5)
		h[n++] = (struct s3_header){"Content-MD5", k->md5};
	for (i = 0; i < k->rq.nheaders; i++)
		h[n++] = k->rq.headers[i];
	memset(&in, 0, sizeof in);
	in.method = k->rq.method;
	in.path = k->rq.path;
	in.query = k->rq.query;
	in.headers = h;
	in.nheaders = n;
	in.payload_hash = k->payload_hash;
	in.region = hc->region;
	in.service = hc->service;
	in.access_key = hc->access_key;
	in.secret_key = hc->secret_key;
	in.time = now;
	if (s3_sign(&in, &sig) == 0)
		list = header_list(h, n, sig.authorization.p);
	s3_signature_free(&sig);
	return list;
}

static void method_options(struct http_call *k, CURL *e)
{
	const char *method = k->rq.method;

	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0) {
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, k);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, k);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
		                 (curl_off_t)k->rq.body_len);
		if (strcmp(method, "POST") == 0)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "POST");
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	}
}

static void options(struct http_call *k, CURL *e)
{
	curl_easy_reset(e);
	xfer_start(&k->x, k->hc->stall_timeout, k->rq.cleanup);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, k->hc->connect_timeout);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, &k->x);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_URL, k->url.p);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, k->hdrs);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, k);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, k);
	curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
	curl_easy_setopt(e, CURLOPT_PREREQDATA, k);
	method_options(k, e);
}

/* Forget the answer of the attempt before. */
static void answer_reset(struct http_call *k)
{
	vk_buf_free(&k->rs.body);
	k->rs.status = 0;
	k->rs.etag[0] = k->rs.last_modified[0] = k->rs.code[0] = '\0';
	k->rs.length = -1;
	k->rs.too_large = 0;
	k->status = 0;
	k->headers_done = k->headers_done_now = k->done = k->paused = 0;
	k->result = CURLE_OK;
	k->upload_pos = 0;
}

int http_start(struct http_call *k, char *err, size_t errlen)
{
	struct http_client *hc = k->hc;

	http_stop(k);
	if (k->hooks && k->hooks->attempt &&
	    k->hooks->attempt(k, err, errlen) != 0)
		return -1;
	if (vk_interrupted && !k->rq.cleanup) {
		msgf(err, errlen, "%s: %s: interrupted", hc->service, k->rq.what);
		return -1;
	}
	if (conn_mine(k->conn) != 0 || (k->hdrs = signed_headers(k)) == NULL) {
		msgf(err, errlen, "%s: %s: out of memory", hc->service,
		     k->rq.what);
		return -1;
	}
	answer_reset(k);
	options(k, k->conn->easy);
	k->attempts++;
	hc->requests++;
	if (k->rq.tally)
		(*k->rq.tally)++;
	if (curl_multi_add_handle(k->conn->multi, k->conn->easy) != CURLM_OK) {
		k->done = 1;
		k->result = CURLE_FAILED_INIT;
		return 0;
	}
	k->running = 1;
	return 0;
}

void http_stop(struct http_call *k)
{
	if (k->running && k->conn->owner == getpid())
		curl_multi_remove_handle(k->conn->multi, k->conn->easy);
	k->running = 0;
	curl_slist_free_all(k->hdrs);
	k->hdrs = NULL;
}

void http_resume(struct http_call *k)
{
	if (k->conn->owner != getpid())
		return; /* http_drive says why */
	k->paused = 0;
	curl_easy_pause(k->conn->easy, CURLPAUSE_CONT);
	k->x.paused = k->paused; /* it may have paused again at once */
	k->x.last = vk_clock();
}

/* ---- the loop ---- */

/* Move the transfer on: up to wait_ms for something to happen, when
 * there is nothing to hand on yet. */
static void step(struct http_call *k, int (*until)(struct http_call *k),
                 int wait_ms)
{
	CURLMsg *msg;
	int running, left;

	if (!k->running || k->done)
		return;
	if (curl_multi_perform(k->conn->multi, &running) != CURLM_OK) {
		k->done = 1;
		k->result = CURLE_FAILED_INIT;
		return;
	}
	while ((msg = curl_multi_info_read(k->conn->multi, &left)) != NULL)
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == k->conn->easy) {
			k->done = 1;
			k->result = msg->data.result;
		}
	if (!k->done && !k->paused && !k->headers_done_now &&
	    !(until && until(k)))
		curl_multi_poll(k->conn->multi, NULL, 0, wait_ms, NULL);
	k->headers_done_now = 0;
}

/* After a failed attempt: 0 when another was started, after the backoff;
 * -1 when there is to be none, with the message in err. */
static int again(struct http_call *k, int transient, char *err,
                 size_t errlen)
{
	struct http_client *hc = k->hc;
	int cleanup = k->rq.cleanup;

	if (!transient || k->attempts >= k->limit) {
		size_t l = strlen(err);
		if (k->attempts > 1)
			msgf(err + l, errlen - l, " (after %d attempts)",
			     k->attempts);
		return -1;
	}
	hc->retried++;
	if (vk_interrupted && cleanup) {
		if (k->limit > 3)
			k->limit = 3; /* a clean-up, quickly: the run is ending */
	} else if (backoff(hc, k->attempts, !cleanup) != 0) {
		msgf(err, errlen, "%s: %s: interrupted", hc->service, k->rq.what);
		return -1;
	}
	return http_start(k, err, errlen);
}

int http_drive(struct http_call *k, int (*until)(struct http_call *k),
               char *err, size_t errlen)
{
	const char *svc = k->hc->service, *what = k->rq.what;
	int transient;

	for (;;) {
		if (until && until(k))
			return 1;
		if (k->done) {
			err[0] = '\0';
			if ((k->hooks && k->hooks->judge
			         ? k->hooks->judge(k, err, errlen, &transient)
			         : http_judge(k, err, errlen, &transient)) == 0)
				return 0;
			if (again(k, transient, err, errlen) != 0)
				return -1;
			continue;
		}
		if (!k->running) {
			msgf(err, errlen, "%s: %s: not started", svc, what);
			return -1;
		}
		if (vk_interrupted && !k->rq.cleanup) {
			http_stop(k);
			msgf(err, errlen, "%s: %s: interrupted", svc, what);
			return -1;
		}
		if (k->conn->owner != getpid()) {
			http_stop(k);
			msgf(err, errlen, "%s: %s: the transfer belongs to the "
			     "process that started it, not this one", svc, what);
			return -1;
		}
		step(k, until, 100);
	}
}

/* ---- exchanges ---- */

int http_call_init(struct http_call *k, struct http_client *hc,
                   struct http_conn *conn, const struct http_request *rq,
                   const struct http_hooks *hooks, void *ctx, char *err,
                   size_t errlen)
{
	struct vk_buf query = {0};
	const char *body = rq->body ? rq->body : "";
	int rc;

	memset(k, 0, sizeof *k);
	k->hc = hc;
	k->conn = conn;
	k->rq = *rq;
	k->hooks = hooks;
	k->ctx = ctx;
	k->limit = hc->retries + 1;
	k->rs.length = -1;
	s3_sha256_hex(body, rq->body_len, k->payload_hash);
	if (rq->md5)
		s3_md5_base64(body, rq->body_len, k->md5);
	rc = s3_canonical_query(&query, rq->query) != 0 ||
	     vk_buf_printf(&k->url, "%s://%s%s", hc->scheme, rq->host,
	                   rq->path) != 0 ||
	     (query.len > 0 && vk_buf_printf(&k->url, "?%s", query.p) != 0)
	         ? -1
	         : 0;
	vk_buf_free(&query);
	if (rc != 0)
		msgf(err, errlen, "%s: %s: out of memory", hc->service, rq->what);
	return rc;
}

void http_call_free(struct http_call *k)
{
	http_stop(k);
	vk_buf_free(&k->url);
	http_response_free(&k->rs);
}

int http_request(struct http_client *hc, const struct http_request *rq,
                 struct http_response *rs, char *err, size_t errlen)
{
	struct http_call k;
	int rc;

	rc = http_call_init(&k, hc, &hc->conn, rq, NULL, NULL, err, errlen);
	if (rc == 0)
		rc = http_start(&k, err, errlen);
	if (rc == 0)
		rc = http_drive(&k, NULL, err, errlen);
	http_stop(&k);
	k.rs.sent = k.sent;
	*rs = k.rs; /* the answer is the caller's */
	memset(&k.rs, 0, sizeof k.rs);
	http_call_free(&k);
	return rc;
}

int http_request_xml(struct http_client *hc, const struct http_request *rq,
                     const char *root, struct xml_doc *d, char *err,
                     size_t errlen)
{
	struct http_response rs;
	int rc = -1;

	memset(d, 0, sizeof *d);
	if (http_request(hc, rq, &rs, err, errlen) == 0) {
		if (xml_parse(rs.body.p, rs.body.len, d) != 0) {
			msgf(err, errlen, "%s: %s: %s", hc->service, rq->what,
			     d->err);
		} else if (root && strcmp(d->root, root) != 0) {
			msgf(err, errlen, "%s: %s: the answer is a %s, not a %s",
			     hc->service, rq->what, d->root, root);
			xml_free(d);
		} else {
			rc = 0;
		}
	}
	http_response_free(&rs);
	return rc;
}
