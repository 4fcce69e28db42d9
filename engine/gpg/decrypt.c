/*
 * vakap.gpg's decrypt filter (gpg.h): gpgme's decrypt-and-verify, driven
 * by its external event loop -- a read polls gpg's pipes and runs gpgme's
 * handlers for the ready ones until there is output or the operation is
 * done -- then its reading of the recipients and signatures.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "gpg/gpg.h"

#define OUT_TARGET (64 * 1024)

static ssize_t in_read(void *handle, void *buf, size_t n)
{
	struct gpg_filter *f = handle;
	ssize_t r = vk_read(f->s.up, buf, n);

	if (r < 0) {
		f->up_failed = 1;
		errno = EIO;
	}
	return r;
}

static ssize_t out_write(void *handle, const void *buf, size_t n)
{
	struct gpg_filter *f = handle;

	if (vk_buf_add(&f->buf, buf, n) != 0) {
		errno = ENOMEM;
		return -1;
	}
	return (ssize_t)n;
}

static struct gpgme_data_cbs in_cbs = {.read = in_read};
static struct gpgme_data_cbs out_cbs = {.write = out_write};

static gpgme_error_t io_add(void *data, int fd, int dir, gpgme_io_cb_t fnc,
                            void *fnc_data, void **tag)
{
	struct gpg_filter *f = data;
	int i;

	for (i = 0; i < MAX_FDS; i++) {
		if (!f->io[i].used) {
			f->io[i] = (struct gpg_io){f, 1, fd, dir, fnc, fnc_data};
			*tag = &f->io[i];
			return 0;
		}
	}
	return gpg_error(GPG_ERR_GENERAL);
}

static void io_remove(void *tag)
{
	((struct gpg_io *)tag)->used = 0;
}

static void io_event(void *data, gpgme_event_io_t type, void *type_data)
{
	struct gpg_filter *f = data;
	gpgme_io_event_done_data_t done = type_data;

	if (type != GPGME_EVENT_DONE)
		return;
	f->done = 1;
	f->err = done->err ? done->err : done->op_err;
}

/* One round of the event loop: wait for a pipe, run its handler. */
static int gpg_round(struct gpg_filter *f)
{
	struct pollfd p[MAX_FDS];
	int which[MAX_FDS];
	int i, n = 0, r;

	for (i = 0; i < MAX_FDS; i++) {
		if (!f->io[i].used)
			continue;
		p[n].fd = f->io[i].fd;
		p[n].events = f->io[i].dir ? POLLIN : POLLOUT;
		p[n].revents = 0;
		which[n++] = i;
	}
	if (n == 0)
		return vk_fail(&f->s, "gpg: the operation stopped without an end");
	r = poll(p, (nfds_t)n, 1000);
	if (r < 0 && errno != EINTR)
		return vk_fail(&f->s, "gpg: %s", strerror(errno));
	if (vk_stopping())
		return vk_fail(&f->s, "gpg: interrupted");
	if (r <= 0)
		return 0;
	for (i = 0; i < n && !f->done; i++) {
		struct gpg_io *io = &f->io[which[i]];

		/* an earlier handler may have closed this pipe */
		if (p[i].revents && io->used && io->fd == p[i].fd)
			io->fnc(io->fnc_data, io->fd);
	}
	return 0;
}

static int gpg_start(struct gpg_filter *f)
{
	struct gpgme_io_cbs cbs = {io_add, f, io_remove, io_event, f};
	gpgme_error_t e;

	gpgme_set_io_cbs(f->ctx, &cbs);
	e = gpgme_op_decrypt_verify_start(f->ctx, f->in, f->out);
	if (e)
		return vk_fail(&f->s, "gpg: cannot start: %s", gpgme_strerror(e));
	f->started = 1;
	return 0;
}

