/*
 * The stream core: reading in pieces, the end, closing, adoption by a
 * filter, and an error at the source travelling through filters to the
 * reader.
 */
#define _POSIX_C_SOURCE 200809L

#include <time.h>

#include "harness.h"

/* ---- a source that yields some bytes, then fails with "boom" ---- */

struct failing_source {
	struct vk_stream s;
	size_t left;          /* bytes still to yield before failing */
	uint64_t pos;
};

static int failing_releases; /* release() calls, across all of them */

static ssize_t failing_read(struct vk_stream *s, void *buf, size_t n)
{
	struct failing_source *src = (struct failing_source *)s;
	unsigned char *p = buf;
	size_t i;

	if (src->left == 0)
		return vk_fail(s, "boom");
	if (n > src->left)
		n = src->left;
	for (i = 0; i < n; i++, src->pos++)
		p[i] = (unsigned char)(src->pos * 7 + (src->pos >> 9));
	src->left -= n;
	return (ssize_t)n;
}

static void failing_release(struct vk_stream *s)
{
	(void)s;
	failing_releases++;
}

static const struct vk_stream_ops failing_ops = {
	.name = "failing",
	.read = failing_read,
	.release = failing_release,
};

/* lua: failing(n) -> stream of n bytes, then failing with "boom" */
static int l_failing(lua_State *L)
{
	lua_Integer n = luaL_checkinteger(L, 1);
	struct failing_source *src;

	src = (struct failing_source *)vk_stream_push(L, sizeof *src,
	                                              &failing_ops);
	src->left = (size_t)n;
	vk_open(&src->s);
	return 1;
}

/* A fresh state with `failing` and the modules as globals. */
static lua_State *stream_state(void)
{
	lua_State *L = new_state();

	lua_register(L, "failing", l_failing);
	run_lua(L, "stream = require 'vakap.stream'\n"
	           "hash = require 'vakap.hash'\n"
	           "compress = require 'vakap.compress'\n");
	return L;
}

static const char text[] = "The quick brown fox jumps over the lazy dog, "
                           "twice: the quick brown fox jumps over the "
                           "lazy dog.";

static void test_read_in_pieces(void **state)
{
	static const int sizes[] = {1, 2, 7, 13, 64, 1000};
	lua_State *L = stream_state();
	size_t i, len;
	const char *got;
	char code[512];

	(void)state;
	lua_pushstring(L, text);
	lua_setglobal(L, "text");
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		snprintf(code, sizeof code,
		         "local s <close> = stream.string(text)\n"
		         "local parts, n = {}, 0\n"
		         "while true do\n"
		         "  local p = s:read(%d)\n"
		         "  if p == nil then break end\n"
		         "  assert(#p <= %d, 'read more than asked')\n"
		         "  n = n + 1\n"
		         "  parts[n] = p\n"
		         "end\n"
		         "return table.concat(parts), n\n",
		         sizes[i], sizes[i]);
		assert_int_equal(run_lua(L, code), 2);
		got = lua_tolstring(L, -2, &len);
		assert_int_equal(len, strlen(text));
		assert_memory_equal(got, text, len);
		/* each read but the last gives all it was asked */
		assert_int_equal(lua_tointeger(L, -1),
		                 (strlen(text) + sizes[i] - 1) / sizes[i]);
		lua_pop(L, 2);
	}
	assert_int_equal(run_lua(L, "local s <close> = stream.string(text)\n"
	                            "local head = s:read(5)\n"
	                            "return head, s:readall()"),
	                 2);
	assert_string_equal(lua_tostring(L, -2), "The q");
	assert_string_equal(lua_tostring(L, -1), text + 5);
	lua_pop(L, 2);
	close_state(L, 0);
}

