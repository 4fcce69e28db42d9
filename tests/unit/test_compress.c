/*
 * vakap.compress: round trips, agreement with the zstd and gzip tools,
 * truncated and corrupt input as errors, concatenated frames and members,
 * info(), misuse, and memory that does not grow with the data.
 */
#define _POSIX_C_SOURCE 200809L

#include "harness.h"

#include <sys/resource.h>
#include <unistd.h>

#define MiB (1024 * 1024)

/* ---- the test data: generated, the same wherever it is cut ---- */

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15u;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

/* Bytes [off, off + n) of the test data: 4 KiB blocks, each random, zeros
 * or text by the block's number, so the whole is partly compressible. */
static void mixed(unsigned char *p, uint64_t off, size_t n)
{
	static const char text[] = "Backups are only as good as the "
	                           "restore you tested last; ";
	size_t i, run;
	int kind;

	while (n > 0) {
		run = 4096 - (size_t)(off & 4095);
		if (run > n)
			run = n;
		kind = (int)(splitmix(off >> 12) % 4);
		for (i = 0; i < run; i++) {
			uint64_t o = off + i;

			if (kind == 0)
				p[i] = (unsigned char)(splitmix(o >> 3) >>
				                       (8 * (o & 7)));
			else if (kind == 1)
				p[i] = 0;
			else
				p[i] = (unsigned char)
				       text[o % (sizeof text - 1)];
		}
		p += run;
		off += run;
		n -= run;
	}
}

static unsigned char *mixed_alloc(size_t n)
{
	unsigned char *p = malloc(n ? n : 1);

	assert_non_null(p);
	mixed(p, 0, n);
	return p;
}

struct gen_source {
	struct vk_stream s;
	uint64_t off, size;
};

static ssize_t gen_read(struct vk_stream *s, void *buf, size_t n)
{
	struct gen_source *g = (struct gen_source *)s;

	if (n > g->size - g->off)
		n = (size_t)(g->size - g->off);
	mixed(buf, g->off, n);
	g->off += n;
	return (ssize_t)n;
}

static const struct vk_stream_ops gen_ops = {
	.name = "gen",
	.read = gen_read,
};

/* lua: gen(n) -> stream of the first n bytes of the test data */
static int l_gen(lua_State *L)
{
	lua_Integer n = luaL_checkinteger(L, 1);
	struct gen_source *g;

	luaL_argcheck(L, n >= 0, 1, "negative");
	g = (struct gen_source *)vk_stream_push(L, sizeof *g, &gen_ops);
	g->size = (uint64_t)n;
	vk_open(&g->s);
	return 1;
}

static lua_State *compress_state(void)
{
	lua_State *L = new_state();

	lua_register(L, "gen", l_gen);
	run_lua(L, "stream = require 'vakap.stream'\n"
	           "hash = require 'vakap.hash'\n"
	           "compress = require 'vakap.compress'\n"
	           /* all of s, read in pieces of size: the bytes | nil, err */
	           "function readin(s, size)\n"
	           "  local parts = {}\n"
	           "  while true do\n"
	           "    local p, err = s:read(size)\n"
	           "    if p == nil then\n"
	           "      if err then\n"
	           "        return nil, err, table.concat(parts)\n"
	           "      end\n"
	           "      return table.concat(parts)\n"
	           "    end\n"
	           "    assert(#p > 0 and #p <= size)\n"
	           "    parts[#parts + 1] = p\n"
	           "  end\n"
	           "end\n"
	           "function pack(f, str, ...)\n"
	           "  local s <close> = f(stream.string(str), ...)\n"
	           "  return assert(s:readall(1 << 30))\n"
	           "end\n");
	return L;
}

static void set_global(lua_State *L, const char *name, const void *p,
                       size_t n)
{
	lua_pushlstring(L, p, n);
	lua_setglobal(L, name);
}

