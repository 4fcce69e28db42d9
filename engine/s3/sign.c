/*
 * AWS Signature Version 4 (see s3/sign.h): the canonical request,
 * the string to sign, the derived key and the signature, for the
 * Authorization header and for presigned URLs.
 *
 * S3 differs from the other services in two ways that matter here: the
 * path is encoded once (not twice) and never normalised ("a/../b" is a
 * key), and the payload's SHA-256 is a header of its own.
 */
#define _POSIX_C_SOURCE 200809L

#include "s3/sign.h"
#include "base.h" /* vk_hex */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* ---- encoding ---- */

static const char hexdigits[] = "0123456789ABCDEF";

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

int s3_uri_encode(struct vk_buf *out, const char *s, size_t len, int keep_slash)
{
	size_t i;

	if (vk_buf_reserve(out, len * 3) != 0)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			out->p[out->len++] = (char)c;
		} else {
			out->p[out->len++] = '%';
			out->p[out->len++] = hexdigits[c >> 4];
			out->p[out->len++] = hexdigits[c & 15];
		}
	}
	out->p[out->len] = '\0';
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Encode s[0..len) after decoding its %XX escapes (a stray '%' stays). */
static int reencode(struct vk_buf *out, const char *s, size_t len)
{
	struct vk_buf raw = {0};
	size_t i;
	int rc;

	for (i = 0; i < len; i++) {
		char c = s[i];
		if (c == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 &&
		    hexval(s[i + 2]) >= 0) {
			c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		}
		if (vk_buf_add(&raw, &c, 1) != 0) {
			vk_buf_free(&raw);
			return -1;
		}
	}
	rc = s3_uri_encode(out, raw.p ? raw.p : "", raw.len, 0);
	vk_buf_free(&raw);
	return rc;
}

struct qpair {
	char *name, *value;
};

static int cmp_qpair(const void *a, const void *b)
{
	const struct qpair *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

int s3_canonical_query(struct vk_buf *out, const char *query)
{
	struct qpair *pairs = NULL;
	size_t n = 0, cap = 0, i;
	const char *p = query ? query : "";
	int rc = -1;

	while (*p) {
		const char *end = strchr(p, '&'), *eq;
		struct vk_buf name = {0}, value = {0};
		size_t seg;

		if (end == NULL)
			end = p + strlen(p);
		seg = (size_t)(end - p);
		if (seg > 0) {
			eq = memchr(p, '=', seg);
			if (reencode(&name, p, eq ? (size_t)(eq - p) : seg) != 0 ||
			    (eq ? reencode(&value, eq + 1, (size_t)(end - eq - 1))
			        : vk_buf_adds(&value, "")) != 0 ||
			    vk_buf_adds(&name, "") != 0)
				goto pair_failed;
			if (n == cap) {
				struct qpair *np;
				cap = cap ? cap * 2 : 8;
				np = realloc(pairs, cap * sizeof *pairs);
				if (np == NULL)
					goto pair_failed;
				pairs = np;
			}
			pairs[n].name = name.p;
			pairs[n].value = value.p;
			n++;
		}
		p = *end ? end + 1 : end;
		continue;
	pair_failed:
		vk_buf_free(&name);
		vk_buf_free(&value);
		goto done;
	}
	if (n > 1)
		qsort(pairs, n, sizeof *pairs, cmp_qpair);
	for (i = 0; i < n; i++)
		if (vk_buf_printf(out, "%s%s=%s", i ? "&" : "", pairs[i].name,
		              pairs[i].value) != 0)
			goto done;
	rc = vk_buf_adds(out, "");
done:
	for (i = 0; i < n; i++) {
		free(pairs[i].name);
		free(pairs[i].value);
	}
	free(pairs);
	return rc;
}

/* ---- digests ---- */

void s3_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	vk_hex(hex, md, 32);
}

void s3_md5_hex(const void *data, size_t len, char hex[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_Digest(data, len, md, &n, EVP_md5(), NULL);
	vk_hex(hex, md, 16);
}

void s3_md5_base64(const void *data, size_t len, char b64[25])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_Digest(data, len, md, &n, EVP_md5(), NULL);
	EVP_EncodeBlock((unsigned char *)b64, md, 16);
}

