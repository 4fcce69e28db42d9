/*
 * vakap.gpg's binding (gpg.h): luaopen_vakap_gpg and the functions it
 * offers.  Each function's comment gives its Lua signature; the filters
 * follow the error contract of stream.h (made always, failed in-band),
 * the others return fail, message.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "engine.h"
#include "gpg/gpg.h"
#include "proc.h"

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
		if (vk_gpg_look_up(homedir, name, USE_ENCRYPT, &kc, err, errlen) < 0) {
			lua_pop(L, 2);
			return -1;
		}
		if (kc.problem) {
			vk_gpg_key_problem(&kc, name, USE_ENCRYPT, err, errlen);
			lua_pop(L, 2);
			return -1;
		}
		snprintf(f->key_fpr[f->nkeys++], sizeof f->key_fpr[0], "%s", kc.fpr);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	if (sign == NULL)
		return 0;
	if (vk_gpg_look_up(homedir, sign, USE_SIGN, &kc, err, errlen) < 0)
		return -1;
	if (kc.problem) {
		vk_gpg_key_problem(&kc, sign, USE_SIGN, err, errlen);
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
	f = vk_gpg_push_filter(L, GPG_ENCRYPT); /* at 3 */
	f->compress = compress;
	if (vk_gpg_filter_setup(f, homedir, passfile, err, sizeof err) < 0 ||
	    resolve_keys(L, f, homedir, sign, err, sizeof err) < 0 ||
	    vk_gpg_encrypt_argv(f, homedir, argv, err, sizeof err) < 0) {
		vk_stream_adopt(L, 3, 1);
		vk_fail(&f->s, "%s", err);
		return 1;
	}
	if (f->passphrase) /* the line gpg reads on its fd 3 */
		strcat(f->passphrase, "\n");
	vk_proc_filter(L, 1, argv, f->passphrase); /* at 4, reading up */
	vk_gpg_forget(&f->passphrase);
	vk_stream_adopt(L, 3, 4);
	lua_pop(L, 1);
	return 1;
}

/* The signers decrypt must find a good signature of: opts.signer (one
 * fingerprint) and opts.signers (a list of them). */
