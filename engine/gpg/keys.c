/*
 * vakap.gpg's keys (gpg.h): gpg's home directory and program, gpgme
 * contexts, and the lookup of the one key a name names, judged for its
 * use, with a minute's cache.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gpg/gpg.h"

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
void vk_gpg_key_problem(const struct key_check *kc, const char *name,
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

int vk_gpg_use_homedir(const char *homedir, char *err, size_t errlen)
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

/* gpgme's engine info for gpg (after vk_gpg_use_homedir), or NULL. */
gpgme_engine_info_t vk_gpg_engine(void)
{
	gpgme_engine_info_t e;

	if (gpgme_get_engine_info(&e) != 0)
		return NULL;
	while (e && e->protocol != GPGME_PROTOCOL_OpenPGP)
		e = e->next;
	return e && e->file_name ? e : NULL;
}

/* A context for homedir (NULL: gpg's default), or NULL with a message. */
gpgme_ctx_t vk_gpg_new_ctx(const char *homedir, char *err, size_t errlen)
{
	gpgme_ctx_t ctx;
	gpgme_error_t e;

	if (vk_gpg_use_homedir(homedir, err, errlen) < 0)
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
int vk_gpg_look_up(const char *homedir, const char *name, enum key_use use,
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
	ctx = vk_gpg_new_ctx(homedir, err, errlen);
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

