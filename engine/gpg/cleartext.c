/*
 * vakap.gpg's cleartext signatures (gpg.h): clearsign a small text, and
 * verify one cleartext-signed message, through gpgme's synchronous
 * operations on memory.
 *
 * A cleartext signature covers each line without its trailing spaces,
 * tabs and CRs, the lines joined by CRLF, and not the line end before
 * the signature.  So that what verify gives back is byte for byte what
 * clearsign was given, clearsign refuses a text one of whose lines ends
 * in a space, tab or CR, and hands gpg the text and one newline more;
 * verify takes gpg's plaintext, strips each line's end as the signature
 * does, and drops the last newline.  gpg cuts lines of 19995 characters
 * and more without failing: both refuse lines longer than LINE_MAX_SIGNED
 * (16 KiB) here.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include "gpg/gpg.h"

#define LINE_MAX_SIGNED 16384

static const char *const ARMOR[] = {
	"-----BEGIN PGP SIGNED MESSAGE-----",
	"-----BEGIN PGP SIGNATURE-----",
	"-----END PGP SIGNATURE-----",
};

/* Whether a signature leaves c out at the end of a line. */
static int trailing(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* The length of the line at p (at most n bytes, up to its newline). */
static size_t line_len(const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n);

	return nl ? (size_t)(nl - p) : n;
}

/* Whether clearsign can sign text so that verify gives it back: 0, or
 * -1 with why not. */
static int check_text(const char *text, size_t len, char *err, size_t errlen)
{
	size_t at = 0, n, line = 0;

	if (len > SIGNED_MAX) {
		snprintf(err, errlen, "gpg: clearsign: the text is %zu bytes, more "
		         "than the %d a signed message may hold", len,
		         SIGNED_MAX);
		return -1;
	}
	if (memchr(text, '\0', len)) {
		snprintf(err, errlen, "gpg: clearsign: the text holds a NUL byte: "
		         "only text can be clearsigned");
		return -1;
	}
	do {
		n = line_len(text + at, len - at);
		line++;
		if (n > LINE_MAX_SIGNED) {
			snprintf(err, errlen, "gpg: clearsign: line %zu is longer than "
			         "%d bytes", line, LINE_MAX_SIGNED);
			return -1;
		}
		if (n > 0 && trailing(text[at + n - 1])) {
			snprintf(err, errlen, "gpg: clearsign: line %zu ends in a space, "
			         "tab or CR, which a cleartext signature does not "
			         "cover", line);
			return -1;
		}
		at += n + 1;
	} while (at <= len);
	return 0;
}

/* Whether the line at p (n bytes) is the armor line `want`, perhaps with
 * spaces, tabs or a CR after it. */
static int is_armor(const char *p, size_t n, const char *want)
{
	size_t w = strlen(want);

	if (n < w || memcmp(p, want, w) != 0)
		return 0;
	for (; w < n; w++)
		if (!trailing(p[w]))
			return 0;
	return 1;
}

/* Why msg is not one cleartext-signed message and nothing else, or NULL
 * if it is: its first line opens it, its only other lines that begin
 * with five dashes open and close its signature (a signed line that
 * begins with a dash is escaped), and nothing but blank lines follow. */
static const char *not_one_message(const char *msg, size_t len)
{
	size_t at = 0, n, k;
	int seen = 0;

	if (memchr(msg, '\0', len))
		return "it holds a NUL byte";
	for (; at < len; at += n + 1) {
		n = line_len(msg + at, len - at);
		if (n > LINE_MAX_SIGNED + 2)
			return "a line is too long";
		if (seen == 3) {
			for (k = 0; k < n; k++)
				if (!trailing(msg[at + k]))
					return "text follows its signature";
			continue;
		}
		if (n >= 5 && memcmp(msg + at, "-----", 5) == 0) {
			if (!is_armor(msg + at, n, ARMOR[seen]))
				return seen == 0 ? "it does not begin with -----BEGIN "
				                   "PGP SIGNED MESSAGE-----"
				                 : "an armor line is out of place";
			seen++;
		} else if (seen == 0) {
			return "it does not begin with -----BEGIN PGP SIGNED MESSAGE-----";
		}
	}
	return seen == 3 ? NULL : "its signature is missing or cut short";
}

/* ---- clearsign ---- */

/* What signing holds, released by signing_end. */
struct signing {
	gpgme_ctx_t ctx;
	gpgme_key_t key;
	gpgme_data_t in, out;
	struct vk_buf text;   /* what gpg is given: the text and a newline */
	char *passphrase;
	struct key_check kc;
};

static void signing_end(struct signing *sg)
{
	if (sg->in)
		gpgme_data_release(sg->in);
	if (sg->out)
		gpgme_data_release(sg->out);
	if (sg->key)
		gpgme_key_unref(sg->key);
	if (sg->ctx)
		gpgme_release(sg->ctx);
	vk_gpg_forget(&sg->passphrase);
	vk_buf_free(&sg->text);
}

/* The signer resolved and usable, its passphrase read, a context that
 * signs with it, and the data.  0, or -1 with a message. */