static const char *sig_status(gpgme_signature_t sig)
{
	if (sig->status == 0)
		return "good";
	switch (gpgme_err_code(sig->status)) {
	case GPG_ERR_BAD_SIGNATURE: return "bad signature";
	case GPG_ERR_NO_PUBKEY: return "no public key to check it";
	case GPG_ERR_SIG_EXPIRED: return "signature expired";
	case GPG_ERR_KEY_EXPIRED: return "signed by an expired key";
	case GPG_ERR_CERT_REVOKED: return "signed by a revoked key";
	default: return gpgme_strerror(sig->status);
	}
}

/* The primary key of the key that made signature s, from the keyring:
 * what vakap trusts and records is the primary's fingerprint, while a
 * signing subkey makes the signature. */
static void primary_of(gpgme_ctx_t ctx, struct gpg_sig *s)
{
	gpgme_key_t key = NULL;

	s->primary[0] = '\0';
	if (strcmp(s->fpr, "?") == 0 ||
	    gpgme_get_key(ctx, s->fpr, &key, 0) != 0 || key == NULL)
		return;
	if (key->subkeys && key->subkeys->fpr)
		snprintf(s->primary, sizeof s->primary, "%s", key->subkeys->fpr);
	gpgme_key_unref(key);
}

/* Keep what decrypt learned: who it was for, and who signed it. */
static void keep_decrypt_results(struct gpg_filter *f)
{
	gpgme_decrypt_result_t dr = gpgme_op_decrypt_result(f->ctx);
	gpgme_verify_result_t vr = gpgme_op_verify_result(f->ctx);
	gpgme_recipient_t r;
	gpgme_signature_t sig;

	f->nenc_to = 0;
	for (r = dr ? dr->recipients : NULL; r && f->nenc_to < MAX_KEYS; r = r->next)
		snprintf(f->enc_to[f->nenc_to++], sizeof f->enc_to[0], "%s",
		         r->keyid ? r->keyid : "?");
	f->nsigs = 0;
	for (sig = vr ? vr->signatures : NULL; sig && f->nsigs < MAX_SIGS; sig = sig->next) {
		struct gpg_sig *s = &f->sigs[f->nsigs++];

		snprintf(s->fpr, sizeof s->fpr, "%s", sig->fpr ? sig->fpr : "?");
		snprintf(s->status, sizeof s->status, "%s", sig_status(sig));
		primary_of(f->ctx, s);
	}
}

static int decrypt_failure(struct gpg_filter *f)
{
	char ids[256] = "";
	int i;

	switch (gpgme_err_code(f->err)) {
	case GPG_ERR_NO_SECKEY:
		for (i = 0; i < f->nenc_to; i++) {
			if (strlen(ids) + strlen(f->enc_to[i]) + 3 >= sizeof ids)
				break;
			strcat(ids, i ? ", " : "");
			strcat(ids, f->enc_to[i]);
		}
		return vk_fail(&f->s, "gpg: cannot decrypt: no secret key here for "
		               "the keys it was encrypted to (%s)", ids);
	case GPG_ERR_NO_DATA:
		return vk_fail(&f->s, "gpg: cannot decrypt: no OpenPGP encrypted "
		               "data found");
	case GPG_ERR_BAD_DATA:
	case GPG_ERR_DECRYPT_FAILED:
		return vk_fail(&f->s, "gpg: cannot decrypt: the data is damaged "
		               "or was tampered with (%s)", gpgme_strerror(f->err));
	default:
		return vk_fail(&f->s, "gpg: cannot decrypt: %s",
		               gpgme_strerror(f->err));
	}
}

/* Whether signature s was made by one of the keys asked for. */
static int wanted(const struct gpg_filter *f, const struct gpg_sig *s)
{
	int i;

	for (i = 0; i < f->nwant; i++)
		if (strcmp(s->fpr, f->want_signer[i]) == 0 ||
		    (s->primary[0] && strcmp(s->primary, f->want_signer[i]) == 0))
			return 1;
	return 0;
}

/* Decrypted: a bad signature is a failure, and so is the lack of a good
 * one by a signer asked for. */