/* The string on top of the stack must be the n bytes at p. */
static void check_bytes(lua_State *L, int idx, const void *p, size_t n)
{
	size_t len;
	const char *s = lua_tolstring(L, idx, &len);

	assert_non_null(s);
	assert_int_equal(len, n);
	assert_true(memcmp(s, p, n) == 0);
}

static long peak_rss_kib(void)
{
	struct rusage ru;

	assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
	return ru.ru_maxrss;
}

/* ---- memory: first, so that no earlier test has raised the peak ---- */

static void test_memory_bounded(void **state)
{
	static const char *const chains[] = {
		"compress.unzstd(compress.zstd(h1))",
		"compress.gunzip(compress.gzip(h1, 1))",
	};
	lua_State *L = compress_state();
	char code[512];
	long before, grown;
	size_t i;

	(void)state;
	before = peak_rss_kib();
	for (i = 0; i < sizeof chains / sizeof chains[0]; i++) {
		snprintf(code, sizeof code,
		         "local h1 = hash.sha256(gen(64 << 20))\n"
		         "local s <close> = hash.sha256(%s)\n"
		         "local n = assert(s:drain())\n"
		         "return n, h1:info().sha256, s:info().sha256",
		         chains[i]);
		assert_int_equal(run_lua(L, code), 3);
		assert_int_equal(lua_tointeger(L, 1), 64 << 20);
		assert_non_null(lua_tostring(L, 2));
		assert_string_equal(lua_tostring(L, 2), lua_tostring(L, 3));
		lua_pop(L, 3);
	}
	grown = peak_rss_kib() - before;
	print_message("peak RSS grew by %ld KiB\n", grown);
	assert_true(grown < 32 * 1024);
	close_state(L, 0);
}

/* ---- round trips ---- */

static const struct {
	const char *comp, *decomp;
	int shrinks;          /* makes mixed data smaller */
} codecs[] = {
	{"compress.zstd", "compress.unzstd", 1},
	{"function(up) return compress.zstd(up, 1) end", "compress.unzstd", 1},
	{"function(up) return compress.zstd(up, 12) end", "compress.unzstd", 1},
	{"function(up) return compress.zstd(up, -5) end", "compress.unzstd", 1},
	{"function(up) return compress.zstd(up, 3, 2) end", "compress.unzstd",
	 1},
	{"compress.gzip", "compress.gunzip", 1},
	{"function(up) return compress.gzip(up, 1) end", "compress.gunzip", 1},
	{"function(up) return compress.gzip(up, 0) end", "compress.gunzip", 0},
	{"function(up) return compress.gzip(up, 9) end", "compress.gunzip", 1},
};
#define NCODECS (sizeof codecs / sizeof codecs[0])

/* Compress the n bytes at p with codecs[codec], decompress reading in
 * pieces of `piece`, and compare. */
static void round_trip(lua_State *L, int codec, const unsigned char *p,
                       size_t n, int piece)
{
	char code[512];

	set_global(L, "d", p, n);
	snprintf(code, sizeof code,
	         "local z = pack(%s, d)\n"
	         "local u <close> = (%s)(stream.string(z))\n"
	         "local out, err = readin(u, %d)\n"
	         "assert(out, err)\n"
	         "return out, #z",
	         codecs[codec].comp, codecs[codec].decomp, piece);
	assert_int_equal(run_lua(L, code), 2);
	check_bytes(L, 1, p, n);
	/* mixed data is mostly compressible; empty and tiny grow */
	if (n > 4096 && codecs[codec].shrinks)
		assert_true((size_t)lua_tointeger(L, 2) < n * 3 / 4);
	lua_pop(L, 2);
}

