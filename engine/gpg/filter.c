/*
 * vakap.gpg's filter handle (gpg.h), the one stream type of encrypt and
 * decrypt: made over its upstream, set up, released.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>

#include <lauxlib.h>

#include "gpg/gpg.h"

struct gpg_filter *vk_gpg_push_filter(lua_State *L, enum gpg_mode mode)
{
	struct gpg_filter *f;

	vk_stream_check(L, 1);
	f = (struct gpg_filter *)vk_stream_push(L, sizeof *f,
		mode == GPG_ENCRYPT ? &vk_gpg_encrypt_ops : &vk_gpg_decrypt_ops);
	f->mode = mode;
	vk_open(&f->s);
	return f;
}

/* To encrypt, gpg runs as a filter of its own and reads the passphrase
 * from its fd 3; to decrypt, gpgme hands it over. */
int vk_gpg_filter_setup(struct gpg_filter *f, const char *homedir,
                        const char *passfile, char *err, size_t errlen)
{
	if (passfile) {
		snprintf(f->passfile, sizeof f->passfile, "%s", passfile);
		if (vk_gpg_read_passphrase(passfile, &f->passphrase, err,
		                           errlen) < 0)
			return -1;
	}
	if (f->mode == GPG_ENCRYPT)
		return vk_gpg_use_homedir(homedir, err, errlen);
	return vk_gpg_decrypt_setup(f, homedir, err, errlen);
}

void vk_gpg_release(struct vk_stream *s)
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
	vk_gpg_forget(&f->passphrase);
	vk_buf_free(&f->buf);
}

void vk_gpg_push_list(lua_State *L, const char *field, const char *first,
                      size_t stride, int n)
{
	int i;

	lua_createtable(L, n, 0);
	for (i = 0; i < n; i++) {
		lua_pushstring(L, first + (size_t)i * stride);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, field);
}