static void test_binary_and_empty(void **state)
{
	static const char bin[] = {'a', '\0', 'b', '\0', '\0', '\xff'};
	lua_State *L = stream_state();
	size_t len;
	const char *got;

	(void)state;
	lua_pushlstring(L, bin, sizeof bin);
	lua_setglobal(L, "bin");
	assert_int_equal(run_lua(L, "return stream.string(bin):readall()"), 1);
	got = lua_tolstring(L, -1, &len);
	assert_int_equal(len, sizeof bin);
	assert_memory_equal(got, bin, sizeof bin);
	lua_pop(L, 1);

	assert_int_equal(run_lua(L, "local s <close> = stream.string('')\n"
	                            "return s:readall(), select('#', s:read()),"
	                            "       s:read()"),
	                 3);
	assert_string_equal(lua_tostring(L, -3), "");
	assert_int_equal(lua_tointeger(L, -2), 1);
	assert_true(lua_isnil(L, -1));
	lua_pop(L, 3);
	close_state(L, 0);
}

static void test_eof_returns_nil(void **state)
{
	lua_State *L = stream_state();

	(void)state;
	assert_int_equal(run_lua(L, "local s <close> = stream.string('xyz')\n"
	                            "local all = s:read(100)\n"
	                            "local n1 = select('#', s:read())\n"
	                            "local a, b = s:read()\n"
	                            "return all, n1, a == nil, b == nil,"
	                            "       s:info().state"),
	                 5);
	assert_string_equal(lua_tostring(L, 1), "xyz");
	assert_int_equal(lua_tointeger(L, 2), 1); /* nil alone, no message */
	assert_true(lua_toboolean(L, 3));
	assert_true(lua_toboolean(L, 4));
	assert_string_equal(lua_tostring(L, 5), "ended");
	lua_pop(L, 5);
	close_state(L, 0);
}

/* stream.tail passes the bytes through and keeps the last 4 KiB of
 * them; an upstream failure reaches its reader. */
static void test_tail(void **state)
{
	lua_State *L = stream_state();

	(void)state;
	assert_int_equal(run_lua(L,
		"local body = ('x'):rep(100000) .. '-- Dump completed\\n'\n"
		"local s <close> = stream.tail(stream.string(body))\n"
		"local all = s:readall()\n"
		"local t = s:info().tail\n"
		"local e <close> = stream.tail(stream.string(''))\n"
		"e:drain()\n"
		"local f <close> = stream.tail(failing(10))\n"
		"local ok, err = f:drain()\n"
		"return all == body, #t, t:sub(-18), e:info().tail, ok, err"),
	                 6);
	assert_true(lua_toboolean(L, 1));
	assert_int_equal(lua_tointeger(L, 2), 4096);
	assert_string_equal(lua_tostring(L, 3), "-- Dump completed\n");
	assert_string_equal(lua_tostring(L, 4), "");
	assert_true(lua_isnil(L, 5));
	assert_non_null(lua_tostring(L, 6));
	lua_pop(L, 6);
	close_state(L, 0);
}

/* stream.tail's checks at the end: an empty stream, and an end without
 * its completion line, fail the stream (a sink then keeps nothing); a
 * whole one passes. */
static void test_tail_checks(void **state)
{
	lua_State *L = stream_state();

	(void)state;
	assert_int_equal(run_lua(L,
		"local opts = { empty = 'wrote nothing', marker = '-- Dump completed',\n"
		"               unmarked = 'cut short' }\n"
		"local function drain(text)\n"
		"  local s <close> = stream.tail(stream.string(text), opts)\n"
		"  return select(2, s:drain())\n"
		"end\n"
		"local ok, err = pcall(stream.tail, stream.string(''), { marker = 'x' })\n"
		"return drain(''), drain('CREATE TABLE t;\\n'),\n"
		"  drain('x\\n-- Dump completed on today\\n'), ok, err"),
	                 5);
	assert_string_equal(lua_tostring(L, 1), "wrote nothing");
	assert_string_equal(lua_tostring(L, 2), "cut short");
	assert_true(lua_isnil(L, 3));
	assert_false(lua_toboolean(L, 4));
	assert_non_null(strstr(lua_tostring(L, 5), "marker and unmarked go together"));
	lua_pop(L, 5);
	close_state(L, 0);
}