static void test_round_trips(void **state)
{
	static const size_t sizes[] = {0, 1, 4095, 3 * MiB + 77};
	lua_State *L = compress_state();
	unsigned char *p = mixed_alloc(3 * MiB + 77);
	size_t i, j;

	(void)state;
	for (i = 0; i < NCODECS; i++) {
		for (j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
			if (sizes[j] > MiB && !codecs[i].shrinks)
				continue; /* stored: no point */
			round_trip(L, (int)i, p, sizes[j], 65536);
		}
	}
	free(p);
	close_state(L, 0);
}

/* Small reads make the decompressor keep output for the next read. */
static void test_small_reads(void **state)
{
	static const int pieces[] = {1, 3, 333, 4096};
	lua_State *L = compress_state();
	unsigned char *p = mixed_alloc(40000);
	size_t i, j;

	(void)state;
	for (i = 0; i < NCODECS; i++)
		for (j = 0; j < sizeof pieces / sizeof pieces[0]; j++)
			round_trip(L, (int)i, p,
			           pieces[j] == 1 ? 12000 : 40000, pieces[j]);
	/* the compressors read in small pieces too */
	set_global(L, "d", p, 40000);
	assert_int_equal(run_lua(L, "local a <close> = "
	                            "  compress.zstd(stream.string(d))\n"
	                            "local b <close> = "
	                            "  compress.gzip(stream.string(d))\n"
	                            "local za = assert(readin(a, 1))\n"
	                            "local zb = assert(readin(b, 7))\n"
	                            "local ua <close> = "
	                            "  compress.unzstd(stream.string(za))\n"
	                            "local ub <close> = "
	                            "  compress.gunzip(stream.string(zb))\n"
	                            "return ua:readall(), ub:readall()"),
	                 2);
	check_bytes(L, 1, p, 40000);
	check_bytes(L, 2, p, 40000);
	lua_pop(L, 2);
	free(p);
	close_state(L, 0);
}

/* ---- the system's tools ---- */

static void write_temp(char *path, size_t size, const void *p, size_t n)
{
	const char *q = p;
	ssize_t w;
	int fd;

	snprintf(path, size, "/tmp/vakap-test-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	while (n > 0) {
		w = write(fd, q, n);
		assert_true(w > 0);
		q += w;
		n -= (size_t)w;
	}
	assert_int_equal(close(fd), 0);
}

/* Run "tool path" and return its output (malloc'd, *len bytes); the tool
 * must succeed. */
static char *run_tool(const char *tool, const char *path, size_t *len)
{
	char cmd[512];
	size_t cap = 65536, n = 0, r;
	char *buf = malloc(cap);
	FILE *f;

	assert_non_null(buf);
	snprintf(cmd, sizeof cmd, "%s '%s'", tool, path);
	f = popen(cmd, "r");
	assert_non_null(f);
	while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	assert_int_equal(pclose(f), 0);
	*len = n;
	return buf;
}

static void test_system_tools(void **state)
{
	static const struct {
		const char *comp, *decomp, *tool_d, *tool_c;
	} tools[] = {
		{"compress.zstd", "compress.unzstd", "zstd -q -d -c",
		 "zstd -q -c"},
		{"function(up) return compress.zstd(up, 19) end",
		 "compress.unzstd", "zstd -q -d -c", "zstd -q -19 -c"},
		{"compress.gzip", "compress.gunzip", "gzip -d -c", "gzip -c"},
		{"function(up) return compress.gzip(up, 9) end",
		 "compress.gunzip", "gzip -d -c", "gzip -9 -c"},
	};
	static const size_t sizes[] = {0, 1, MiB + 5};
	lua_State *L = compress_state();
	unsigned char *p = mixed_alloc(MiB + 5);
	char path[64], code[256];
	const char *z;
	char *out;
	size_t i, j, zlen, len;

	(void)state;
	for (i = 0; i < sizeof tools / sizeof tools[0]; i++) {
		for (j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
			/* ours, decompressed by the tool */
			set_global(L, "d", p, sizes[j]);
			snprintf(code, sizeof code, "return pack(%s, d)",
			         tools[i].comp);
			assert_int_equal(run_lua(L, code), 1);
			z = lua_tolstring(L, 1, &zlen);
			write_temp(path, sizeof path, z, zlen);
			lua_pop(L, 1);
			out = run_tool(tools[i].tool_d, path, &len);
			assert_int_equal(unlink(path), 0);
			assert_int_equal(len, sizes[j]);
			assert_true(memcmp(out, p, len) == 0);
			free(out);

			/* the tool's, decompressed by ours */
			write_temp(path, sizeof path, p, sizes[j]);
			out = run_tool(tools[i].tool_c, path, &len);
			assert_int_equal(unlink(path), 0);
			set_global(L, "z", out, len);
			free(out);
			snprintf(code, sizeof code,
			         "local u <close> = (%s)(stream.string(z))\n"
			         "return assert(u:readall(1 << 30))",
			         tools[i].decomp);
			assert_int_equal(run_lua(L, code), 1);
			check_bytes(L, 1, p, sizes[j]);
			lua_pop(L, 1);
		}
	}
	free(p);
	close_state(L, 0);
}