static int check_signatures(struct gpg_filter *f)
{
	int i, found = 0;
	const struct gpg_sig *other = NULL;

	for (i = 0; i < f->nsigs; i++) {
		if (strcmp(f->sigs[i].status, "bad signature") == 0)
			return vk_fail(&f->s, "gpg: the signature by %s is bad: the data "
			               "was changed after it was signed", f->sigs[i].fpr);
		if (strcmp(f->sigs[i].status, "good") == 0 && wanted(f, &f->sigs[i]))
			found = 1;
		else if (other == NULL)
			other = &f->sigs[i];
	}
	if (f->nwant == 0 || found)
		return 0;
	if (other == NULL)
		return vk_fail(&f->s, "gpg: no good signature by a trusted signer "
		               "(%s%s): it is not signed", f->want_signer[0],
		               f->nwant > 1 ? ", ..." : "");
	return vk_fail(&f->s, "gpg: no good signature by a trusted signer "
	               "(%s%s): it is signed by %s (%s), who is not one",
	               f->want_signer[0], f->nwant > 1 ? ", ..." : "",
	               other->primary[0] ? other->primary : other->fpr,
	               other->status);
}

/* Decrypting is done: 0 when it went well, else fail the stream. */
static int gpg_finish(struct gpg_filter *f)
{
	if (f->up_failed)
		return vk_fail_up(&f->s);
	keep_decrypt_results(f);
	return f->err ? decrypt_failure(f) : check_signatures(f);
}

static ssize_t gpg_read(struct vk_stream *s, void *buf, size_t n)
{
	struct gpg_filter *f = (struct gpg_filter *)s;

	if (!f->started && gpg_start(f) < 0)
		return -1;
	if (f->off == f->buf.len) {
		f->off = f->buf.len = 0;
		while (f->buf.len < OUT_TARGET && !f->done)
			if (gpg_round(f) < 0)
				return -1;
	}
	if (f->off < f->buf.len) {
		if (n > f->buf.len - f->off)
			n = f->buf.len - f->off;
		memcpy(buf, f->buf.p + f->off, n);
		f->off += n;
		return (ssize_t)n;
	}
	return gpg_finish(f);
}

static void decrypt_info(struct vk_stream *s, lua_State *L)
{
	struct gpg_filter *f = (struct gpg_filter *)s;
	int i;

	if (s->state != VK_EOF && s->state != VK_FAILED)
		return;
	vk_gpg_push_list(L, "encrypted_to", f->enc_to[0], sizeof f->enc_to[0],
	                 f->nenc_to);
	lua_createtable(L, f->nsigs, 0);
	for (i = 0; i < f->nsigs; i++) {
		lua_createtable(L, 0, 3);
		lua_pushstring(L, f->sigs[i].fpr);
		lua_setfield(L, -2, "fingerprint");
		lua_pushstring(L, f->sigs[i].status);
		lua_setfield(L, -2, "status");
		lua_pushboolean(L, strcmp(f->sigs[i].status, "good") == 0);
		lua_setfield(L, -2, "good");
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "signatures");
}

int vk_gpg_decrypt_setup(struct gpg_filter *f, const char *homedir,
                         char *err, size_t errlen)
{
	gpgme_error_t e;

	f->ctx = vk_gpg_new_ctx(homedir, err, errlen);
	if (f->ctx == NULL)
		return -1;
	vk_gpg_ctx_passphrase(f->ctx, f->passphrase);
	e = gpgme_data_new_from_cbs(&f->in, &in_cbs, f);
	if (!e)
		e = gpgme_data_new_from_cbs(&f->out, &out_cbs, f);
	if (e) {
		snprintf(err, errlen, "gpg: %s", gpgme_strerror(e));
		return -1;
	}
	return 0;
}

const struct vk_stream_ops vk_gpg_decrypt_ops = {
	.name = "gpg decrypt",
	.read = gpg_read,
	.release = vk_gpg_release,
	.info = decrypt_info,
};
