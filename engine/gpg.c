/*
 * vakap.gpg: OpenPGP.  An encrypt filter (to one or more recipients,
 * optionally signed), a decrypt filter that reports the signatures it
 * found, and key lookups (through gpgme) that let vakap refuse a key
 * before any data moves.
 *
 * Encrypting runs gpg itself as a filter process (proc.filter): the
 * stream goes to its stdin through a wide pipe, the message comes from
 * its stdout, and its status lines (--status-fd 2) say at its end what
 * went wrong.  gpgme is not in that path: gpgme 1.18 formats every byte it
 * moves between pipes into a debug line, even with tracing off, which cost
 * a third of the backup chain's CPU.
 *
 * Decrypting goes through gpgme, for its reading of the signatures and
 * recipients: a read of the filter polls gpg's pipes and runs gpgme's
 * handlers for the ready ones -- handing gpg the upstream's bytes when it
 * wants input, collecting what it writes -- until there is output for the
 * reader or the operation is done.  So no thread, and no more than one
 * round's output is held at a time.  gpgme writes to gpg's pipes in pieces
 * of at most 4 KiB (its default, kept on purpose): a pipe that polls
 * writable takes that much without blocking, so a write can never wait on
 * gpg while gpg waits on us to read.
 *
 * Recipients are resolved here, each to exactly one key usable for
 * encryption; a name that matches no key, or several, or a key that is
 * expired, revoked or disabled, fails the stream before gpg starts.  With
 * the keys resolved explicitly, gpg is told to trust them as given.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* explicit_bzero */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gpgme.h>
#include <lauxlib.h>

#include "engine.h"
#include "proc.h"
#include "stream.h"

#define MAX_FDS 8          /* gpg's pipes: data in, data out, status, command */
#define MAX_KEYS 32        /* recipients of one stream */
#define MAX_SIGS 8         /* signatures reported by decrypt */
#define OUT_TARGET (64 * 1024)
#define PASS_MAX 1024
#define PASS_BUF (PASS_MAX + 2) /* and a newline, and its end */

enum key_use { USE_ENCRYPT, USE_SIGN };

/* ---- key lookup ---- */

/* What a lookup found: the one key a name names, and whether it can be
 * used. */
struct key_check {
	char fpr[64];
	char uid[256];
	long expires;         /* when it stops being usable; 0: never */
	const char *problem;  /* why it cannot be used, or NULL */
};

static const char *uid_of(gpgme_key_t key)
{
	return key->uids && key->uids->uid ? key->uids->uid : "(no user id)";
}

static long earlier(long a, long b)
{
	if (a == 0)
		return b;
	if (b == 0)
		return a;
	return a < b ? a : b;
}

/* Judge a listed key for `use`: usable when its primary key is valid and
 * one of its subkeys can do the job (and, to sign, has its secret here). */
static void judge(gpgme_key_t key, enum key_use use, struct key_check *kc)
{
	gpgme_subkey_t sk, best = NULL;

	kc->problem = NULL;
	kc->expires = 0;
	if (key->revoked)
		kc->problem = "revoked";
	else if (key->expired)
		kc->problem = "expired";
	else if (key->disabled)
		kc->problem = "disabled";
	else if (key->invalid)
		kc->problem = "invalid";
	if (kc->problem)
		return;
	for (sk = key->subkeys; sk; sk = sk->next) {
		int able = use == USE_ENCRYPT ? sk->can_encrypt
		                              : sk->can_sign && sk->secret;
		if (!able || sk->revoked || sk->expired || sk->disabled ||
		    sk->invalid)
			continue;
		/* gpg takes the newest usable subkey */
		if (best == NULL || sk->timestamp > best->timestamp)
			best = sk;
	}
	if (best == NULL) {
		kc->problem = use == USE_ENCRYPT
			? "has no subkey usable for encryption (expired, revoked or missing)"
			: "has no secret subkey usable for signing here";
		return;
	}
	kc->expires = earlier(key->subkeys->expires, best->expires);
}

