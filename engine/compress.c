/*
 * vakap.compress: zstd and gzip as stream filters.
 *
 * Each filter reads its upstream one chunk at a time into a single input
 * buffer and (de)compresses from it straight into its reader's buffer, so
 * what it holds is that buffer and the library's context, whatever the
 * size of the data.  A decompressor whose input ends inside a frame (or a
 * gzip member), or that never saw one, fails with "truncated input": a
 * cut-off dump is an error, never a shorter clean end.
 *
 * A filter that cannot get its context (out of memory) is still returned,
 * failed (opened, then vk_fail: a closed stream could not carry the
 * message): its first read returns the message, like any error on the
 * way.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* _SC_NPROCESSORS_ONLN */

#include "engine.h"
#include "stream.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <lauxlib.h>
#include <zlib.h>
#include <zstd.h>

#define ZSTD_DEFAULT_LEVEL 3
#define GZIP_DEFAULT_LEVEL 6
#define MAX_THREADS 256

/* What every filter here shares: the upstream's bytes not yet consumed. */
struct filter {
	struct vk_stream s;
	const char *algorithm;
	int compressing;
	int level;            /* when compressing */
	unsigned char *buf;   /* the one input buffer, VK_CHUNK bytes */
	size_t len, pos;      /* buf[pos..len) is still to be consumed */
	int up_ended;         /* the upstream has ended cleanly */
	uint64_t in_bytes;    /* read from the upstream */
};

/* Once buf is consumed, read the next chunk of the upstream into it.
 * Returns 0 (buf holds input, or the upstream has ended), or -1 after
 * failing f with the upstream's error. */
static int fill(struct filter *f)
{
	ssize_t r;

	if (f->pos < f->len || f->up_ended)
		return 0;
	r = vk_read(f->s.up, f->buf, VK_CHUNK);
	if (r < 0)
		return vk_fail_up(&f->s);
	f->len = (size_t)r;
	f->pos = 0;
	f->in_bytes += (uint64_t)r;
	if (r == 0)
		f->up_ended = 1;
	return 0;
}

static void filter_info(struct vk_stream *s, lua_State *L)
{
	struct filter *f = (struct filter *)s;

	lua_pushstring(L, f->algorithm);
	lua_setfield(L, -2, "algorithm");
	lua_pushinteger(L, (lua_Integer)f->in_bytes);
	lua_setfield(L, -2, "in_bytes");
	lua_pushinteger(L, (lua_Integer)s->nbytes);
	lua_setfield(L, -2, "out_bytes");
	if (f->compressing) {
		lua_pushinteger(L, f->level);
		lua_setfield(L, -2, "level");
	}
}

/* Push a filter of `size` bytes, closed, holding nothing yet. */
static struct filter *push_filter(lua_State *L, size_t size,
                                  const struct vk_stream_ops *ops,
                                  const char *algorithm, int compressing,
                                  int level)
{
	struct filter *f;

	f = (struct filter *)vk_stream_push(L, size, ops);
	f->algorithm = algorithm;
	f->compressing = compressing;
	f->level = level;
	f->buf = NULL;
	return f;
}

/* Make the filter on top read the stream at argument 1, through its input
 * buffer (buf stays NULL if out of memory: the caller fails the filter). */
static void take_upstream(lua_State *L, struct filter *f)
{
	vk_stream_adopt(L, -1, 1);
	f->buf = malloc(VK_CHUNK);
}

/* ---- zstd ---- */

struct zstd_filter {
	struct filter f;
	ZSTD_CCtx *cctx;      /* compressing */
	ZSTD_DCtx *dctx;      /* decompressing */
	int ended;            /* compressing: the frame is complete */
	int in_frame;         /* decompressing: a frame is begun, not ended */
	int ended_one;        /* decompressing: a frame has ended */
};