/* ---- concatenated frames and members, like zstd -d and gzip -d ---- */

static void test_concatenated(void **state)
{
	lua_State *L = compress_state();
	unsigned char *p = mixed_alloc(300000);

	(void)state;
	set_global(L, "d", p, 300000);
	assert_int_equal(run_lua(L, "local a = d:sub(1, 100000)\n"
	                            "local b = d:sub(100001)\n"
	                            "local zs = pack(compress.zstd, a)"
	                            "  .. pack(compress.zstd, '')"
	                            "  .. pack(compress.zstd, b, 9)\n"
	                            "local gz = pack(compress.gzip, a)"
	                            "  .. pack(compress.gzip, '')"
	                            "  .. pack(compress.gzip, b, 1)\n"
	                            "local u1 <close> = "
	                            "  compress.unzstd(stream.string(zs))\n"
	                            "local u2 <close> = "
	                            "  compress.gunzip(stream.string(gz))\n"
	                            "return assert(readin(u1, 1000)),"
	                            "       assert(readin(u2, 1000)),"
	                            "       pack(compress.unzstd,"
	                            "            pack(compress.zstd, '') .."
	                            "            pack(compress.zstd, ''))"),
	                 3);
	check_bytes(L, 1, p, 300000);
	check_bytes(L, 2, p, 300000);
	check_bytes(L, 3, "", 0);
	lua_pop(L, 3);
	free(p);
	close_state(L, 0);
}

/* ---- truncated and corrupt input: errors, never a clean end ---- */

/* Decompress the string z with decomp; it must fail with a message that
 * starts with `want` (all of it if exact), having given only a prefix of
 * the n bytes at p (unchecked if p is NULL: corrupt data may be handed on
 * before the checksum at the end finds it out). */
static void check_fails(lua_State *L, const char *decomp, const char *z,
                        size_t zlen, const char *want, int exact,
                        const unsigned char *p, size_t n)
{
	char code[256];
	const char *err, *got;
	size_t len;

	set_global(L, "z", z, zlen);
	snprintf(code, sizeof code,
	         "local u <close> = %s(stream.string(z))\n"
	         "local out, err, before = readin(u, 4096)\n"
	         "return out, err, before, u:info().state",
	         decomp);
	assert_int_equal(run_lua(L, code), 4);
	assert_true(lua_isnil(L, -4));
	err = lua_tostring(L, -3);
	assert_non_null(err);
	if (exact)
		assert_string_equal(err, want);
	else
		assert_true(strncmp(err, want, strlen(want)) == 0);
	got = lua_tolstring(L, -2, &len);
	assert_non_null(got);
	if (p != NULL) {
		assert_true(len <= n);
		assert_true(memcmp(got, p, len) == 0);
	}
	assert_string_equal(lua_tostring(L, -1), "failed");
	lua_pop(L, 4);
}