/* Find the one key `name` (a fingerprint or a user id) names, for `use`.
 * Returns 0 with kc filled (kc->problem set when the key is unusable), or
 * -1 with a message in err when there is no such key or more than one. */
static int find_key(gpgme_ctx_t ctx, const char *name, enum key_use use,
                    struct key_check *kc, char *err, size_t errlen)
{
	const char *role = use == USE_ENCRYPT ? "recipient" : "signing key";
	gpgme_key_t key, first = NULL;
	gpgme_error_t e;
	char others[256] = "";
	int n = 0;

	e = gpgme_op_keylist_start(ctx, name, use == USE_SIGN);
	while (!e && !(e = gpgme_op_keylist_next(ctx, &key))) {
		if (n++ == 0) {
			first = key;
			continue;
		}
		if (n == 2)
			snprintf(others, sizeof others, "%s", first->fpr);
		if (strlen(others) + strlen(key->fpr) + 3 < sizeof others) {
			strcat(others, ", ");
			strcat(others, key->fpr);
		}
		gpgme_key_unref(key);
	}
	gpgme_op_keylist_end(ctx);
	if (gpgme_err_code(e) != GPG_ERR_EOF) {
		snprintf(err, errlen, "gpg: looking up %s '%s': %s", role, name,
		         gpgme_strerror(e));
		goto fail;
	}
	if (n == 0) {
		snprintf(err, errlen, "gpg: %s '%s': no %s key found in the keyring",
		         role, name, use == USE_SIGN ? "secret" : "public");
		return -1;
	}
	if (n > 1) {
		snprintf(err, errlen, "gpg: %s '%s' matches %d keys (%s): name one "
		         "by its fingerprint", role, name, n, others);
		goto fail;
	}
	snprintf(kc->fpr, sizeof kc->fpr, "%s", first->fpr);
	snprintf(kc->uid, sizeof kc->uid, "%s", uid_of(first));
	judge(first, use, kc);
	gpgme_key_unref(first);
	return 0;
fail:
	if (first)
		gpgme_key_unref(first);
	return -1;
}

/* The describing message of an unusable key. */
static void key_problem(const struct key_check *kc, const char *name,
                        enum key_use use, char *err, size_t errlen)
{
	snprintf(err, errlen, "gpg: %s '%s' (%s, %s) cannot be used: %s",
	         use == USE_ENCRYPT ? "recipient" : "signing key", name,
	         kc->fpr, kc->uid, kc->problem);
}

/* The home directory of gpgme's process-wide engine info, which new
 * contexts take: "" for gpg's default.  gpgme runs `gpg --version` each
 * time it is given one, for a context as for the process, so it is given
 * one here once per change, not to each context. */
static char engine_home[4096];
static int engine_home_set;

static int use_homedir(const char *homedir, char *err, size_t errlen)
{
	const char *want = homedir ? homedir : "";
	gpgme_error_t e;

	e = gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP);
	if (e) {
		snprintf(err, errlen, "gpg: the gpg program is not usable: %s",
		         gpgme_strerror(e));
		return -1;
	}
	if (engine_home_set && strcmp(engine_home, want) == 0)
		return 0;
	if (strlen(want) >= sizeof engine_home) {
		snprintf(err, errlen, "gpg: home directory %.200s...: name too long", want);
		return -1;
	}
	e = gpgme_set_engine_info(GPGME_PROTOCOL_OpenPGP, NULL, homedir);
	if (e) {
		snprintf(err, errlen, "gpg: home directory %s: %s", want,
		         gpgme_strerror(e));
		engine_home_set = 0;
		return -1;
	}
	memcpy(engine_home, want, strlen(want) + 1);
	engine_home_set = 1;
	return 0;
}

/* gpgme's engine info for gpg (after use_homedir), or NULL. */
static gpgme_engine_info_t openpgp_engine(void)
{
	gpgme_engine_info_t e;

	if (gpgme_get_engine_info(&e) != 0)
		return NULL;
	while (e && e->protocol != GPGME_PROTOCOL_OpenPGP)
		e = e->next;
	return e && e->file_name ? e : NULL;
}

