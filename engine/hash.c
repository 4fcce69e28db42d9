/*
 * vakap.hash: SHA-256 (OpenSSL EVP) of what passes through a stream, and
 * of small strings.
 *
 * The filter hands its upstream's bytes on unchanged, reading them
 * straight into its reader's buffer, and feeds them to the digest on the
 * way.  The digest is published (s:info().sha256) only when the upstream
 * ended cleanly: a failed or unfinished stream has none.
 */
#define _POSIX_C_SOURCE 200809L

#include "engine.h"
#include "stream.h"

#include <lauxlib.h>
#include <openssl/evp.h>

#define SHA256_LEN 32

struct sha256_filter {
	struct vk_stream s;
	EVP_MD_CTX *ctx;
	char hex[2 * SHA256_LEN + 1]; /* "" until the stream has ended */
};

static ssize_t sha256_read(struct vk_stream *s, void *buf, size_t n)
{
	struct sha256_filter *h = (struct sha256_filter *)s;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len;
	ssize_t r;

	r = vk_read(s->up, buf, n);
	if (r < 0)
		return vk_fail_up(s);
	if (r > 0) {
		if (EVP_DigestUpdate(h->ctx, buf, (size_t)r) != 1)
			return vk_fail(s, "sha256: digest update failed");
		return r;
	}
	if (EVP_DigestFinal_ex(h->ctx, md, &len) != 1 || len != SHA256_LEN)
		return vk_fail(s, "sha256: digest final failed");
	vk_hex(h->hex, md, len);
	return 0;
}

static void sha256_release(struct vk_stream *s)
{
	struct sha256_filter *h = (struct sha256_filter *)s;

	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

static void sha256_info(struct vk_stream *s, lua_State *L)
{
	struct sha256_filter *h = (struct sha256_filter *)s;

	if (h->hex[0] != '\0') {
		lua_pushstring(L, h->hex);
		lua_setfield(L, -2, "sha256");
	}
}

static const struct vk_stream_ops sha256_ops = {
	.name = "sha256",
	.read = sha256_read,
	.release = sha256_release,
	.info = sha256_info,
};

/* lua: hash.sha256(up) -> stream of up's bytes, unchanged; its info()
 * has `sha256` (lowercase hex) once it has ended cleanly */
static int l_sha256(lua_State *L)
{
	struct sha256_filter *h;

	vk_stream_check(L, 1);
	h = (struct sha256_filter *)vk_stream_push(L, sizeof *h, &sha256_ops);
	h->ctx = NULL;
	h->hex[0] = '\0';
	vk_stream_adopt(L, -1, 1);
	vk_open(&h->s);
	/* a failure to set up fails the stream: its reader gets the message */
	h->ctx = EVP_MD_CTX_new();
	if (h->ctx == NULL)
		vk_fail(&h->s, "sha256: out of memory");
	else if (EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
		vk_fail(&h->s, "sha256: cannot set up the digest");
	return 1;
}

/* lua: hash.sha256_hex(s) -> lowercase hex SHA-256 of the string s
 *      | fail, message */
static int l_sha256_hex(lua_State *L)
{
	size_t len;
	const char *data = luaL_checklstring(L, 1, &len);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	char hex[2 * EVP_MAX_MD_SIZE + 1];

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		return vk_pushfail(L, "sha256: cannot compute the digest");
	vk_hex(hex, md, mdlen);
	lua_pushstring(L, hex);
	return 1;
}

static const luaL_Reg funcs[] = {
	{"sha256", l_sha256},
	{"sha256_hex", l_sha256_hex},
	{NULL, NULL},
};

int luaopen_vakap_hash(lua_State *L)
{
	luaL_newlib(L, funcs);
	return 1;
}