static const struct {
	const char *comp, *decomp, *prefix, *truncated;
} formats[] = {
	{"compress.zstd", "compress.unzstd", "zstd: ", "zstd: truncated input"},
	{"compress.gzip", "compress.gunzip", "gzip: ", "gzip: truncated input"},
};

static void test_truncated(void **state)
{
	lua_State *L = compress_state();
	unsigned char *p = mixed_alloc(200000), *twice = malloc(400000);
	char code[128];
	const char *z;
	size_t i, j, zlen, cuts[8];

	(void)state;
	assert_non_null(twice);
	memcpy(twice, p, 200000);
	memcpy(twice + 200000, p, 200000);
	set_global(L, "d", p, 200000);
	for (i = 0; i < 2; i++) {
		snprintf(code, sizeof code, "return pack(%s, d)",
		         formats[i].comp);
		assert_int_equal(run_lua(L, code), 1);
		z = lua_tolstring(L, 1, &zlen);
		cuts[0] = 0;
		cuts[1] = 1;
		cuts[2] = 5;
		cuts[3] = zlen / 3;
		cuts[4] = zlen / 2;
		cuts[5] = zlen - 8;
		cuts[6] = zlen - 4;
		cuts[7] = zlen - 1;
		for (j = 0; j < 8; j++)
			check_fails(L, formats[i].decomp, z, cuts[j],
			            formats[i].truncated, 1, p, 200000);
		/* a whole stream then part of another */
		lua_pushlstring(L, z, zlen);
		lua_pushlstring(L, z, zlen / 2);
		lua_concat(L, 2);
		z = lua_tolstring(L, -1, &zlen);
		check_fails(L, formats[i].decomp, z, zlen,
		            formats[i].truncated, 1, twice, 400000);
		lua_pop(L, 2);
	}
	free(twice);
	free(p);
	close_state(L, 0);
}

static void test_corrupt(void **state)
{
	lua_State *L = compress_state();
	unsigned char *p = mixed_alloc(200000);
	char code[128], *bad;
	const char *z;
	size_t i, j, zlen, at[6];

	(void)state;
	set_global(L, "d", p, 200000);
	for (i = 0; i < 2; i++) {
		snprintf(code, sizeof code, "return pack(%s, d)",
		         formats[i].comp);
		assert_int_equal(run_lua(L, code), 1);
		z = lua_tolstring(L, 1, &zlen);
		bad = malloc(zlen + 16);
		assert_non_null(bad);
		/* in the compressed data, and in the checksum at the end */
		at[0] = 20;
		at[1] = zlen / 4;
		at[2] = zlen / 2;
		at[3] = zlen * 3 / 4;
		at[4] = zlen - 3;
		at[5] = zlen - 1;
		for (j = 0; j < 6; j++) {
			memcpy(bad, z, zlen);
			bad[at[j]] ^= 0x55;
			check_fails(L, formats[i].decomp, bad, zlen,
			            formats[i].prefix, 0, NULL, 0);
		}
		/* not compressed at all */
		check_fails(L, formats[i].decomp, (const char *)p, 5000,
		            formats[i].prefix, 0, p, 0);
		/* garbage after a whole stream */
		memcpy(bad, z, zlen);
		memcpy(bad + zlen, "trailing garbage", 16);
		check_fails(L, formats[i].decomp, bad, zlen + 16,
		            formats[i].prefix, 0, p, 200000);
		free(bad);
		lua_pop(L, 1);
	}
	close_state(L, 0);
	free(p);
}

/* ---- info and misuse ---- */