/* A context for homedir (NULL: gpg's default), or NULL with a message. */
static gpgme_ctx_t new_ctx(const char *homedir, char *err, size_t errlen)
{
	gpgme_ctx_t ctx;
	gpgme_error_t e;

	if (use_homedir(homedir, err, errlen) < 0)
		return NULL;
	e = gpgme_new(&ctx);
	if (e) {
		snprintf(err, errlen, "gpg: %s", gpgme_strerror(e));
		return NULL;
	}
	gpgme_set_armor(ctx, 0);
	gpgme_set_keylist_mode(ctx, GPGME_KEYLIST_MODE_LOCAL);
	return ctx;
}

/* The keys this process looked up in the last minute.  The check of a
 * site's keys before its first component, and each component's encrypt
 * filter a moment later, run one gpg between them, not one each.  A key
 * that became unusable in between is still refused by gpg itself. */
#define KEY_CACHE 16
#define KEY_CACHE_SECONDS 60

static struct cached_key {
	char home[256], name[256];
	enum key_use use;
	time_t at;            /* 0: empty */
	struct key_check kc;
} key_cache[KEY_CACHE];
static unsigned key_cache_next;

/* find_key in homedir's keyring, or its answer of the last minute. */
static int look_up(const char *homedir, const char *name, enum key_use use,
                   struct key_check *kc, char *err, size_t errlen)
{
	const char *home = homedir ? homedir : "";
	time_t now = time(NULL);
	struct cached_key *c;
	gpgme_ctx_t ctx;
	int i, rc;

	for (i = 0; i < KEY_CACHE; i++) {
		c = &key_cache[i];
		if (c->at && now - c->at < KEY_CACHE_SECONDS && c->use == use &&
		    strcmp(c->home, home) == 0 && strcmp(c->name, name) == 0) {
			*kc = c->kc;
			return 0;
		}
	}
	ctx = new_ctx(homedir, err, errlen);
	if (ctx == NULL)
		return -1;
	rc = find_key(ctx, name, use, kc, err, errlen);
	gpgme_release(ctx);
	if (rc == 0 && strlen(home) < sizeof c->home &&
	    strlen(name) < sizeof c->name) {
		c = &key_cache[key_cache_next++ % KEY_CACHE];
		memcpy(c->home, home, strlen(home) + 1);
		memcpy(c->name, name, strlen(name) + 1);
		c->use = use;
		c->at = now;
		c->kc = *kc;
	}
	return rc;
}