/* readall past its limit fails saying the limit (a message, not a
 * format error). */
static void test_readall_limit(void **state)
{
	lua_State *L = stream_state();

	(void)state;
	assert_int_equal(run_lua(L,
		"local s <close> = stream.string(('x'):rep(100))\n"
		"return s:readall(10)"), 2);
	assert_true(lua_isnil(L, 1));
	assert_string_equal(lua_tostring(L, 2), "output larger than 10 bytes");
	lua_pop(L, 2);
	close_state(L, 0);
}

static void test_close_twice(void **state)
{
	lua_State *L = stream_state();

	(void)state;
	failing_releases = 0;
	assert_int_equal(run_lua(L, "local s = failing(10)\n"
	                            "s:close()\n"
	                            "s:close()\n"
	                            "do local t <close> = s end\n"
	                            "return s:info().state, tostring(s)"),
	                 2);
	assert_string_equal(lua_tostring(L, 1), "closed");
	assert_string_equal(lua_tostring(L, 2),
	                    "vakap.stream (failing, closed)");
	lua_pop(L, 2);
	assert_int_equal(failing_releases, 1);
	/* collecting a closed stream does not release it again */
	lua_gc(L, LUA_GCCOLLECT);
	assert_int_equal(failing_releases, 1);
	/* nor does closing the state, for one never closed */
	run_lua(L, "keep = failing(10)");
	close_state(L, 0);
	assert_int_equal(failing_releases, 2);
}

static void test_read_closed_raises(void **state)
{
	lua_State *L = stream_state();

	(void)state;
	assert_int_equal(run_lua(L, "local s = stream.string('abc')\n"
	                            "s:close()\n"
	                            "local ok1, e1 = pcall(s.read, s)\n"
	                            "local ok2, e2 = pcall(s.readall, s)\n"
	                            "local ok3 = pcall(s.drain, s)\n"
	                            "return ok1, e1, ok2, e2, ok3"),
	                 5);
	assert_false(lua_toboolean(L, 1));
	assert_non_null(strstr(lua_tostring(L, 2), "closed stream"));
	assert_false(lua_toboolean(L, 3));
	assert_non_null(strstr(lua_tostring(L, 4), "closed stream"));
	assert_false(lua_toboolean(L, 5));
	lua_pop(L, 5);
	close_state(L, 0);
}

static void test_adopted_not_readable(void **state)
{
	lua_State *L = stream_state();

	(void)state;
	failing_releases = 0;
	assert_int_equal(run_lua(L, "local src = failing(5)\n"
	                            "local f = hash.sha256(src)\n"
	                            "local ok1, e1 = pcall(src.read, src)\n"
	                            "local ok2, e2 = pcall(hash.sha256, src)\n"
	                            "local ok3 = pcall(compress.zstd, src)\n"
	                            "local i = src:info()\n"
	                            "f:close()\n"
	                            "return ok1, e1, ok2, e2, ok3, i.state,"
	                            "       src:info().state"),
	                 7);
	assert_false(lua_toboolean(L, 1));
	assert_non_null(strstr(lua_tostring(L, 2), "already read by a filter"));
	assert_false(lua_toboolean(L, 3));
	assert_non_null(strstr(lua_tostring(L, 4), "already read by a filter"));
	assert_false(lua_toboolean(L, 5));
	assert_string_equal(lua_tostring(L, 6), "open");
	/* closing the filter closed its upstream */
	assert_string_equal(lua_tostring(L, 7), "closed");
	assert_int_equal(failing_releases, 1);
	lua_pop(L, 7);
	close_state(L, 0);
	assert_int_equal(failing_releases, 1);
}