static void test_info(void **state)
{
	lua_State *L = compress_state();
	unsigned char *p = mixed_alloc(100000);
	int i;

	(void)state;
	set_global(L, "d", p, 100000);
	for (i = 0; i < 2; i++) {
		lua_pushstring(L, i == 0 ? "zstd" : "gzip");
		lua_setglobal(L, "alg");
		assert_int_equal(run_lua(L,
		                 "local comp = compress[alg]\n"
		                 "local decomp = alg == 'zstd' and"
		                 "  compress.unzstd or compress.gunzip\n"
		                 "local a <close> = comp(stream.string(d), 2)\n"
		                 "local pre = a:info()\n"
		                 "local z = a:readall()\n"
		                 "local ia = a:info()\n"
		                 "local b <close> = decomp(stream.string(z))\n"
		                 "assert(b:readall() == d)\n"
		                 "local ib = b:info()\n"
		                 "return #z, pre.in_bytes, pre.out_bytes,"
		                 "  ia.type, ia.algorithm, ia.in_bytes,"
		                 "  ia.out_bytes, ia.bytes, ia.level,"
		                 "  ib.type, ib.algorithm, ib.in_bytes,"
		                 "  ib.out_bytes, ib.level, ib.state"),
		                 15);
		assert_int_equal(lua_tointeger(L, 2), 0);
		assert_int_equal(lua_tointeger(L, 3), 0);
		assert_string_equal(lua_tostring(L, 4),
		                    i == 0 ? "zstd" : "gzip");
		assert_string_equal(lua_tostring(L, 5),
		                    i == 0 ? "zstd" : "gzip");
		assert_int_equal(lua_tointeger(L, 6), 100000);
		assert_int_equal(lua_tointeger(L, 7), lua_tointeger(L, 1));
		assert_int_equal(lua_tointeger(L, 8), lua_tointeger(L, 1));
		assert_int_equal(lua_tointeger(L, 9), 2);
		assert_string_equal(lua_tostring(L, 10),
		                    i == 0 ? "unzstd" : "gunzip");
		assert_string_equal(lua_tostring(L, 11),
		                    i == 0 ? "zstd" : "gzip");
		assert_int_equal(lua_tointeger(L, 12), lua_tointeger(L, 1));
		assert_int_equal(lua_tointeger(L, 13), 100000);
		assert_true(lua_isnil(L, 14));
		assert_string_equal(lua_tostring(L, 15), "ended");
		lua_pop(L, 15);
	}
	free(p);
	close_state(L, 0);
}

static void test_misuse(void **state)
{
	static const char *const calls[] = {
		"compress.zstd(stream.string(''), 23)",
		"compress.zstd(stream.string(''), -200000)",
		"compress.zstd(stream.string(''), 1.5)",
		"compress.zstd(stream.string(''), 'fast')",
		"compress.zstd(stream.string(''), 3, -1)",
		"compress.zstd(stream.string(''), 3, 100000)",
		"compress.gzip(stream.string(''), 10)",
		"compress.gzip(stream.string(''), -1)",
		"compress.zstd('data')",
		"compress.unzstd(nil)",
		"compress.gzip({})",
		"compress.gunzip()",
	};
	lua_State *L = compress_state();
	char code[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof calls / sizeof calls[0]; i++) {
		snprintf(code, sizeof code,
		         "return pcall(function() return %s end)", calls[i]);
		assert_int_equal(run_lua(L, code), 2);
		assert_false(lua_toboolean(L, 1));
		assert_non_null(strstr(lua_tostring(L, 2), "bad argument"));
		lua_pop(L, 2);
	}
	/* a filter cannot take a stream another filter reads */
	assert_int_equal(run_lua(L, "local s = stream.string('x')\n"
	                            "local a <close> = compress.zstd(s)\n"
	                            "return pcall(compress.gunzip, s)"),
	                 2);
	assert_false(lua_toboolean(L, 1));
	assert_non_null(strstr(lua_tostring(L, 2), "already read"));
	lua_pop(L, 2);
	close_state(L, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory_bounded),
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_small_reads),
		cmocka_unit_test(test_system_tools),
		cmocka_unit_test(test_concatenated),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_info),
		cmocka_unit_test(test_misuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
