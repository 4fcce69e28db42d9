/*
 * The HTTP transport of the s3 primitive, for any AWS service signed with
 * Signature Version 4 (s3/sign.h): a request is a host, a method, a path,
 * a query, headers and a body, signed afresh for each attempt and sent
 * with libcurl.  It knows nothing of buckets or objects.
 *
 * One loop (http_drive) makes every exchange and retries it: an attempt
 * that failed transiently (http_transient says what that is) is made
 * again after an exponential backoff with full jitter, up to the
 * client's retries.  A request answered whole (http_request) is driven to
 * its end at once; a streaming one (s3/download.c) is driven a little at
 * a time by its reader, and adds to the loop through hooks.
 *
 * How many times a request went out is counted, curl's own resends on a
 * reused connection that died too (they are not attempts of the loop): a
 * write sent more than once may meet itself, and its caller must know.
 *
 * Connections belong to the process that made them (http_conn's owner):
 * in a forked worker, a client makes new ones at its next attempt and
 * keeps the parent's aside untouched, neither used (the parent's
 * transfers would be garbled) nor closed (that would end the parent's TLS
 * sessions).  A transfer in flight at the fork fails in the child.
 */
#ifndef VAKAP_S3_HTTP_H
#define VAKAP_S3_HTTP_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <curl/curl.h>

#include "buf.h"
#include "s3/sign.h"
#include "s3/xml.h"

#define HTTP_MAX_RESPONSE (16 * 1024 * 1024) /* a larger answer is refused */
#define HTTP_MAX_HEADERS 4 /* a request's own headers, besides SigV4's */

/* snprintf for messages: what does not fit is cut, and that is fine. */
static inline void msgf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static inline void msgf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* A connection cache: curl's multi handle and the easy handle it drives. */
struct http_conn {
	CURLM *multi;
	CURL *easy;
	pid_t owner; /* the process that made them: only it uses or frees them */
	/* in a forked child, the parent's: kept as they were, untouched */
	CURLM *inherited_multi;
	CURL *inherited_easy;
};

/* 0, or -1 when memory ran out.  Closing twice is harmless. */
int http_conn_open(struct http_conn *k);
void http_conn_close(struct http_conn *k);

/* Where requests go, who signs them, how they are retried. */
struct http_client {
	const char *service;      /* "s3": the signing name, messages' prefix */
	char *scheme, *hostport;  /* the endpoint, "https", "s3.amazonaws.com" */
	char *region;
	char *access_key, *secret_key, *session_token; /* wiped when freed */
	int retries;
	long retry_base_ms, connect_timeout, stall_timeout;
	uint64_t rng;             /* the backoff's jitter */
	long long requests, retried;
	struct http_conn conn;    /* of the requests answered whole */
};

/* Free what the client holds (its connection too); twice is harmless. */
void http_client_free(struct http_client *hc);

struct http_request {
	const char *method;
	const char *host;      /* the Host, under the endpoint's scheme */
	const char *path;      /* encoded */
	const char *query;     /* "name=value&..." with values encoded, or NULL */
	struct s3_header headers[HTTP_MAX_HEADERS]; /* signed with the rest */
	size_t nheaders;
	const char *body;      /* NULL: none */
	size_t body_len;
	int md5;               /* send Content-MD5 */
	int error_in_200;      /* a 200 whose body is <Error> failed */
	int cleanup;           /* runs after an interruption too (an abort) */
	const char *what;      /* "PUT s3://bucket/key", for messages */
	long long *tally;      /* counts each attempt sent, or NULL */
};

/* Add a header to the request, unless value is NULL. */
void http_header(struct http_request *rq, const char *name, const char *value);

struct http_response {
	long status;           /* the last HTTP status; 0 when curl failed */
	struct vk_buf body;
	char etag[128];        /* without its quotes */
	long long length;      /* Content-Length, -1 unknown */
	char last_modified[64];
	int too_large;
	char code[64];         /* an error answer's AWS code ("NoSuchUpload") */
	int sent;              /* how many times the request went out: curl's
	                        * own resends on a reused connection count */
};

void http_response_free(struct http_response *rs);

/* Send a request, retrying what is transient.  0 with the answer in rs,
 * or -1 with a message in err and what is known of the last answer in rs
 * (its status, its code); rs->sent either way.  Free rs either way. */