static void test_misuse_raises(void **state)
{
	lua_State *L = stream_state();

	(void)state;
	assert_int_equal(run_lua(L, "return pcall(hash.sha256, 'not a stream'),"
	                            "  pcall(compress.zstd, {}),"
	                            "  (pcall(stream.string, {}))"),
	                 3);
	assert_false(lua_toboolean(L, 1));
	assert_false(lua_toboolean(L, 2));
	assert_false(lua_toboolean(L, 3));
	lua_pop(L, 3);
	assert_int_equal(run_lua(L, "local s <close> = stream.string('abc')\n"
	                            "local ok, err = pcall(s.read, s, 0)\n"
	                            "return ok, err, s:read(),"
	                            "       (pcall(s.read, s, 'x'))"),
	                 4);
	assert_false(lua_toboolean(L, 1));
	assert_non_null(strstr(lua_tostring(L, 2), "must be positive"));
	assert_string_equal(lua_tostring(L, 3), "abc");
	assert_false(lua_toboolean(L, 4));
	lua_pop(L, 4);
	close_state(L, 0);
}

/* Read `expr` to the end in pieces of `size`: returns the bytes before the
 * failure and what the reads returned after it. */
static void read_until_failure(lua_State *L, const char *expr, int size)
{
	char code[1024];

	snprintf(code, sizeof code,
	         "local s <close> = %s\n"
	         "local got = 0\n"
	         "while true do\n"
	         "  local p, err = s:read(%d)\n"
	         "  if p == nil then\n"
	         "    local again, err2 = s:read()\n"
	         "    return got, err, again, err2, s:info().state,"
	         "           s:info().error\n"
	         "  end\n"
	         "  got = got + #p\n"
	         "end\n",
	         expr, size);
	assert_int_equal(run_lua(L, code), 6);
	assert_non_null(lua_tostring(L, -5)); /* not a clean end */
	assert_string_equal(lua_tostring(L, -5), "boom");
	assert_true(lua_isnil(L, -4));
	assert_string_equal(lua_tostring(L, -3), "boom"); /* sticky */
	assert_string_equal(lua_tostring(L, -2), "failed");
	assert_string_equal(lua_tostring(L, -1), "boom");
}

static void test_error_propagates(void **state)
{
	static const struct {
		const char *expr;
		int size;
		lua_Integer bytes; /* -1: not known in advance */
	} cases[] = {
		{"failing(0)", 100, 0},
		{"failing(300000)", 4096, 300000},
		{"hash.sha256(failing(3000))", 1, 3000},
		{"hash.sha256(failing(300000))", 65536, 300000},
		{"compress.zstd(failing(300000))", 1000, -1},
		{"compress.zstd(hash.sha256(failing(300000)))", 7, -1},
		{"compress.gzip(hash.sha256(failing(300000)))", 4096, -1},
		{"compress.unzstd(compress.zstd(failing(300000)))", 4096, -1},
		{"compress.gunzip(compress.gzip(failing(300000)))", 4096, -1},
		{"stream.ahead(failing(0))", 100, 0},
		{"stream.ahead(failing(300000), 65536)", 1000, 300000},
		{"hash.sha256(stream.ahead(compress.zstd(failing(300000))))", 4096, -1},
	};
	lua_State *L = stream_state();
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		read_until_failure(L, cases[i].expr, cases[i].size);
		if (cases[i].bytes >= 0)
			assert_int_equal(lua_tointeger(L, -6), cases[i].bytes);
		lua_pop(L, 6);
	}
	/* readall and drain report the error too, not a shorter result */
	assert_int_equal(run_lua(L, "local a <close> = "
	                            "  compress.zstd(hash.sha256("
	                            "    failing(5000)))\n"
	                            "local b <close> = "
	                            "  hash.sha256(failing(5000))\n"
	                            "local c <close> = "
	                            "  compress.gzip(failing(5000))\n"
	                            "local x, ex = a:readall()\n"
	                            "local y, ey = b:drain()\n"
	                            "local z, ez = c:readall()\n"
	                            "return x, ex, y, ey, z, ez,"
	                            "       b:info().sha256"),
	                 7);
	assert_true(lua_isnil(L, 1));
	assert_string_equal(lua_tostring(L, 2), "boom");
	assert_true(lua_isnil(L, 3));
	assert_string_equal(lua_tostring(L, 4), "boom");
	assert_true(lua_isnil(L, 5));
	assert_string_equal(lua_tostring(L, 6), "boom");
	assert_true(lua_isnil(L, 7));
	lua_pop(L, 7);
	close_state(L, 0);
}

