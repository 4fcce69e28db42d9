/*
 * vakap.gpg: the filters driving the real gpg through gpgme's event loop,
 * in a throwaway GnuPG home (tests/support/gpgkeys.sh).  Encrypt then
 * decrypt chained in one pipeline at several read sizes; a signature
 * carried through; an upstream failure passed on; a refused recipient
 * failing before the upstream is read; streams closed or collected half
 * read, with nothing leaked (ASan, valgrind).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <unistd.h>

#include "harness.h"

static char dir[] = "/tmp/vakap-gpgtest.XXXXXX";

static int make_keys(void **state)
{
	char cmd[512], home[128];

	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(cmd, sizeof cmd, "sh tests/support/gpgkeys.sh %s/k >/dev/null 2>&1", dir);
	if (system(cmd) != 0)
		return -1;
	snprintf(home, sizeof home, "%s/k/gnupg", dir);
	return setenv("GNUPGHOME", home, 1); /* the filters' default home */
}

static int remove_keys(void **state)
{
	char cmd[512];

	(void)state;
	snprintf(cmd, sizeof cmd, "gpgconf --kill all; rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static lua_State *gpg_state(void)
{
	lua_State *L = new_state();

	lua_pushfstring(L, "%s/k/passphrase", dir);
	lua_setglobal(L, "passfile");
	run_lua(L, "stream = require 'vakap.stream'\n"
	           "gpg = require 'vakap.gpg'\n"
	           "proc = require 'vakap.proc'\n"
	           "function readin(s, size)\n"
	           "  local parts = {}\n"
	           "  while true do\n"
	           "    local p, err = s:read(size)\n"
	           "    if p == nil then return table.concat(parts), err end\n"
	           "    parts[#parts + 1] = p\n"
	           "  end\n"
	           "end\n"
	           "data = {}\n"
	           "for i = 1, 30000 do data[i] = string.format('%09d\\n', i * 7919 % 100003) end\n"
	           "data = table.concat(data)\n");
	return L;
}

static void test_roundtrip(void **state)
{
	static const int sizes[] = {1, 7, 4096, 131072};
	lua_State *L = gpg_state();
	char code[1024];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		snprintf(code, sizeof code,
		         "local enc = gpg.encrypt(stream.string(data),"
		         "  {recipients = {'alice@test.invalid', 'bob@test.invalid'}})\n"
		         "local dec <close> = gpg.decrypt(enc)\n"
		         "local got, err = readin(dec, %d)\n"
		         "assert(err == nil, err)\n"
		         "assert(got == data, 'different bytes back')\n"
		         "local info = dec:info()\n"
		         "return #info.encrypted_to, #info.signatures, info.bytes",
		         sizes[i]);
		assert_int_equal(run_lua(L, code), 3);
		assert_int_equal(lua_tointeger(L, 1), 2);
		assert_int_equal(lua_tointeger(L, 2), 0);
		assert_int_equal(lua_tointeger(L, 3), 300000);
		lua_pop(L, 3);
	}
	close_state(L, 0);
}

static void test_empty_and_signed(void **state)
{
	lua_State *L = gpg_state();

	(void)state;
	assert_int_equal(run_lua(L,
		"local enc = gpg.encrypt(stream.string(''), {recipients = {'alice@test.invalid'},"
		"  sign = 'signer@test.invalid', passphrase_file = passfile})\n"
		"local dec = gpg.decrypt(enc)\n"
		"local got, err = dec:readall()\n"
		"assert(err == nil, err)\n"
		"local sig = dec:info().signatures[1]\n"
		"local signer = enc:info().signer\n"
		"dec:close()\n"
		"return got, sig.status, sig.fingerprint == signer, #enc:info().recipients"), 4);
	assert_string_equal(lua_tostring(L, 1), "");
	assert_string_equal(lua_tostring(L, 2), "good");
	assert_true(lua_toboolean(L, 3));
	assert_int_equal(lua_tointeger(L, 4), 1); /* kept after close */
	lua_pop(L, 4);
	close_state(L, 0);
}

static void test_upstream_failure(void **state)
{
	lua_State *L = gpg_state();

	(void)state;
	assert_int_equal(run_lua(L,
		"local up = proc.spawn({'sh', '-c', 'head -c 500000 /dev/zero; echo broke >&2; exit 3'})\n"
		"local s <close> = gpg.encrypt(up, {recipients = {'alice@test.invalid'}})\n"
		"local _, err = readin(s, 65536)\n"
		"return err, s:info().state"), 2);
	assert_string_equal(lua_tostring(L, 1), "sh exited with status 3: broke");
	assert_string_equal(lua_tostring(L, 2), "failed");
	lua_pop(L, 2);
	close_state(L, 0);
}

static void test_refused_before_reading(void **state)
{
	lua_State *L = gpg_state();

	(void)state;
	assert_int_equal(run_lua(L,
		"local up = stream.string(data)\n"
		"local s <close> = gpg.encrypt(up, {recipients = {'alice@test.invalid', 'revoked@test.invalid'}})\n"
		"local got, err = s:read(10)\n"
		"return got, err, up:info().bytes"), 3);
	assert_null(lua_tostring(L, 1));
	assert_non_null(strstr(lua_tostring(L, 2), "gpg: recipient 'revoked@test.invalid' ("));
	assert_non_null(strstr(lua_tostring(L, 2), "cannot be used: revoked"));
	assert_int_equal(lua_tointeger(L, 3), 0);
	lua_pop(L, 3);
	close_state(L, 0);
}

static void test_closed_half_read(void **state)
{
	lua_State *L = gpg_state();

	(void)state;
	/* closed explicitly, then one left to the collector, mid-operation */
	assert_int_equal(run_lua(L,
		"local s = gpg.encrypt(proc.spawn({'head', '-c', '20000000', '/dev/zero'}),"
		"  {recipients = {'alice@test.invalid'}})\n"
		"local got = 0\n"
		"while got < 100000 do got = got + #s:read(65536) end\n"
		"s:close()\n"
		"local d = gpg.decrypt(gpg.encrypt(stream.string(data), {recipients = {'bob@test.invalid'}}))\n"
		"assert(#d:read(10) == 10)\n"
		"d = nil\n"
		"collectgarbage() collectgarbage()\n"
		"return s:info().state"), 1);
	assert_string_equal(lua_tostring(L, 1), "closed");
	lua_pop(L, 1);
	close_state(L, 0);
}

static void test_not_openpgp(void **state)
{
	lua_State *L = gpg_state();

	(void)state;
	assert_int_equal(run_lua(L,
		"local s <close> = gpg.decrypt(stream.string(data))\n"
		"return select(2, s:readall())"), 1);
	assert_string_equal(lua_tostring(L, 1),
	                    "gpg: cannot decrypt: no OpenPGP encrypted data found");
	lua_pop(L, 1);
	close_state(L, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_empty_and_signed),
		cmocka_unit_test(test_upstream_failure),
		cmocka_unit_test(test_refused_before_reading),
		cmocka_unit_test(test_closed_half_read),
		cmocka_unit_test(test_not_openpgp),
	};

	return cmocka_run_group_tests(tests, make_keys, remove_keys);
}
