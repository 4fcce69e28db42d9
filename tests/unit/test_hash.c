/*
 * vakap.hash: SHA-256 known answers (FIPS 180-2 examples) through the
 * filter at various read sizes, the bytes passing through unchanged, no
 * digest for a failed stream, and sha256_hex.
 */
#define _POSIX_C_SOURCE 200809L

#include "harness.h"

static const char empty_sha[] =
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
static const char abc_sha[] =
	"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char nist448[] =
	"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
static const char nist448_sha[] =
	"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
static const char million_a_sha[] =
	"cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

/* ---- a source repeating one byte, generated, never stored ---- */

struct repeat_source {
	struct vk_stream s;
	unsigned char byte;
	size_t left;
	int fail;             /* at the end: fail with "boom", not end */
};

static ssize_t repeat_read(struct vk_stream *s, void *buf, size_t n)
{
	struct repeat_source *src = (struct repeat_source *)s;

	if (src->left == 0)
		return src->fail ? vk_fail(s, "boom") : 0;
	if (n > src->left)
		n = src->left;
	memset(buf, src->byte, n);
	src->left -= n;
	return (ssize_t)n;
}

static const struct vk_stream_ops repeat_ops = {
	.name = "repeat",
	.read = repeat_read,
};

/* lua: rep(byte, count [, fail]) -> stream of count copies of the one-byte
 * string byte, then an end, or a failure "boom" if fail */
static int l_rep(lua_State *L)
{
	size_t len;
	const char *byte = luaL_checklstring(L, 1, &len);
	lua_Integer count = luaL_checkinteger(L, 2);
	int fail = lua_toboolean(L, 3);
	struct repeat_source *src;

	luaL_argcheck(L, len == 1, 1, "one byte");
	luaL_argcheck(L, count >= 0, 2, "negative");
	src = (struct repeat_source *)vk_stream_push(L, sizeof *src,
	                                             &repeat_ops);
	src->byte = (unsigned char)byte[0];
	src->left = (size_t)count;
	src->fail = fail;
	vk_open(&src->s);
	return 1;
}

static lua_State *hash_state(void)
{
	lua_State *L = new_state();

	lua_register(L, "rep", l_rep);
	run_lua(L, "stream = require 'vakap.stream'\n"
	           "hash = require 'vakap.hash'\n"
	           "compress = require 'vakap.compress'\n"
	           /* read s in pieces of size; the bytes, then s's info */
	           "function readin(s, size)\n"
	           "  local parts = {}\n"
	           "  assert(s:info().sha256 == nil, 'digest before the end')\n"
	           "  while true do\n"
	           "    local p, err = s:read(size)\n"
	           "    if p == nil then assert(err == nil, err) break end\n"
	           "    assert(#p <= size)\n"
	           "    parts[#parts + 1] = p\n"
	           "  end\n"
	           "  return table.concat(parts), s:info()\n"
	           "end\n");
	return L;
}

/* Check the digest of the Lua string in global `msg` through the filter
 * read in pieces of each size, and through sha256_hex. */
static void check_string(lua_State *L, const char *msg, size_t len,
                         const char *want)
{
	static const int sizes[] = {1, 2, 3, 55, 56, 63, 64, 65, 4096};
	char code[1024];
	const char *got;
	size_t i, glen;

	lua_pushlstring(L, msg, len);
	lua_setglobal(L, "msg");
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		snprintf(code, sizeof code,
		         "local s <close> = hash.sha256(stream.string(msg))\n"
		         "local data, info = readin(s, %d)\n"
		         "return data, info.sha256, info.bytes, info.type",
		         sizes[i]);
		assert_int_equal(run_lua(L, code), 4);
		got = lua_tolstring(L, 1, &glen);
		assert_int_equal(glen, len); /* passed through unchanged */
		assert_memory_equal(got, msg, len);
		assert_string_equal(lua_tostring(L, 2), want);
		assert_int_equal(lua_tointeger(L, 3), len);
		assert_string_equal(lua_tostring(L, 4), "sha256");
		lua_pop(L, 4);
	}
	assert_int_equal(run_lua(L, "return hash.sha256_hex(msg)"), 1);
	assert_string_equal(lua_tostring(L, 1), want);
	lua_pop(L, 1);
}

static void test_known_answers(void **state)
{
	lua_State *L = hash_state();

	(void)state;
	check_string(L, "", 0, empty_sha);
	check_string(L, "abc", 3, abc_sha);
	check_string(L, nist448, strlen(nist448), nist448_sha);
	close_state(L, 0);
}