static int signing_begin(struct signing *sg, const char *text, size_t len,
                         const struct sign_opts *o, char *err, size_t errlen)
{
	gpgme_error_t e;

	if (vk_gpg_look_up(o->homedir, o->signer, USE_SIGN, &sg->kc, err,
	                   errlen) < 0)
		return -1;
	if (sg->kc.problem) {
		vk_gpg_key_problem(&sg->kc, o->signer, USE_SIGN, err, errlen);
		return -1;
	}
	if (o->passfile && vk_gpg_read_passphrase(o->passfile, &sg->passphrase,
	                                          err, errlen) < 0)
		return -1;
	sg->ctx = vk_gpg_new_ctx(o->homedir, err, errlen);
	if (sg->ctx == NULL)
		return -1;
	vk_gpg_ctx_passphrase(sg->ctx, sg->passphrase);
	e = gpgme_get_key(sg->ctx, sg->kc.fpr, &sg->key, 1);
	if (!e)
		e = gpgme_signers_add(sg->ctx, sg->key);
	if (vk_buf_add(&sg->text, text, len) != 0 ||
	    vk_buf_add(&sg->text, "\n", 1) != 0)
		e = gpg_error(GPG_ERR_ENOMEM);
	if (!e)
		e = gpgme_data_new_from_mem(&sg->in, sg->text.p, sg->text.len, 0);
	if (!e)
		e = gpgme_data_new(&sg->out);
	if (e) {
		snprintf(err, errlen, "gpg: clearsign with %s: %s", sg->kc.fpr,
		         gpgme_strerror(e));
		return -1;
	}
	return 0;
}

/* Sign, and take the message into out.  0, or -1 with a message. */
static int signing_run(struct signing *sg, const char *passfile,
                       struct vk_buf *out, char *err, size_t errlen)
{
	gpgme_sign_result_t r;
	gpgme_error_t e;
	char *p;
	size_t n;

	e = gpgme_op_sign(sg->ctx, sg->in, sg->out, GPGME_SIG_MODE_CLEAR);
	if (e) {
		if (!vk_gpg_passphrase_refused(gpgme_err_code(e), sg->kc.fpr,
		                               passfile, err, errlen))
			snprintf(err, errlen, "gpg: clearsign with %s: %s",
			         sg->kc.fpr, gpgme_strerror(e));
		return -1;
	}
	r = gpgme_op_sign_result(sg->ctx);
	if (r == NULL || r->invalid_signers || r->signatures == NULL ||
	    r->signatures->next) {
		snprintf(err, errlen, "gpg: signing with %s failed", sg->kc.fpr);
		return -1;
	}
	p = gpgme_data_release_and_get_mem(sg->out, &n);
	sg->out = NULL;
	if (p == NULL || vk_buf_add(out, p, n) != 0) {
		gpgme_free(p);
		snprintf(err, errlen, "gpg: out of memory");
		return -1;
	}
	gpgme_free(p);
	return 0;
}

int vk_gpg_clearsign(const char *text, size_t len, const struct sign_opts *o,
                     struct vk_buf *out, char *err, size_t errlen)
{
	struct signing sg;
	int rc;

	if (check_text(text, len, err, errlen) < 0)
		return -1;
	memset(&sg, 0, sizeof sg);
	rc = signing_begin(&sg, text, len, o, err, errlen);
	if (rc == 0)
		rc = signing_run(&sg, o->passfile, out, err, errlen);
	signing_end(&sg);
	return rc;
}

/* ---- verify ---- */

/* What VALIDSIG lines said: a good signature's key, and the primary key
 * whose (sub)key it is. */
struct valid_sigs {
	int n;
	char fpr[MAX_SIGS][64];
	char primary[MAX_SIGS][64];
};

/* gpg's status lines, all of them ("full-status"); keeps VALIDSIG's. */
static gpgme_error_t status_cb(void *hook, const char *keyword,
                               const char *args)
{
	struct valid_sigs *vs = hook;

	if (strcmp(keyword, "VALIDSIG") != 0 || vs->n == MAX_SIGS)
		return 0;
	/* fpr date timestamp expires version reserved pk-algo hash-algo
	 * class primary-fpr */
	if (sscanf(args, "%63s %*s %*s %*s %*s %*s %*s %*s %*s %63s",
	           vs->fpr[vs->n], vs->primary[vs->n]) == 2)
		vs->n++;
	return 0;
}

/* What vakap calls a signature's state. */
static const char *sig_state(gpgme_error_t status)
{
	if (status == 0)
		return "good";
	switch (gpgme_err_code(status)) {
	case GPG_ERR_BAD_SIGNATURE: return "bad";
	case GPG_ERR_KEY_EXPIRED: return "expired-key";
	case GPG_ERR_CERT_REVOKED: return "revoked-key";
	case GPG_ERR_SIG_EXPIRED: return "expired-signature";
	case GPG_ERR_NO_PUBKEY: return "no-key";
	default: return "error";
	}
}