/* Read the passphrase file: its first line.  0, or -1 with a message. */
static int read_passphrase(const char *path, char **out, char *err,
                           size_t errlen)
{
	char *buf;
	ssize_t n;
	size_t len = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "gpg: passphrase file %s: %s", path,
		         strerror(errno));
		return -1;
	}
	buf = malloc(PASS_BUF);
	if (buf == NULL) {
		close(fd);
		snprintf(err, errlen, "gpg: out of memory");
		return -1;
	}
	while (len < PASS_MAX && (n = read(fd, buf + len, PASS_MAX - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "gpg: passphrase file %s: %s", path,
			         strerror(errno));
			close(fd);
			explicit_bzero(buf, PASS_BUF);
			free(buf);
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	*out = buf;
	return 0;
}

/* ---- the filters ---- */

enum gpg_mode { GPG_ENCRYPT, GPG_DECRYPT };

struct gpg_filter;

/* A pipe gpgme asked to watch: dir 1, gpg writes and we read; 0, the
 * other way. */
struct gpg_io {
	struct gpg_filter *f;
	int used;
	int fd, dir;
	gpgme_io_cb_t fnc;
	void *fnc_data;
};

struct gpg_sig {
	char fpr[64];
	char status[64];      /* "good", or what is wrong with it */
};

struct gpg_filter {
	struct vk_stream s;
	enum gpg_mode mode;
	gpgme_ctx_t ctx;
	gpgme_data_t in, out;      /* what gpg reads, and what it writes */
	int compress;              /* let gpg compress (encrypt) */
	struct gpg_io io[MAX_FDS];
	int started, done;
	gpgme_error_t err;         /* the operation's, once done */
	int up_failed;             /* the upstream failed: its message wins */
	char *passphrase;          /* from a file; NULL: gpg-agent's */
	char passfile[256];
	unsigned char *buf;        /* gpg's output not yet read */
	size_t off, len, cap;
	/* what info() reports, kept for after the keys and context are gone */
	char key_fpr[MAX_KEYS][64];  /* encrypt: the recipients' fingerprints */
	int nkeys;
	char signer_fpr[64];
	struct gpg_sig sigs[MAX_SIGS];
	int nsigs;
	char enc_to[MAX_KEYS][24]; /* decrypt: the key ids it was encrypted to */
	int nenc_to;
	char want_signer[64];      /* decrypt: fail unless it signed; "" any */
};

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

	if (f->len + n > f->cap) {
		size_t cap = f->cap ? f->cap : 2 * OUT_TARGET;
		unsigned char *b;

		while (cap < f->len + n)
			cap *= 2;
		b = realloc(f->buf, cap);
		if (b == NULL) {
			errno = ENOMEM;
			return -1;
		}
		f->buf = b;
		f->cap = cap;
	}
	memcpy(f->buf + f->len, buf, n);
	f->len += n;
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

static void forget_passphrase(struct gpg_filter *f)
{
	if (f->passphrase) {
		explicit_bzero(f->passphrase, PASS_BUF);
		free(f->passphrase);
	}
	f->passphrase = NULL;
}

static gpgme_error_t passphrase_cb(void *hook, const char *uid_hint,
                                   const char *info, int prev_was_bad, int fd)
{
	struct gpg_filter *f = hook;

	(void)uid_hint;
	(void)info;
	if (prev_was_bad) /* the file's is wrong: no second try */
		return gpg_error(GPG_ERR_CANCELED);
	if (gpgme_io_writen(fd, f->passphrase, strlen(f->passphrase)) != 0 ||
	    gpgme_io_writen(fd, "\n", 1) != 0)
		return gpg_error_from_syserror();
	return 0;
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

/* Decrypted: a bad signature is a failure, and so is the lack of a good
 * one by the signer asked for. */
static int check_signatures(struct gpg_filter *f)
{
	int i, found = 0;

	for (i = 0; i < f->nsigs; i++) {
		if (strcmp(f->sigs[i].status, "bad signature") == 0)
			return vk_fail(&f->s, "gpg: the signature by %s is bad: the data "
			               "was changed after it was signed", f->sigs[i].fpr);
		if (strcmp(f->sigs[i].status, "good") == 0 &&
		    strcmp(f->sigs[i].fpr, f->want_signer) == 0)
			found = 1;
	}
	if (f->want_signer[0] && !found)
		return vk_fail(&f->s, "gpg: no good signature by %s (%s)",
		               f->want_signer, f->nsigs == 0 ? "it is not signed"
		               : f->sigs[0].status);
	return 0;
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
	if (f->off == f->len) {
		f->off = f->len = 0;
		while (f->len < OUT_TARGET && !f->done)
			if (gpg_round(f) < 0)
				return -1;
	}
	if (f->off < f->len) {
		if (n > f->len - f->off)
			n = f->len - f->off;
		memcpy(buf, f->buf + f->off, n);
		f->off += n;
		return (ssize_t)n;
	}
	return gpg_finish(f);
}

/* ---- encrypting: gpg as a filter process ---- */

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

	read_status(tail, &st);
	if (!failed) {
		if (f->signer_fpr[0] && !st.sig_created)
			return vk_fail(&f->s, "gpg: signing with %s failed",
			               f->signer_fpr);
		return 0;
	}
	code = gpgme_err_code((gpgme_error_t)st.failure);
	if (f->signer_fpr[0] && f->passfile[0] && code == GPG_ERR_BAD_PASSPHRASE)
		return vk_fail(&f->s, "gpg: signing key %s: the passphrase in %s is "
		               "wrong", f->signer_fpr, f->passfile);
	if (f->signer_fpr[0] && !f->passfile[0] && code == GPG_ERR_CANCELED)
		return vk_fail(&f->s, "gpg: signing key %s needs a passphrase and "
		               "gpg-agent has none cached: preset it in the agent or "
		               "name a passphrase_file", f->signer_fpr);
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

#define ENCRYPT_ARGS (24 + 2 * MAX_KEYS)

/* gpg's command line to encrypt (and sign) as f says; its strings are f's
 * and the caller's, alive while the filter is made.  -1 with a message. */
static int encrypt_argv(struct gpg_filter *f, const char *homedir,
                        char **argv, char *err, size_t errlen)
{
	gpgme_engine_info_t e = openpgp_engine();
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

static void gpg_release(struct vk_stream *s)
{
	struct gpg_filter *f = (struct gpg_filter *)s;

	/* an unfinished operation is cancelled: gpgme closes gpg's pipes and
	 * gpg, left without input, exits */
	if (f->ctx && f->started && !f->done)
		gpgme_cancel(f->ctx);
	if (f->ctx)
		gpgme_release(f->ctx);
	f->ctx = NULL;
	if (f->in)
		gpgme_data_release(f->in);
	if (f->out)
		gpgme_data_release(f->out);
	f->in = f->out = NULL;
	forget_passphrase(f);
	free(f->buf);
	f->buf = NULL;
}

static void push_string_list(lua_State *L, const char *field,
                             const char *first, size_t stride, int n)
{
	int i;

	lua_createtable(L, n, 0);
	for (i = 0; i < n; i++) {
		lua_pushstring(L, first + (size_t)i * stride);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, field);
}

static void gpg_info(struct vk_stream *s, lua_State *L)
{
	struct gpg_filter *f = (struct gpg_filter *)s;
	int i;

	if (f->mode == GPG_ENCRYPT) {
		push_string_list(L, "recipients", f->key_fpr[0], sizeof f->key_fpr[0],
		                 f->nkeys);
		if (f->signer_fpr[0]) {
			lua_pushstring(L, f->signer_fpr);
			lua_setfield(L, -2, "signer");
		}
		return;
	}
	if (s->state != VK_EOF && s->state != VK_FAILED)
		return;
	push_string_list(L, "encrypted_to", f->enc_to[0], sizeof f->enc_to[0],
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

static const struct vk_stream_ops encrypt_ops = {
	.name = "gpg encrypt",
	.read = encrypt_read,
	.release = gpg_release,
	.info = gpg_info,
};

static const struct vk_stream_ops decrypt_ops = {
	.name = "gpg decrypt",
	.read = gpg_read,
	.release = gpg_release,
	.info = gpg_info,
};

/* opts.field as a string, or NULL when absent. */
static const char *opt_string(lua_State *L, int opts, const char *field)
{
	const char *v = NULL;

	if (lua_type(L, opts) != LUA_TTABLE)
		return NULL;
	lua_getfield(L, opts, field);
	if (!lua_isnil(L, -1))
		v = luaL_checkstring(L, -1); /* kept alive by opts */
	lua_pop(L, 1);
	return v;
}

/* Set up a filter's passphrase and, to decrypt, its context and the data
 * objects gpgme moves the bytes through.  To encrypt, gpg runs as a
 * filter of its own and reads the passphrase from its fd 3. */
static int filter_setup(struct gpg_filter *f, const char *homedir,
                        const char *passfile, char *err, size_t errlen)
{
	gpgme_error_t e;

	if (passfile) {
		snprintf(f->passfile, sizeof f->passfile, "%s", passfile);
		if (read_passphrase(passfile, &f->passphrase, err, errlen) < 0)
			return -1;
	}
	if (f->mode == GPG_ENCRYPT)
		return use_homedir(homedir, err, errlen);
	f->ctx = new_ctx(homedir, err, errlen);
	if (f->ctx == NULL)
		return -1;
	if (passfile) {
		gpgme_set_pinentry_mode(f->ctx, GPGME_PINENTRY_MODE_LOOPBACK);
		gpgme_set_passphrase_cb(f->ctx, passphrase_cb, f);
	} else {
		/* the agent's cached passphrase, or an error: never a prompt */
		gpgme_set_pinentry_mode(f->ctx, GPGME_PINENTRY_MODE_CANCEL);
	}
	e = gpgme_data_new_from_cbs(&f->in, &in_cbs, f);
	if (!e)
		e = gpgme_data_new_from_cbs(&f->out, &out_cbs, f);
	if (e) {
		snprintf(err, errlen, "gpg: %s", gpgme_strerror(e));
		return -1;
	}
	return 0;
}

/* Push an open filter over the stream at 1, which it does not read yet. */
static struct gpg_filter *push_filter(lua_State *L, enum gpg_mode mode)
{
	struct gpg_filter *f;

	vk_stream_check(L, 1);
	f = (struct gpg_filter *)vk_stream_push(L, sizeof *f,
		mode == GPG_ENCRYPT ? &encrypt_ops : &decrypt_ops);
	f->mode = mode;
	vk_open(&f->s);
	return f;
}

/* Resolve the recipients (opts.recipients) and the signer (opts.sign). */
static int resolve_keys(lua_State *L, struct gpg_filter *f, const char *homedir,
                        const char *sign, char *err, size_t errlen)
{
	struct key_check kc;
	lua_Integer i, n;

	lua_getfield(L, 2, "recipients");
	if (lua_type(L, -1) != LUA_TTABLE || (n = luaL_len(L, -1)) == 0) {
		lua_pop(L, 1);
		snprintf(err, errlen, "gpg: encrypt needs at least one recipient");
		return -1;
	}
	if (n > MAX_KEYS) {
		lua_pop(L, 1);
		snprintf(err, errlen, "gpg: at most %d recipients", MAX_KEYS);
		return -1;
	}
	for (i = 1; i <= n; i++) {
		const char *name;

		lua_rawgeti(L, -1, i);
		name = lua_tostring(L, -1);
		if (name == NULL) {
			lua_pop(L, 2);
			snprintf(err, errlen, "gpg: recipient %d is not a string", (int)i);
			return -1;
		}
		if (look_up(homedir, name, USE_ENCRYPT, &kc, err, errlen) < 0) {
			lua_pop(L, 2);
			return -1;
		}
		if (kc.problem) {
			key_problem(&kc, name, USE_ENCRYPT, err, errlen);
			lua_pop(L, 2);
			return -1;
		}
		snprintf(f->key_fpr[f->nkeys++], sizeof f->key_fpr[0], "%s", kc.fpr);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	if (sign == NULL)
		return 0;
	if (look_up(homedir, sign, USE_SIGN, &kc, err, errlen) < 0)
		return -1;
	if (kc.problem) {
		key_problem(&kc, sign, USE_SIGN, err, errlen);
		return -1;
	}
	snprintf(f->signer_fpr, sizeof f->signer_fpr, "%s", kc.fpr);
	return 0;
}

/* lua: gpg.encrypt(up, {recipients = {...}, sign =, homedir =,
 *      passphrase_file =, compress = false}) -> stream of the OpenPGP
 *      message; its info() has recipients (fingerprints) and signer.
 *      A recipient or signer that cannot be used fails the stream before
 *      anything is read from up. */
static int l_encrypt(lua_State *L)
{
	struct gpg_filter *f;
	const char *homedir, *passfile, *sign;
	char *argv[ENCRYPT_ARGS + 1];
	char err[512];
	int compress;

	luaL_checktype(L, 2, LUA_TTABLE);
	homedir = opt_string(L, 2, "homedir");
	passfile = opt_string(L, 2, "passphrase_file");
	sign = opt_string(L, 2, "sign");
	lua_getfield(L, 2, "compress");
	compress = lua_toboolean(L, -1);
	lua_pop(L, 1);
	f = push_filter(L, GPG_ENCRYPT); /* at 3 */
	f->compress = compress;
	if (filter_setup(f, homedir, passfile, err, sizeof err) < 0 ||
	    resolve_keys(L, f, homedir, sign, err, sizeof err) < 0 ||
	    encrypt_argv(f, homedir, argv, err, sizeof err) < 0) {
		vk_stream_adopt(L, 3, 1);
		vk_fail(&f->s, "%s", err);
		return 1;
	}
	if (f->passphrase) /* the line gpg reads on its fd 3 */
		strcat(f->passphrase, "\n");
	vk_proc_filter(L, 1, argv, f->passphrase); /* at 4, reading up */
	forget_passphrase(f);
	vk_stream_adopt(L, 3, 4);
	lua_pop(L, 1);
	return 1;
}

/* lua: gpg.decrypt(up, {homedir =, passphrase_file =, signer =}) -> stream
 *      of the plaintext; once it has ended, info() has encrypted_to (key
 *      ids) and signatures ({fingerprint, status, good}).  A bad signature
 *      fails the stream at its end; so does, with signer (a fingerprint),
 *      the lack of a good signature by that key. */
static int l_decrypt(lua_State *L)
{
	struct gpg_filter *f;
	const char *homedir, *passfile, *signer;
	char err[512];

	homedir = opt_string(L, 2, "homedir");
	passfile = opt_string(L, 2, "passphrase_file");
	signer = opt_string(L, 2, "signer");
	f = push_filter(L, GPG_DECRYPT);
	vk_stream_adopt(L, -1, 1);
	if (signer)
		snprintf(f->want_signer, sizeof f->want_signer, "%s", signer);
	if (filter_setup(f, homedir, passfile, err, sizeof err) < 0)
		vk_fail(&f->s, "%s", err);
	return 1;
}

/* lua: gpg.key(name, {use = "encrypt"|"sign", homedir =})
 *      -> {fingerprint, uid, expires (0: never), usable, problem}
 *      | fail, message (no such key, or several) */
static int l_key(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	const char *homedir = opt_string(L, 2, "homedir");
	const char *use_s = opt_string(L, 2, "use");
	enum key_use use = USE_ENCRYPT;
	struct key_check kc;
	char err[512];

	if (use_s && strcmp(use_s, "sign") == 0)
		use = USE_SIGN;
	else if (use_s && strcmp(use_s, "encrypt") != 0)
		return luaL_error(L, "gpg.key: use must be \"encrypt\" or \"sign\"");
	if (look_up(homedir, name, use, &kc, err, sizeof err) < 0)
		return vk_pushfail(L, "%s", err);
	lua_createtable(L, 0, 5);
	lua_pushstring(L, kc.fpr);
	lua_setfield(L, -2, "fingerprint");
	lua_pushstring(L, kc.uid);
	lua_setfield(L, -2, "uid");
	lua_pushinteger(L, kc.expires);
	lua_setfield(L, -2, "expires");
	lua_pushboolean(L, kc.problem == NULL);
	lua_setfield(L, -2, "usable");
	if (kc.problem) {
		lua_pushstring(L, kc.problem);
		lua_setfield(L, -2, "problem");
	}
	return 1;
}

/* lua: gpg.engine({homedir =}) -> {program, version, homedir} | fail,
 *      message: the gpg that is run.  gpgme's first look at the installed
 *      programs runs five of them; made before worker processes are
 *      forked, it is made once for them all. */
static int l_engine(lua_State *L)
{
	const char *homedir = opt_string(L, 1, "homedir");
	gpgme_engine_info_t e;
	char err[512];

	if (use_homedir(homedir, err, sizeof err) < 0)
		return vk_pushfail(L, "%s", err);
	e = openpgp_engine();
	if (e == NULL)
		return vk_pushfail(L, "gpg: gpgme knows of no gpg program");
	lua_createtable(L, 0, 3);
	lua_pushstring(L, e->file_name);
	lua_setfield(L, -2, "program");
	lua_pushstring(L, e->version);
	lua_setfield(L, -2, "version");
	lua_pushstring(L, e->home_dir);
	lua_setfield(L, -2, "homedir");
	return 1;
}

static const luaL_Reg funcs[] = {
	{"engine", l_engine},
	{"encrypt", l_encrypt},
	{"decrypt", l_decrypt},
	{"key", l_key},
	{NULL, NULL},
};

int luaopen_vakap_gpg(lua_State *L)
{
	gpgme_check_version(NULL);
	luaL_newlib(L, funcs);
	return 1;
}