static ssize_t zstd_read(struct vk_stream *s, void *buf, size_t n)
{
	struct zstd_filter *z = (struct zstd_filter *)s;
	ZSTD_outBuffer out = {buf, n, 0};
	ZSTD_inBuffer in;
	size_t rc;

	while (out.pos == 0 && !z->ended) {
		if (fill(&z->f) != 0)
			return -1;
		in.src = z->f.buf;
		in.size = z->f.len;
		in.pos = z->f.pos;
		rc = ZSTD_compressStream2(z->cctx, &out, &in,
		                          z->f.up_ended ? ZSTD_e_end
		                                        : ZSTD_e_continue);
		z->f.pos = in.pos;
		if (ZSTD_isError(rc))
			return vk_fail(s, "zstd: %s", ZSTD_getErrorName(rc));
		if (z->f.up_ended && rc == 0)
			z->ended = 1;
	}
	return (ssize_t)out.pos;
}

static ssize_t unzstd_read(struct vk_stream *s, void *buf, size_t n)
{
	struct zstd_filter *z = (struct zstd_filter *)s;
	ZSTD_outBuffer out = {buf, n, 0};
	ZSTD_inBuffer in;
	size_t rc, before;

	while (out.pos == 0) {
		if (fill(&z->f) != 0)
			return -1;
		if (z->f.pos == z->f.len && z->f.up_ended && !z->in_frame) {
			if (!z->ended_one)
				return vk_fail(s, "zstd: truncated input");
			return 0;
		}
		in.src = z->f.buf;
		in.size = z->f.len;
		in.pos = before = z->f.pos;
		rc = ZSTD_decompressStream(z->dctx, &out, &in);
		z->f.pos = in.pos;
		if (ZSTD_isError(rc))
			return vk_fail(s, "zstd: %s", ZSTD_getErrorName(rc));
		if (rc == 0) {
			z->in_frame = 0;
			z->ended_one = 1;
		} else {
			z->in_frame = 1;
		}
		/* Given input or room, zstd moves; stuck means it needs input
		 * that will not come. */
		if (out.pos == 0 && in.pos == before && rc != 0)
			return vk_fail(s, "zstd: truncated input");
	}
	return (ssize_t)out.pos;
}

static void zstd_release(struct vk_stream *s)
{
	struct zstd_filter *z = (struct zstd_filter *)s;

	ZSTD_freeCCtx(z->cctx);
	z->cctx = NULL;
	ZSTD_freeDCtx(z->dctx);
	z->dctx = NULL;
	free(z->f.buf);
	z->f.buf = NULL;
}

static const struct vk_stream_ops zstd_ops = {
	.name = "zstd",
	.read = zstd_read,
	.release = zstd_release,
	.info = filter_info,
};

static const struct vk_stream_ops unzstd_ops = {
	.name = "unzstd",
	.read = unzstd_read,
	.release = zstd_release,
	.info = filter_info,
};

/* Set up an open compressing filter; a failure fails it. */
static void zstd_setup(struct zstd_filter *z, int level, int threads)
{
	size_t rc;

	if (z->f.buf == NULL || z->cctx == NULL) {
		vk_fail(&z->f.s, "zstd: out of memory");
		return;
	}
	rc = ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(rc)) /* like the zstd tool: a checksum per frame */
		rc = ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 1);
	if (ZSTD_isError(rc)) {
		vk_fail(&z->f.s, "zstd: %s", ZSTD_getErrorName(rc));
		return;
	}
	/* A libzstd built without threads refuses: compress in this one.
	 * With workers, jobs of 1 MiB (libzstd's default is 4 windows, 8 MiB
	 * at level 3): each worker holds a job in and a job out, and RSS
	 * grows with the job size; 1 MiB keeps it flat at little cost. */
	if (threads > 0 &&
	    !ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_nbWorkers,
	                                         threads)))
		(void)ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_jobSize, 1 << 20);
}

/* lua: compress.zstd(up [, level=3 [, threads=0]]) -> stream of up's
 * bytes as one zstd frame (with a checksum) */