int http_request(struct http_client *hc, const struct http_request *rq,
                 struct http_response *rs, char *err, size_t errlen);

/* http_request, and its answer read as XML whose root element is `root`
 * (any when NULL).  0 with the document in d (the caller frees it), or -1
 * with a message in err. */
int http_request_xml(struct http_client *hc, const struct http_request *rq,
                     const char *root, struct xml_doc *d, char *err,
                     size_t errlen);

/* The one definition of a transient failure: an attempt that ended with
 * curl's rc (stalled: stopped for moving no data), or else with an HTTP
 * status and an AWS error code (NULL: none), may succeed if made again. */
int http_transient(CURLcode rc, int stalled, long status, const char *code);

/* An ETag without its quotes, into dst of len bytes. */
void http_etag(char *dst, size_t len, const char *src, size_t n);

/* Now, as SigV4 writes it: "YYYYMMDDTHHMMSSZ". */
void http_amz_time(char out[17]);

/* ---- an exchange driven a little at a time ---- */

/* What a transfer's progress callback watches: an interruption, and a
 * transfer on which no byte moved for `stall` seconds.  (curl's own
 * CURLOPT_LOW_SPEED_* averages over several seconds: a stall right after
 * a burst would go unseen for longer than asked.) */
struct http_xfer {
	int cleanup;        /* not stopped by an interruption */
	int paused;         /* we paused it: not a stall */
	int stalled;        /* it was stopped for stalling */
	long stall;         /* seconds */
	curl_off_t dl, ul;  /* bytes moved at the last change */
	double last;        /* when they last changed */
};

struct http_call;

/* What a streaming exchange adds to the loop; each hook may be NULL. */
struct http_hooks {
	/* Before each attempt (the request's headers may change): 0, or -1
	 * with a message in err. */
	int (*attempt)(struct http_call *k, char *err, size_t errlen);
	/* The headers of the answer (its final status) have arrived. */
	void (*answer)(struct http_call *k);
	/* Bytes of a 2xx answer's body: n taken, 0 to fail the transfer, or
	 * CURL_WRITEFUNC_PAUSE (resume with http_resume). */
	size_t (*data)(struct http_call *k, const char *p, size_t n);
	/* Judge an attempt that ended, as http_judge does (which it calls). */
	int (*judge)(struct http_call *k, char *err, size_t errlen,
	             int *transient);
};

/* One exchange: its request, and the state of its current attempt. */
struct http_call {
	struct http_client *hc;
	struct http_conn *conn;
	struct http_request rq;
	const struct http_hooks *hooks;
	void *ctx;               /* the hooks' */
	int attempts, limit;     /* made, and allowed */
	int sent;                /* requests that went out, curl's resends too */
	int running, done, paused;
	int headers_done, headers_done_now;
	long status;             /* of the current answer's headers, 0 before */
	CURLcode result;         /* of the current attempt, once done */
	struct http_xfer x;
	struct http_response rs; /* its headers; the body unless data took it */
	struct curl_slist *hdrs;
	struct vk_buf url;
	size_t upload_pos;
	char payload_hash[65], md5[25];
};

/* Set k up for the request (copied; the strings it points to must
 * outlive k), on conn; 0, or -1 with a message in err.  Free k with
 * http_call_free, also after a failure. */
int http_call_init(struct http_call *k, struct http_client *hc,
                   struct http_conn *conn, const struct http_request *rq,
                   const struct http_hooks *hooks, void *ctx, char *err,
                   size_t errlen);
void http_call_free(struct http_call *k);

/* Make an attempt (the first: http_drive makes the others); 0, or -1
 * with a message in err. */
int http_start(struct http_call *k, char *err, size_t errlen);

/* Drive the exchange until `until` holds (1: the transfer goes on), or
 * until it is over: 0 when it succeeded, -1 when it failed for good, with
 * a message in err ("(after N attempts)" when there were several). */
int http_drive(struct http_call *k, int (*until)(struct http_call *k),
               char *err, size_t errlen);

/* The judgement of an attempt that ended: 0 done, or -1 with a message
 * in err and *transient set. */
int http_judge(struct http_call *k, char *err, size_t errlen,
               int *transient);

/* Resume a transfer that data paused. */
void http_resume(struct http_call *k);

/* Stop the current transfer. */
void http_stop(struct http_call *k);

#endif
