/*
 * vakap.gpg's encrypt filter (gpg.h): gpg itself, run as a filter
 * process (proc.filter) with the keys resolved before it starts; its
 * status lines (its stderr's tail) say at its end what went wrong.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include "gpg/gpg.h"
#include "proc.h"

/* What gpg's status lines (its stderr's tail) say about how it ended. */
struct gpg_status {
	unsigned long failure;     /* FAILURE's error code, 0 if none */
	int inv_recp;              /* INV_RECP's reason, -1 if none */
	char inv_who[64];
	int inv_sgnr;              /* INV_SGNR was seen */
	int sig_created;           /* SIG_CREATED was seen */
	char said[256];            /* its last line that is not a status line */
};

static void read_status(const char *tail, struct gpg_status *st)
{
	const char *line, *end;

	memset(st, 0, sizeof *st);
	st->inv_recp = -1;
	for (line = tail; *line; line = *end ? end + 1 : end) {
		int len;

		end = strchr(line, '\n');
		if (end == NULL)
			end = line + strlen(line);
		len = (int)(end - line);
		if (strncmp(line, "[GNUPG:] ", 9) != 0) {
			if (len > 0)
				snprintf(st->said, sizeof st->said, "%.*s", len, line);
			continue;
		}
		line += 9;
		if (strncmp(line, "FAILURE ", 8) == 0)
			sscanf(line, "FAILURE %*s %lu", &st->failure);
		else if (strncmp(line, "INV_RECP ", 9) == 0)
			sscanf(line, "INV_RECP %d %63s", &st->inv_recp, st->inv_who);
		else if (strncmp(line, "INV_SGNR ", 9) == 0)
			st->inv_sgnr = 1;
		else if (strncmp(line, "SIG_CREATED ", 12) == 0)
			st->sig_created = 1;
	}
}

/* INV_RECP's reasons, as gpg's DETAILS lists them. */
static const char *recipient_reason(int reason)
{
	switch (reason) {
	case 1: return "not found";
	case 2: return "ambiguous";
	case 3: return "wrong key usage";
	case 4: return "revoked";
	case 5: return "expired";
	case 10: return "not trusted";
	case 13: return "disabled";
	default: return "unusable";
	}
}

/* gpg has ended (failed: with an error): 0 when it encrypted (and signed),
 * else fail the stream with what its status lines tell. */
static int encrypt_outcome(struct gpg_filter *f, const char *tail, int failed)
{
	struct gpg_status st;
	gpgme_err_code_t code;
	char msg[512];

	read_status(tail, &st);
	if (!failed) {
		if (f->signer_fpr[0] && !st.sig_created)
			return vk_fail(&f->s, "gpg: signing with %s failed",
			               f->signer_fpr);
		return 0;
	}
	code = gpgme_err_code((gpgme_error_t)st.failure);
	if (f->signer_fpr[0] &&
	    vk_gpg_passphrase_refused(code, f->signer_fpr,
	                              f->passfile[0] ? f->passfile : NULL, msg,
	                              sizeof msg))
		return vk_fail(&f->s, "%s", msg);
	if (st.inv_recp >= 0)
		return vk_fail(&f->s, "gpg: recipient %s is not usable: %s",
		               st.inv_who, recipient_reason(st.inv_recp));
	if (st.inv_sgnr)
		return vk_fail(&f->s, "gpg: signing with %s failed", f->signer_fpr);
	if (st.failure)
		return vk_fail(&f->s, "gpg: cannot %s: %s",
		               f->signer_fpr[0] ? "encrypt and sign" : "encrypt",
		               gpgme_strerror((gpgme_error_t)st.failure));
	if (st.said[0])
		return vk_fail(&f->s, "%s", st.said);
	return vk_fail_up(&f->s);
}

static ssize_t encrypt_read(struct vk_stream *s, void *buf, size_t n)
{
	struct gpg_filter *f = (struct gpg_filter *)s;
	ssize_t r = vk_read(s->up, buf, n);
	const char *tail;

	if (r > 0)
		return r;
	/* a failure before gpg's end is its input's (or an interruption) */
	if (!vk_proc_filter_ran(s->up, &tail))
		return r == 0 ? 0 : vk_fail_up(s);
	return encrypt_outcome(f, tail, r < 0);
}

int vk_gpg_encrypt_argv(struct gpg_filter *f, const char *homedir,
                        char **argv, char *err, size_t errlen)
{
	gpgme_engine_info_t e = vk_gpg_engine();
	int n = 0, i;

	if (e == NULL) {
		snprintf(err, errlen, "gpg: gpgme knows of no gpg program");
		return -1;
	}
	argv[n++] = e->file_name;
	argv[n++] = "--batch";
	argv[n++] = "--no-tty";
	argv[n++] = "--quiet";
	argv[n++] = "--status-fd";
	argv[n++] = "2";
	argv[n++] = "--trust-model";
	argv[n++] = "always";
	if (homedir) {
		argv[n++] = "--homedir";
		argv[n++] = (char *)homedir;
	}
	/* the agent's cached passphrase, or the file's: never a prompt */
	argv[n++] = "--pinentry-mode";
	argv[n++] = f->passfile[0] ? "loopback" : "cancel";
	if (f->passphrase) {
		argv[n++] = "--passphrase-fd";
		argv[n++] = "3";
	}
	if (!f->compress) {
		argv[n++] = "--compress-algo";
		argv[n++] = "none";
	}
	argv[n++] = "--encrypt";
	for (i = 0; i < f->nkeys; i++) {
		argv[n++] = "--recipient";
		argv[n++] = f->key_fpr[i];
	}
	if (f->signer_fpr[0]) {
		argv[n++] = "--sign";
		argv[n++] = "--local-user";
		argv[n++] = f->signer_fpr;
	}
	argv[n++] = "--output";
	argv[n++] = "-";
	argv[n] = NULL;
	return 0;
}

static void encrypt_info(struct vk_stream *s, lua_State *L)
{
	struct gpg_filter *f = (struct gpg_filter *)s;

	vk_gpg_push_list(L, "recipients", f->key_fpr[0], sizeof f->key_fpr[0],
	                 f->nkeys);
	if (f->signer_fpr[0]) {
		lua_pushstring(L, f->signer_fpr);
		lua_setfield(L, -2, "signer");
	}
}

const struct vk_stream_ops vk_gpg_encrypt_ops = {
	.name = "gpg encrypt",
	.read = encrypt_read,
	.release = vk_gpg_release,
	.info = encrypt_info,
};
