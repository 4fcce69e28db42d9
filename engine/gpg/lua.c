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
	f = vk_gpg_push_filter(L, GPG_DECRYPT);
	vk_stream_adopt(L, -1, 1);
	if (signer)
		snprintf(f->want_signer, sizeof f->want_signer, "%s", signer);
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
