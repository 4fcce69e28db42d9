/*
 * AWS Signature Version 4 for S3, and the small pieces around it:
 * S3's URI encoding, the canonical query, digests.
 * Pure computation (OpenSSL for the hashes), no I/O: part of the s3
 * primitive, kept apart so the cmocka tests can check it against AWS's
 * published test suite.
 *
 * Functions that build strings return 0, or -1 when memory ran out.
 */
#ifndef VAKAP_S3_SIGN_H
#define VAKAP_S3_SIGN_H

#include <stddef.h>

#include "buf.h"

/* S3's URI encoding: every byte but A-Za-z0-9-._~ as %XX (upper-case
 * hex); '/' kept when keep_slash. */
int s3_uri_encode(struct vk_buf *out, const char *s, size_t len, int keep_slash);

/* The canonical form of a raw query string ("b=2&a=1&flag"): each name and
 * value percent-decoded (so encoded and plain input give the same result)
 * then encoded again, sorted by name then value, "name=value" joined by
 * '&'.  A '+' is a plus sign, not a space. */
int s3_canonical_query(struct vk_buf *out, const char *query);

/* Hex digests (65 and 33 bytes with the NUL) and the base64 MD5 S3's
 * Content-MD5 wants (25 bytes with the NUL). */
void s3_sha256_hex(const void *data, size_t len, char hex[65]);
void s3_md5_hex(const void *data, size_t len, char hex[33]);
void s3_md5_base64(const void *data, size_t len, char b64[25]);

struct s3_header {
	const char *name;
	const char *value;
};

struct s3_sign_input {
	const char *method;
	const char *path;          /* the canonical URI, already encoded */
	const char *query;         /* raw query string, or NULL */
	const struct s3_header *headers; /* all of them are signed */
	size_t nheaders;
	const char *payload_hash;  /* hex SHA-256, or "UNSIGNED-PAYLOAD" */
	const char *region;
	const char *service;       /* NULL: "s3" */
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL or "": none; else signed as the
	                            * x-amz-security-token header unless the
	                            * headers already have it */
	const char *time;          /* "YYYYMMDDTHHMMSSZ" */
};

struct s3_signature {
	struct vk_buf canonical_request;
	struct vk_buf string_to_sign;
	struct vk_buf authorization;
	char signature[65];
};

/* Sign a request for the Authorization header.  Returns 0, or -1 (out of
 * memory, or a malformed time or header).  Free the result with
 * s3_signature_free, also after a failure. */
int s3_sign(const struct s3_sign_input *in, struct s3_signature *out);
void s3_signature_free(struct s3_signature *sig);

/* Query-string signing (a presigned URL).  Appends to url_query the whole
 * query, X-Amz-Signature last; host is the Host the URL will name.  The
 * payload is UNSIGNED-PAYLOAD, the only signed header host. */
struct s3_presign_input {
	const char *method;
	const char *host;
	const char *path;          /* canonical URI, encoded */
	const char *region;
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL or "" for none */
	const char *time;
	long expires;              /* seconds, 1 to 604800 */
};
int s3_presign(const struct s3_presign_input *in, struct vk_buf *url_query);

/* Wipe a secret before its memory is freed. */
void s3_wipe(void *p, size_t n);

#endif