void s3_wipe(void *p, size_t n)
{
	if (p != NULL)
		OPENSSL_cleanse(p, n);
}

static void hmac(const void *key, size_t keylen, const char *msg,
                 unsigned char out[32])
{
	unsigned int n = 32;

	HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg,
	     strlen(msg), out, &n);
}

/* ---- headers ---- */

struct chdr {
	char *name;  /* lower-case */
	char *value; /* trimmed, inner runs of blanks as one space */
	size_t order;
};

static int cmp_chdr(const void *a, const void *b)
{
	const struct chdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static char *lower_dup(const char *s)
{
	char *d = strdup(s), *p;

	if (d)
		for (p = d; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	return d;
}

static int blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static char *canonical_value(const char *v)
{
	char *d = malloc(strlen(v) + 1), *q = d;

	if (d == NULL)
		return NULL;
	while (blank(*v))
		v++;
	while (*v) {
		if (blank(*v)) {
			while (blank(*v))
				v++;
			if (*v)
				*q++ = ' ';
		} else {
			*q++ = *v++;
		}
	}
	*q = '\0';
	return d;
}

static int valid_time(const char *t)
{
	int i;

	if (t == NULL || strlen(t) != 16 || t[8] != 'T' || t[15] != 'Z')
		return 0;
	for (i = 0; i < 15; i++)
		if (i != 8 && (t[i] < '0' || t[i] > '9'))
			return 0;
	return 1;
}

/* canonical headers ("name:value\n"...) and the signed header list */
static int build_headers(const struct s3_sign_input *in, struct vk_buf *canon,
                         struct vk_buf *signed_list)
{
	size_t n = in->nheaders, i, k = 0;
	struct chdr *h = calloc(n + 1, sizeof *h);
	int has_token = 0, rc = -1;

	if (h == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (in->headers[i].name == NULL || in->headers[i].value == NULL ||
		    in->headers[i].name[0] == '\0')
			goto done;
		h[k].name = lower_dup(in->headers[i].name);
		h[k].value = canonical_value(in->headers[i].value);
		h[k].order = k;
		k++;
		if (h[k - 1].name == NULL || h[k - 1].value == NULL)
			goto done;
		if (strcmp(h[k - 1].name, "x-amz-security-token") == 0)
			has_token = 1;
	}
	if (in->session_token && in->session_token[0] && !has_token) {
		h[k].name = strdup("x-amz-security-token");
		h[k].value = strdup(in->session_token);
		h[k].order = k;
		k++;
		if (h[k - 1].name == NULL || h[k - 1].value == NULL)
			goto done;
	}
	if (k > 1)
		qsort(h, k, sizeof *h, cmp_chdr);
	for (i = 0; i < k; i++) {
		if (i > 0 && strcmp(h[i].name, h[i - 1].name) == 0) {
			/* a repeated header: its values joined with commas */
			canon->len--; /* the '\n' */
			if (vk_buf_printf(canon, ",%s\n", h[i].value) != 0)
				goto done;
			continue;
		}
		if (vk_buf_printf(canon, "%s:%s\n", h[i].name, h[i].value) != 0 ||
		    vk_buf_printf(signed_list, "%s%s", signed_list->len ? ";" : "",
		              h[i].name) != 0)
			goto done;
	}
	rc = 0;
done:
	for (i = 0; i < n + 1; i++) {
		free(h[i].name);
		if (h[i].value) {
			s3_wipe(h[i].value, strlen(h[i].value));
			free(h[i].value);
		}
	}
	free(h);
	return rc;
}

/* ---- signing ---- */

int s3_sign(const struct s3_sign_input *in, struct s3_signature *out)
{
	struct vk_buf canon = {0}, signed_list = {0}, query = {0}, keybuf = {0};
	const char *service = in->service ? in->service : "s3";
	unsigned char k[32], sig[32];
	char creq_hash[65], date[9];
	int rc = -1;

	memset(out, 0, sizeof *out);
	if (!valid_time(in->time) || in->method == NULL || in->path == NULL ||
	    in->payload_hash == NULL || in->region == NULL ||
	    in->access_key == NULL || in->secret_key == NULL)
		return -1;
	memcpy(date, in->time, 8);
	date[8] = '\0';
	if (build_headers(in, &canon, &signed_list) != 0 ||
	    s3_canonical_query(&query, in->query) != 0)
		goto done;
	if (vk_buf_printf(&out->canonical_request, "%s\n%s\n%s\n%s\n%s\n%s",
	              in->method, in->path, query.p, canon.p ? canon.p : "",
	              signed_list.p ? signed_list.p : "",
	              in->payload_hash) != 0)
		goto done;
	s3_sha256_hex(out->canonical_request.p, out->canonical_request.len,
	              creq_hash);
	if (vk_buf_printf(&out->string_to_sign,
	              "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s",
	              in->time, date, in->region, service, creq_hash) != 0)
		goto done;
	if (vk_buf_printf(&keybuf, "AWS4%s", in->secret_key) != 0)
		goto done;
	hmac(keybuf.p, keybuf.len, date, k);
	hmac(k, sizeof k, in->region, k);
	hmac(k, sizeof k, service, k);
	hmac(k, sizeof k, "aws4_request", k);
	hmac(k, sizeof k, out->string_to_sign.p, sig);
	vk_hex(out->signature, sig, sizeof sig);
	if (vk_buf_printf(&out->authorization,
	              "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
	              "SignedHeaders=%s, Signature=%s",
	              in->access_key, date, in->region, service,
	              signed_list.p ? signed_list.p : "", out->signature) != 0)
		goto done;
	rc = 0;
done:
	s3_wipe(k, sizeof k);
	s3_wipe(keybuf.p, keybuf.len);
	vk_buf_free(&keybuf);
	vk_buf_free(&canon);
	vk_buf_free(&signed_list);
	vk_buf_free(&query);
	return rc;
}

void s3_signature_free(struct s3_signature *sig)
{
	s3_wipe(sig->authorization.p, sig->authorization.len);
	vk_buf_free(&sig->canonical_request);
	vk_buf_free(&sig->string_to_sign);
	vk_buf_free(&sig->authorization);
	s3_wipe(sig->signature, sizeof sig->signature);
}

int s3_presign(const struct s3_presign_input *in, struct vk_buf *url_query)
{
	struct vk_buf q = {0}, enc = {0};
	struct s3_header host = {"host", in->host};
	struct s3_sign_input si;
	struct s3_signature sig;
	int rc = -1;

	if (!valid_time(in->time) || in->expires < 1 || in->expires > 604800)
		return -1;
	if (vk_buf_printf(&enc, "%s/%.8s/%s/s3/aws4_request", in->access_key,
	              in->time, in->region) != 0 ||
	    vk_buf_adds(&q, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=") ||
	    s3_uri_encode(&q, enc.p, enc.len, 0) != 0 ||
	    vk_buf_printf(&q, "&X-Amz-Date=%s&X-Amz-Expires=%ld", in->time,
	              in->expires) != 0)
		goto done;
	if (in->session_token && in->session_token[0] &&
	    (vk_buf_adds(&q, "&X-Amz-Security-Token=") != 0 ||
	     s3_uri_encode(&q, in->session_token, strlen(in->session_token),
	                   0) != 0))
		goto done;
	if (vk_buf_adds(&q, "&X-Amz-SignedHeaders=host") != 0)
		goto done;
	memset(&si, 0, sizeof si);
	si.method = in->method;
	si.path = in->path;
	si.query = q.p;
	si.headers = &host;
	si.nheaders = 1;
	si.payload_hash = "UNSIGNED-PAYLOAD";
	si.region = in->region;
	si.access_key = in->access_key;
	si.secret_key = in->secret_key;
	si.time = in->time;
	if (s3_sign(&si, &sig) == 0)
		rc = s3_canonical_query(url_query, q.p) != 0 ||
		     vk_buf_printf(url_query, "&X-Amz-Signature=%s", sig.signature);
	s3_signature_free(&sig);
done:
	vk_buf_free(&q);
	vk_buf_free(&enc);
	return rc ? -1 : 0;
}