static void test_million_a(void **state)
{
	static const int sizes[] = {7, 4096, 65536, 1000000};
	lua_State *L = hash_state();
	char code[1024];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		snprintf(code, sizeof code,
		         "local s <close> = hash.sha256(rep('a', 1000000))\n"
		         "local n = 0\n"
		         "while true do\n"
		         "  local p, err = s:read(%d)\n"
		         "  if p == nil then assert(not err, err) break end\n"
		         "  assert(p == string.rep('a', #p), 'bytes changed')\n"
		         "  n = n + #p\n"
		         "end\n"
		         "local i = s:info()\n"
		         "return i.sha256, i.bytes, n",
		         sizes[i]);
		assert_int_equal(run_lua(L, code), 3);
		assert_string_equal(lua_tostring(L, 1), million_a_sha);
		assert_int_equal(lua_tointeger(L, 2), 1000000);
		assert_int_equal(lua_tointeger(L, 3), 1000000);
		lua_pop(L, 3);
	}
	/* drained by a sink, and kept after closing */
	assert_int_equal(run_lua(L, "local s = hash.sha256(rep('a', 1000000))\n"
	                            "local n = s:drain()\n"
	                            "s:close()\n"
	                            "return n, s:info().sha256,"
	                            "       hash.sha256_hex(string.rep('a', "
	                            "1000000))"),
	                 3);
	assert_int_equal(lua_tointeger(L, 1), 1000000);
	assert_string_equal(lua_tostring(L, 2), million_a_sha);
	assert_string_equal(lua_tostring(L, 3), million_a_sha);
	lua_pop(L, 3);
	close_state(L, 0);
}

static void test_no_digest_after_failure(void **state)
{
	lua_State *L = hash_state();

	(void)state;
	assert_int_equal(run_lua(L, "local s <close> = "
	                            "  hash.sha256(rep('a', 1000, true))\n"
	                            "local data, err = s:readall()\n"
	                            "local i = s:info()\n"
	                            "return data, err, i.sha256, i.state,"
	                            "       i.error"),
	                 5);
	assert_true(lua_isnil(L, 1));
	assert_string_equal(lua_tostring(L, 2), "boom");
	assert_true(lua_isnil(L, 3));
	assert_string_equal(lua_tostring(L, 4), "failed");
	assert_string_equal(lua_tostring(L, 5), "boom");
	lua_pop(L, 5);

	/* nor for a stream closed before its end */
	assert_int_equal(run_lua(L, "local s = hash.sha256(rep('a', 1000))\n"
	                            "s:read(10)\n"
	                            "s:close()\n"
	                            "return s:info().sha256, s:info().bytes"),
	                 2);
	assert_true(lua_isnil(L, 1));
	assert_int_equal(lua_tointeger(L, 2), 10);
	lua_pop(L, 2);

	/* nor when the failure comes from a filter above the source */
	assert_int_equal(run_lua(L, "local s <close> = hash.sha256("
	                            "  compress.unzstd("
	                            "    stream.string('junk')))\n"
	                            "local ok, err = s:drain()\n"
	                            "return ok, err, s:info().sha256"),
	                 3);
	assert_true(lua_isnil(L, 1));
	assert_non_null(strstr(lua_tostring(L, 2), "zstd: "));
	assert_true(lua_isnil(L, 3));
	lua_pop(L, 3);
	close_state(L, 0);
}

static void test_sha256_hex(void **state)
{
	lua_State *L = hash_state();

	(void)state;
	assert_int_equal(run_lua(L, "local bin = 'a\\0b\\0\\255' .. "
	                            "  string.rep('x', 100000)\n"
	                            "local s <close> = "
	                            "  hash.sha256(stream.string(bin))\n"
	                            "s:drain()\n"
	                            "return hash.sha256_hex(bin), "
	                            "  s:info().sha256,"
	                            "  hash.sha256_hex('abd'),"
	                            "  hash.sha256_hex(12)"),
	                 4);
	assert_int_equal(strlen(lua_tostring(L, 1)), 64);
	assert_string_equal(lua_tostring(L, 1), lua_tostring(L, 2));
	assert_string_not_equal(lua_tostring(L, 3), abc_sha);
	/* a number is a string to Lua: the digest of "12" */
	assert_string_equal(lua_tostring(L, 4), "6b51d431df5d7f141cbececcf79e"
	                                        "df3dd861c3b4069f0b11661a3eef"
	                                        "acbba918");
	lua_pop(L, 4);
	assert_int_equal(run_lua(L, "local ok, err ="
	                            "  pcall(hash.sha256_hex, {})\n"
	                            "return ok, err, (pcall(hash.sha256_hex)),"
	                            "  (pcall(hash.sha256, 'abc'))"),
	                 4);
	assert_false(lua_toboolean(L, 1));
	assert_non_null(strstr(lua_tostring(L, 2), "string expected"));
	assert_false(lua_toboolean(L, 3));
	assert_false(lua_toboolean(L, 4));
	lua_pop(L, 4);
	close_state(L, 0);
}

static void test_expected_digest(void **state)
{
	lua_State *L = hash_state();

	(void)state;
	lua_pushstring(L, abc_sha);
	lua_setglobal(L, "want");
	assert_int_equal(run_lua(L,
		"local good <close> = hash.sha256(stream.string('abc'), want)\n"
		"local bad <close> = hash.sha256(stream.string('abd'), want)\n"
		"local a, aerr = good:readall()\n"
		"local b, berr = bad:readall()\n"
		"return a, aerr, b, berr"), 4);
	assert_string_equal(lua_tostring(L, 1), "abc");
	assert_true(lua_isnil(L, 2));
	assert_true(lua_isnil(L, 3));
	assert_non_null(strstr(lua_tostring(L, 4), "sha256 mismatch: the data has "));
	assert_non_null(strstr(lua_tostring(L, 4), abc_sha));
	lua_pop(L, 4);
	close_state(L, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_expected_digest),
		cmocka_unit_test(test_million_a),
		cmocka_unit_test(test_no_digest_after_failure),
		cmocka_unit_test(test_sha256_hex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