static void test_info_fields(void **state)
{
	lua_State *L = stream_state();

	(void)state;
	assert_int_equal(run_lua(L, "local s <close> = stream.string('hello')\n"
	                            "local a = s:info()\n"
	                            "s:read(2)\n"
	                            "local b = s:info()\n"
	                            "s:readall()\n"
	                            "local c = s:info()\n"
	                            "return a.type, a.state, a.bytes, a.error,"
	                            "       b.state, b.bytes,"
	                            "       c.state, c.bytes, c.error,"
	                            "       stream.chunk"),
	                 10);
	assert_string_equal(lua_tostring(L, 1), "string");
	assert_string_equal(lua_tostring(L, 2), "open");
	assert_int_equal(lua_tointeger(L, 3), 0);
	assert_true(lua_isnil(L, 4));
	assert_string_equal(lua_tostring(L, 5), "open");
	assert_int_equal(lua_tointeger(L, 6), 2);
	assert_string_equal(lua_tostring(L, 7), "ended");
	assert_int_equal(lua_tointeger(L, 8), 5);
	assert_true(lua_isnil(L, 9));
	assert_int_equal(lua_tointeger(L, 10), VK_CHUNK);
	lua_pop(L, 10);

	assert_int_equal(run_lua(L, "local s <close> = failing(3)\n"
	                            "s:drain()\n"
	                            "local i = s:info()\n"
	                            "return i.type, i.state, i.bytes, i.error"),
	                 4);
	assert_string_equal(lua_tostring(L, 1), "failing");
	assert_string_equal(lua_tostring(L, 2), "failed");
	assert_int_equal(lua_tointeger(L, 3), 3);
	assert_string_equal(lua_tostring(L, 4), "boom");
	lua_pop(L, 4);

	assert_int_equal(run_lua(L, "local s <close> = "
	                            "  compress.zstd(stream.string('hello'))\n"
	                            "local n = #s:readall()\n"
	                            "local i = s:info()\n"
	                            "return i.type, i.state, i.bytes, n"),
	                 4);
	assert_string_equal(lua_tostring(L, 1), "zstd");
	assert_string_equal(lua_tostring(L, 2), "ended");
	assert_int_equal(lua_tointeger(L, 3), lua_tointeger(L, 4));
	lua_pop(L, 4);
	close_state(L, 0);
}

static void test_collect_chain(void **state)
{
	lua_State *L = stream_state();

	(void)state;
	failing_releases = 0;
	/* chains dropped unclosed, in mid-read, are released once each */
	run_lua(L, "for i = 1, 20 do\n"
	           "  local s = compress.gzip(hash.sha256(failing(100000)))\n"
	           "  s:read(10)\n"
	           "end\n"
	           "collectgarbage()\n");
	assert_int_equal(failing_releases, 20);
	close_state(L, 0);
	assert_int_equal(failing_releases, 20);
}

/* stream.ahead: the same bytes, in whatever pieces, through a ring that
 * wraps many times */