static int l_zstd(lua_State *L)
{
	lua_Integer level = luaL_optinteger(L, 2, ZSTD_DEFAULT_LEVEL);
	lua_Integer threads = luaL_optinteger(L, 3, 0);
	struct zstd_filter *z;

	vk_stream_check(L, 1);
	luaL_argcheck(L, level >= ZSTD_minCLevel() &&
	                 level <= ZSTD_maxCLevel(), 2,
	              "zstd level out of range");
	luaL_argcheck(L, threads >= 0 && threads <= MAX_THREADS, 3,
	              "thread count out of range");
	z = (struct zstd_filter *)push_filter(L, sizeof *z, &zstd_ops, "zstd",
	                                      1, (int)level);
	z->cctx = NULL;
	z->dctx = NULL;
	take_upstream(L, &z->f);
	z->cctx = ZSTD_createCCtx();
	vk_open(&z->f.s);
	zstd_setup(z, (int)level, (int)threads);
	return 1;
}

/* lua: compress.unzstd(up) -> stream of the data of the zstd frames in up */
static int l_unzstd(lua_State *L)
{
	struct zstd_filter *z;

	vk_stream_check(L, 1);
	z = (struct zstd_filter *)push_filter(L, sizeof *z, &unzstd_ops,
	                                      "zstd", 0, 0);
	z->cctx = NULL;
	z->dctx = NULL;
	take_upstream(L, &z->f);
	z->dctx = ZSTD_createDCtx();
	vk_open(&z->f.s);
	if (z->f.buf == NULL || z->dctx == NULL)
		vk_fail(&z->f.s, "zstd: out of memory");
	return 1;
}

/* ---- gzip ---- */

struct zlib_filter {
	struct filter f;
	z_stream zs;
	int ready;            /* deflateInit2/inflateInit2 succeeded */
	int ended;            /* compressing: the member is complete */
	int in_member;        /* decompressing: a member is begun, not ended */
	int ended_one;        /* decompressing: a member has ended */
};

/* zlib counts in uInt: never offer it more room than that. */
static uInt room_for(size_t n)
{
	return n > UINT_MAX ? UINT_MAX : (uInt)n;
}

static void zlib_input(struct zlib_filter *z)
{
	z->zs.next_in = z->f.buf + z->f.pos;
	z->zs.avail_in = (uInt)(z->f.len - z->f.pos);
}

static const char *zlib_message(struct zlib_filter *z, int rc)
{
	return z->zs.msg != NULL ? z->zs.msg : zError(rc);
}

static ssize_t gzip_read(struct vk_stream *s, void *buf, size_t n)
{
	struct zlib_filter *z = (struct zlib_filter *)s;
	uInt room = room_for(n);
	int rc;

	z->zs.next_out = buf;
	z->zs.avail_out = room;
	while (z->zs.avail_out == room && !z->ended) {
		if (fill(&z->f) != 0)
			return -1;
		zlib_input(z);
		rc = deflate(&z->zs, z->f.up_ended ? Z_FINISH : Z_NO_FLUSH);
		z->f.pos = z->f.len - z->zs.avail_in;
		if (rc == Z_STREAM_END)
			z->ended = 1;
		else if (rc != Z_OK && rc != Z_BUF_ERROR)
			return vk_fail(s, "gzip: %s", zlib_message(z, rc));
	}
	return (ssize_t)(room - z->zs.avail_out);
}

static ssize_t gunzip_read(struct vk_stream *s, void *buf, size_t n)
{
	struct zlib_filter *z = (struct zlib_filter *)s;
	uInt room = room_for(n);
	int rc;

	z->zs.next_out = buf;
	z->zs.avail_out = room;
	while (z->zs.avail_out == room) {
		if (fill(&z->f) != 0)
			return -1;
		if (z->f.pos == z->f.len && z->f.up_ended && !z->in_member) {
			if (!z->ended_one)
				return vk_fail(s, "gzip: truncated input");
			return 0;
		}
		if (!z->in_member) {
			/* more input after a member: the next member */
			if (z->ended_one && inflateReset(&z->zs) != Z_OK)
				return vk_fail(s, "gzip: cannot reset inflate");
			z->in_member = 1;
		}
		zlib_input(z);
		rc = inflate(&z->zs, Z_NO_FLUSH);
		z->f.pos = z->f.len - z->zs.avail_in;
		switch (rc) {
		case Z_OK:
			break;
		case Z_STREAM_END:
			z->in_member = 0;
			z->ended_one = 1;
			break;
		case Z_BUF_ERROR:
			/* no progress: there was room, so input ran out */
			return vk_fail(s, "gzip: truncated input");
		case Z_MEM_ERROR:
			return vk_fail(s, "gzip: out of memory");
		default: /* Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR */
			return vk_fail(s, "gzip: %s", zlib_message(z, rc));
		}
	}
	return (ssize_t)(room - z->zs.avail_out);
}