static void want_signers(lua_State *L, struct gpg_filter *f)
{
	const char *one = opt_string(L, 2, "signer");
	lua_Integer i, n;

	if (one)
		snprintf(f->want_signer[f->nwant++], sizeof f->want_signer[0], "%s", one);
	if (!lua_istable(L, 2))
		return;
	if (lua_getfield(L, 2, "signers") == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	luaL_argexpected(L, lua_istable(L, -1), 2, "signers as a list of fingerprints");
	n = luaL_len(L, -1);
	luaL_argcheck(L, n + f->nwant <= MAX_KEYS, 2, "too many signers");
	for (i = 1; i <= n; i++) {
		lua_geti(L, -1, i);
		luaL_argexpected(L, lua_type(L, -1) == LUA_TSTRING, 2, "signers as fingerprints");
		snprintf(f->want_signer[f->nwant++], sizeof f->want_signer[0], "%s",
		         lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

/* lua: gpg.decrypt(up, {homedir =, passphrase_file =, signer =, signers =})
 *      -> stream of the plaintext; once it has ended, info() has
 *      encrypted_to (key ids) and signatures ({fingerprint, status, good}).
 *      A bad signature fails the stream at its end; so does, with signer
 *      (a fingerprint) or signers (a list of them), the lack of a good
 *      signature by one of those keys (by its primary key's fingerprint,
 *      whichever subkey signed). */
static int l_decrypt(lua_State *L)
{
	struct gpg_filter *f;
	const char *homedir, *passfile;
	char err[512];

	lua_settop(L, 2);
	homedir = opt_string(L, 2, "homedir");
	passfile = opt_string(L, 2, "passphrase_file");
	f = vk_gpg_push_filter(L, GPG_DECRYPT);
	want_signers(L, f); /* leaves the stack as it found it */
	vk_stream_adopt(L, -1, 1);
	if (vk_gpg_filter_setup(f, homedir, passfile, err, sizeof err) < 0)
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
	if (vk_gpg_look_up(homedir, name, use, &kc, err, sizeof err) < 0)
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

	if (vk_gpg_use_homedir(homedir, err, sizeof err) < 0)
		return vk_pushfail(L, "%s", err);
	e = vk_gpg_engine();
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

/* Raise unless every key of the options table at idx is one of `known`
 * (NULL-terminated): a misspelt option is the caller's bug. */
static void check_options(lua_State *L, int idx, const char *fn,
                          const char *const *known)
{
	int i;

	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		const char *key = lua_type(L, -2) == LUA_TSTRING
			? lua_tostring(L, -2) : NULL;

		for (i = 0; key && known[i]; i++)
			if (strcmp(key, known[i]) == 0)
				break;
		if (key == NULL || known[i] == NULL)
			luaL_error(L, "%s: unknown option '%s'", fn,
			           key ? key : luaL_typename(L, -2));
		lua_pop(L, 1);
	}
}

/* lua: gpg.clearsign(text, {signer =, homedir =, passphrase_file =})
 *      -> the OpenPGP cleartext-signed message (gpg --clearsign's)
 *      | fail, message.  signer (a fingerprint or user id) must name
 *      one secret key usable for signing, as encrypt's sign does; its
 *      passphrase comes from passphrase_file's first line, else from
 *      gpg-agent's cache, never a prompt.  The text is at most 1 MiB
 *      of lines of at most 16 KiB, no NUL, no line ending in a space,
 *      tab or CR (a signature would not cover them): gpg.verify gives
 *      back exactly this text, a last newline or none. */
static int l_clearsign(lua_State *L)
{
	static const char *const known[] = {"signer", "homedir",
	                                    "passphrase_file", NULL};
	struct vk_buf out = {0};
	struct sign_opts o;
	const char *text;
	size_t len;
	char err[512];

	text = luaL_checklstring(L, 1, &len);
	luaL_checktype(L, 2, LUA_TTABLE);
	check_options(L, 2, "gpg.clearsign", known);
	o.signer = opt_string(L, 2, "signer");
	o.homedir = opt_string(L, 2, "homedir");
	o.passfile = opt_string(L, 2, "passphrase_file");
	if (o.signer == NULL)
		return luaL_error(L, "gpg.clearsign: signer is required");
	if (vk_gpg_clearsign(text, len, &o, &out, err, sizeof err) < 0) {
		vk_buf_free(&out);
		return vk_pushfail(L, "%s", err);
	}
	lua_pushlstring(L, out.p, out.len);
	vk_buf_free(&out);
	return 1;
}

/* lua: gpg.verify(message, {homedir =}) -> text, signatures
 *      | fail, message.  message must be one cleartext-signed message
 *      and nothing else (at most 1 MiB); text is what was signed (each
 *      line without the spaces, tabs and CR a signature does not cover,
 *      the line end before the signature not part of it); signatures
 *      is a list of {fpr =, status =}: fpr the signing key's primary
 *      fingerprint (the key id the signature names when the keyring
 *      lacks the key), status "good", "bad" (the text or signature was
 *      changed), "expired-key", "revoked-key", "expired-signature",
 *      "no-key" or "error".  Only "good" by a key the caller trusts
 *      vouches for the text. */
static int l_verify(lua_State *L)
{
	static const char *const known[] = {"homedir", NULL};
	struct verified v;
	const char *msg, *homedir = NULL;
	size_t len;
	char err[512];
	int i;

	msg = luaL_checklstring(L, 1, &len);
	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		check_options(L, 2, "gpg.verify", known);
		homedir = opt_string(L, 2, "homedir");
	}
	memset(&v, 0, sizeof v);
	if (vk_gpg_verify(msg, len, homedir, &v, err, sizeof err) < 0) {
		vk_buf_free(&v.text);
		return vk_pushfail(L, "%s", err);
	}
	lua_pushlstring(L, v.text.p, v.text.len);
	vk_buf_free(&v.text);
	lua_createtable(L, v.nsigs, 0);
	for (i = 0; i < v.nsigs; i++) {
		lua_createtable(L, 0, 2);
		lua_pushstring(L, v.sigs[i].fpr);
		lua_setfield(L, -2, "fpr");
		lua_pushstring(L, v.sigs[i].status);
		lua_setfield(L, -2, "status");
		lua_rawseti(L, -2, i + 1);
	}
	return 2;
}

static const luaL_Reg funcs[] = {
	{"engine", l_engine},
	{"encrypt", l_encrypt},
	{"decrypt", l_decrypt},
	{"key", l_key},
	{"clearsign", l_clearsign},
	{"verify", l_verify},
	{NULL, NULL},
};

int luaopen_vakap_gpg(lua_State *L)
{
	gpgme_check_version(NULL);
	luaL_newlib(L, funcs);
	return 1;
}