static void test_ahead_passes_bytes(void **state)
{
	lua_State *L = stream_state();

	(void)state;
	assert_int_equal(run_lua(L, "local parts = {}\n"
	                            "for i = 1, 40000 do\n"
	                            "  parts[i] = string.pack('<I4', i * 2654435761 % 2^32)\n"
	                            "end\n"
	                            "local data = table.concat(parts)\n"
	                            "local sizes = { 1, 7, 4096, 70000, 1 << 20 }\n"
	                            "local ok = 0\n"
	                            "for _, size in ipairs(sizes) do\n"
	                            "  local s <close> = stream.ahead(stream.string(data), 65536)\n"
	                            "  local got = {}\n"
	                            "  while true do\n"
	                            "    local p = s:read(size)\n"
	                            "    if p == nil then break end\n"
	                            "    assert(#p <= size, 'read more than asked')\n"
	                            "    got[#got + 1] = p\n"
	                            "  end\n"
	                            "  if table.concat(got) == data then ok = ok + 1 end\n"
	                            "end\n"
	                            "local e <close> = stream.ahead(stream.string(''))\n"
	                            "local empty, eerr = e:read()\n"
	                            "local i = stream.ahead(stream.string('x'), 65536):info()\n"
	                            "return ok, #sizes, empty, eerr, e:info().state,"
	                            "       i.type, i.ahead"),
	                 7);
	assert_int_equal(lua_tointeger(L, 1), lua_tointeger(L, 2));
	assert_true(lua_isnil(L, 3));
	assert_true(lua_isnil(L, 4)); /* a clean end */
	assert_string_equal(lua_tostring(L, 5), "ended");
	assert_string_equal(lua_tostring(L, 6), "ahead");
	assert_int_equal(lua_tointeger(L, 7), 65536);
	lua_pop(L, 7);
	assert_int_equal(run_lua(L, "return pcall(stream.ahead, stream.string('x'), 100)"), 2);
	assert_false(lua_toboolean(L, 1));
	assert_non_null(strstr(lua_tostring(L, 2), "bytes out of range"));
	lua_pop(L, 2);
	close_state(L, 0);
}

/* Closing stops the thread, even while it waits on its upstream, and
 * releases the chain once; so does dropping it unclosed. */
static void test_ahead_close(void **state)
{
	lua_State *L = stream_state();
	struct timespec t0, t1;

	(void)state;
	failing_releases = 0;
	run_lua(L, "for i = 1, 10 do\n"
	           "  local s = stream.ahead(hash.sha256(failing(1000000)), 65536)\n"
	           "  assert(#s:read(10) == 10)\n"
	           "  if i % 2 == 0 then s:close() end\n"
	           "end\n"
	           "collectgarbage()\n");
	assert_int_equal(failing_releases, 10);

	/* the upstream has given one byte and then waits 30 s for the next:
	 * closing does not wait for it */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(run_lua(L, "local proc = require 'vakap.proc'\n"
	                            "local up = proc.spawn({ 'sh', '-c', 'printf x; exec sleep 30' })\n"
	                            "local s = stream.ahead(up)\n"
	                            "local first = s:read()\n"
	                            "s:close()\n"
	                            "return first, s:info().state, up:info().state"),
	                 3);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_string_equal(lua_tostring(L, 1), "x");
	assert_string_equal(lua_tostring(L, 2), "closed");
	assert_string_equal(lua_tostring(L, 3), "closed");
	assert_true(t1.tv_sec - t0.tv_sec < 20); /* not the sleep's 30 s */
	lua_pop(L, 3);
	close_state(L, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_in_pieces),
		cmocka_unit_test(test_binary_and_empty),
		cmocka_unit_test(test_eof_returns_nil),
		cmocka_unit_test(test_close_twice),
		cmocka_unit_test(test_read_closed_raises),
		cmocka_unit_test(test_adopted_not_readable),
		cmocka_unit_test(test_misuse_raises),
		cmocka_unit_test(test_error_propagates),
		cmocka_unit_test(test_info_fields),
		cmocka_unit_test(test_collect_chain),
		cmocka_unit_test(test_tail),
		cmocka_unit_test(test_tail_checks),
		cmocka_unit_test(test_readall_limit),
		cmocka_unit_test(test_ahead_passes_bytes),
		cmocka_unit_test(test_ahead_close),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