static void zlib_release(struct vk_stream *s)
{
	struct zlib_filter *z = (struct zlib_filter *)s;

	if (z->ready) {
		if (z->f.compressing)
			deflateEnd(&z->zs);
		else
			inflateEnd(&z->zs);
		z->ready = 0;
	}
	free(z->f.buf);
	z->f.buf = NULL;
}

static const struct vk_stream_ops gzip_ops = {
	.name = "gzip",
	.read = gzip_read,
	.release = zlib_release,
	.info = filter_info,
};

static const struct vk_stream_ops gunzip_ops = {
	.name = "gunzip",
	.read = gunzip_read,
	.release = zlib_release,
	.info = filter_info,
};

/* Finish setting up an open zlib filter whose deflateInit2 or inflateInit2
 * returned rc; a failure fails it. */
static void zlib_setup(struct zlib_filter *z, int rc)
{
	if (rc == Z_OK)
		z->ready = 1;
	if (rc == Z_MEM_ERROR || z->f.buf == NULL)
		vk_fail(&z->f.s, "gzip: out of memory");
	else if (rc != Z_OK)
		vk_fail(&z->f.s, "gzip: %s", zlib_message(z, rc));
}

/* windowBits + 16: a gzip header and trailer around the deflate data */
#define GZIP_WBITS (15 + 16)

/* lua: compress.gzip(up [, level=6]) -> stream of up's bytes as one gzip
 * member */
static int l_gzip(lua_State *L)
{
	lua_Integer level = luaL_optinteger(L, 2, GZIP_DEFAULT_LEVEL);
	struct zlib_filter *z;
	int rc;

	vk_stream_check(L, 1);
	luaL_argcheck(L, level >= 0 && level <= 9, 2,
	              "gzip level out of range");
	z = (struct zlib_filter *)push_filter(L, sizeof *z, &gzip_ops, "gzip",
	                                      1, (int)level);
	z->ready = 0;
	take_upstream(L, &z->f);
	rc = deflateInit2(&z->zs, (int)level, Z_DEFLATED, GZIP_WBITS, 8,
	                  Z_DEFAULT_STRATEGY);
	vk_open(&z->f.s);
	zlib_setup(z, rc);
	return 1;
}

/* lua: compress.gunzip(up) -> stream of the data of the gzip members in
 * up */
static int l_gunzip(lua_State *L)
{
	struct zlib_filter *z;
	int rc;

	vk_stream_check(L, 1);
	z = (struct zlib_filter *)push_filter(L, sizeof *z, &gunzip_ops,
	                                      "gzip", 0, 0);
	z->ready = 0;
	take_upstream(L, &z->f);
	rc = inflateInit2(&z->zs, GZIP_WBITS);
	vk_open(&z->f.s);
	zlib_setup(z, rc);
	return 1;
}

/* lua: compress.cpus() -> the number of CPUs online (at least 1) */
static int l_cpus(lua_State *L)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	lua_pushinteger(L, n > 0 ? n : 1);
	return 1;
}

static const luaL_Reg funcs[] = {
	{"cpus", l_cpus},
	{"zstd", l_zstd},
	{"unzstd", l_unzstd},
	{"gzip", l_gzip},
	{"gunzip", l_gunzip},
	{NULL, NULL},
};

int luaopen_vakap_compress(lua_State *L)
{
	luaL_newlib(L, funcs);
	return 1;
}