/* Copy the verify result's signatures into v.  0, or -1 with a message. */
static int take_sigs(gpgme_ctx_t ctx, struct verified *v, char *err,
                     size_t errlen)
{
	gpgme_verify_result_t r = gpgme_op_verify_result(ctx);
	gpgme_signature_t sig;

	v->nsigs = 0;
	for (sig = r ? r->signatures : NULL; sig; sig = sig->next) {
		struct verified_sig *s = &v->sigs[v->nsigs];

		if (v->nsigs == MAX_SIGS) {
			snprintf(err, errlen, "gpg: verify: the message has more than "
			         "%d signatures", MAX_SIGS);
			return -1;
		}
		snprintf(s->fpr, sizeof s->fpr, "%s", sig->fpr ? sig->fpr : "?");
		s->status = sig_state(sig->status);
		v->nsigs++;
	}
	if (v->nsigs == 0) {
		snprintf(err, errlen, "gpg: verify: the message has no signature "
		         "gpg can read");
		return -1;
	}
	return 0;
}

/* Name each signature's key by its primary key's fingerprint: VALIDSIG's
 * for a good one (or one by an expired or revoked key), else the
 * keyring's, when it holds the key the signature names. */
static void primary_fprs(gpgme_ctx_t ctx, const struct valid_sigs *vs,
                         struct verified *v)
{
	gpgme_key_t key;
	int i, j;

	for (i = 0; i < v->nsigs; i++) {
		struct verified_sig *s = &v->sigs[i];

		for (j = 0; j < vs->n; j++)
			if (strcmp(vs->fpr[j], s->fpr) == 0)
				break;
		if (j < vs->n) {
			snprintf(s->fpr, sizeof s->fpr, "%s", vs->primary[j]);
			continue;
		}
		if (strcmp(s->status, "no-key") == 0 ||
		    gpgme_get_key(ctx, s->fpr, &key, 0) != 0)
			continue;
		if (key->fpr)
			snprintf(s->fpr, sizeof s->fpr, "%s", key->fpr);
		gpgme_key_unref(key);
	}
}

/* gpg's plaintext p (n bytes) as the signature covers it: each line
 * without its trailing spaces, tabs and CRs, the last newline dropped.
 * 0, or -1 when memory ran out. */
static int canonical(const char *p, size_t n, struct vk_buf *text)
{
	size_t at, len, end;

	for (at = 0; at < n; at += len + 1) {
		len = line_len(p + at, n - at);
		for (end = len; end > 0 && trailing(p[at + end - 1]); end--)
			;
		vk_buf_add(text, p + at, end);
		if (at + len < n)
			vk_buf_add(text, "\n", 1);
	}
	if (text->len > 0 && text->p[text->len - 1] == '\n')
		text->p[--text->len] = '\0';
	return vk_buf_add(text, "", 0);
}

/* gpgme's verify of msg in ctx, its plaintext canonical in v->text.
 * 0, or -1 with a message. */
static int verify_run(gpgme_ctx_t ctx, const char *msg, size_t len,
                      struct verified *v, char *err, size_t errlen)
{
	gpgme_data_t in = NULL, out = NULL;
	gpgme_error_t e;
	char *p = NULL;
	size_t n = 0;

	e = gpgme_data_new_from_mem(&in, msg, len, 0);
	if (!e)
		e = gpgme_data_new(&out);
	if (!e)
		e = gpgme_op_verify(ctx, in, NULL, out);
	if (in)
		gpgme_data_release(in);
	if (out)
		p = gpgme_data_release_and_get_mem(out, &n);
	if (!e && canonical(p ? p : "", n, &v->text) != 0)
		e = gpg_error(GPG_ERR_ENOMEM);
	gpgme_free(p);
	if (e) {
		snprintf(err, errlen, "gpg: verify: cannot read the message: %s",
		         gpgme_strerror(e));
		return -1;
	}
	return take_sigs(ctx, v, err, errlen);
}

int vk_gpg_verify(const char *msg, size_t len, const char *homedir,
                  struct verified *v, char *err, size_t errlen)
{
	struct valid_sigs vs;
	const char *why;
	gpgme_ctx_t ctx;
	int rc;

	if (len > SIGNED_MAX) {
		snprintf(err, errlen, "gpg: verify: the message is %zu bytes, more "
		         "than the %d a signed message may hold", len,
		         SIGNED_MAX);
		return -1;
	}
	why = not_one_message(msg, len);
	if (why) {
		snprintf(err, errlen, "gpg: verify: not a signed message: %s", why);
		return -1;
	}
	ctx = vk_gpg_new_ctx(homedir, err, errlen);
	if (ctx == NULL)
		return -1;
	memset(&vs, 0, sizeof vs);
	vk_gpg_ctx_passphrase(ctx, NULL);
	gpgme_set_ctx_flag(ctx, "full-status", "1");
	gpgme_set_status_cb(ctx, status_cb, &vs);
	rc = verify_run(ctx, msg, len, v, err, errlen);
	if (rc == 0)
		primary_fprs(ctx, &vs, v);
	gpgme_release(ctx);
	return rc;
}
