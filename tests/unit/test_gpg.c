/*
 * vakap.gpg: the filters driving the real gpg through gpgme's event loop,
 * in a throwaway GnuPG home (tests/support/gpgkeys.sh).  Encrypt then
 * decrypt chained in one pipeline at several read sizes; a signature
 * carried through; an upstream failure passed on; a refused recipient
 * failing before the upstream is read; streams closed or collected half
 * read, with nothing leaked (ASan, valgrind).  Cleartext signatures:
 * clearsign then verify gives the text back byte for byte; the gpg
 * binary accepts what clearsign makes and verify what gpg --clearsign
 * makes; a changed byte is "bad"; the key that signed is named by its
 * primary fingerprint; what is not one signed message, or cannot be
 * signed as given, is refused with a message.
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

/* gpg_state, and for the cleartext tests: keys (the fingerprints of
 * gpgkeys.sh), dir, sh(cmd) -> output, ok, put(path, data), and forget()
 * to empty gpg-agent's cache. */
static lua_State *signed_state(void)
{
	lua_State *L = gpg_state();

	lua_pushstring(L, dir);
	lua_setglobal(L, "dir");
	run_lua(L, "keys = {}\n"
	           "for line in io.lines(dir .. '/k/keys.sh') do\n"
	           "  local who, fpr = line:match('^(%w+)=(%x+)$')\n"
	           "  keys[who] = fpr\n"
	           "end\n"
	           "function sh(cmd)\n"
	           "  local p = io.popen(cmd)\n"
	           "  local out = p:read('a')\n"
	           "  return out, p:close()\n"
	           "end\n"
	           "function put(path, data)\n"
	           "  local f = assert(io.open(path, 'wb'))\n"
	           "  f:write(data)\n"
	           "  f:close()\n"
	           "end\n"
	           "function forget() os.execute('gpgconf --kill gpg-agent') end\n"
	           "signer = {signer = 'signer@test.invalid', passphrase_file = passfile}\n");
	return L;
}

static void test_clearsign_roundtrip(void **state)
{
	lua_State *L = signed_state();

	(void)state;
	/* one-line JSON with and without its newline, nothing, blank lines,
	 * lines gpg escapes, a line of 16 KiB */
	assert_int_equal(run_lua(L,
		"local texts = {'{\"a\":1,\"b\":\"x y\"}', '{\"a\":1,\"b\":\"x y\"}\\n', '',\n"
		"  '\\n', 'x\\n\\n\\n- dash\\n-----BEGIN PGP SIGNATURE-----\\nFrom me\\n',\n"
		"  ('j'):rep(16384) .. '\\n' .. ('k'):rep(16384)}\n"
		"for i, text in ipairs(texts) do\n"
		"  local msg = assert(gpg.clearsign(text, signer))\n"
		"  assert(msg:find('^%-%-%-%-%-BEGIN PGP SIGNED MESSAGE%-%-%-%-%-\\n'), msg)\n"
		"  local got, sigs = gpg.verify(msg)\n"
		"  assert(got == text, ('text %d came back as %q'):format(i, tostring(got)))\n"
		"  assert(#sigs == 1 and sigs[1].status == 'good', 'text ' .. i)\n"
		"  assert(sigs[1].fpr == keys.signer, 'text ' .. i)\n"
		"end\n"
		"local msg = gpg.clearsign('{}', signer)\n"
		"local text, sigs = gpg.verify(msg)\n"
		"return #texts, text, #sigs, sigs[1].status, sigs[1].fpr == keys.signer"), 5);
	assert_int_equal(lua_tointeger(L, 1), 6);
	assert_string_equal(lua_tostring(L, 2), "{}");
	assert_int_equal(lua_tointeger(L, 3), 1);
	assert_string_equal(lua_tostring(L, 4), "good");
	assert_true(lua_toboolean(L, 5));
	lua_pop(L, 5);
	close_state(L, 0);
}

static void test_clearsign_read_by_gpg(void **state)
{
	lua_State *L = signed_state();

	(void)state;
	/* gpg --verify accepts it, and gpg --decrypt gives the text (with a
	 * newline, where a cleartext signature cannot tell) */
	assert_int_equal(run_lua(L,
		"local path = dir .. '/signed.asc'\n"
		"put(path, assert(gpg.clearsign('{\"n\":1}', signer)))\n"
		"local status, ok = sh('gpg --batch --status-fd 1 --verify ' .. path .. ' 2>/dev/null')\n"
		"local plain = sh('gpg --batch --quiet --decrypt ' .. path .. ' 2>/dev/null')\n"
		"return ok, status:match('%[GNUPG:%] VALIDSIG (%x+)') == keys.signer, plain"), 3);
	assert_true(lua_toboolean(L, 1));
	assert_true(lua_toboolean(L, 2));
	assert_string_equal(lua_tostring(L, 3), "{\"n\":1}\n");
	lua_pop(L, 3);
	close_state(L, 0);
}

static void test_verify_gpg_clearsign(void **state)
{
	lua_State *L = signed_state();

	(void)state;
	/* what gpg --clearsign makes of a file, with its last newline or
	 * without: the line end before the signature is not signed */
	assert_int_equal(run_lua(L,
		"local out = {}\n"
		"for i, text in ipairs({'{\"n\":2}\\n', '{\"n\":2}', 'a\\n\\nb\\n\\n'}) do\n"
		"  local path = dir .. '/plain' .. i\n"
		"  put(path, text)\n"
		"  local msg, ok = sh('gpg --batch --quiet --local-user alice@test.invalid'\n"
		"    .. ' --clearsign --output - ' .. path)\n"
		"  assert(ok, 'gpg --clearsign failed')\n"
		"  local got, sigs = gpg.verify(msg)\n"
		"  assert(#sigs == 1 and sigs[1].status == 'good' and sigs[1].fpr == keys.alice)\n"
		"  out[i] = got\n"
		"end\n"
		"return table.unpack(out)"), 3);
	assert_string_equal(lua_tostring(L, 1), "{\"n\":2}");
	assert_string_equal(lua_tostring(L, 2), "{\"n\":2}");
	assert_string_equal(lua_tostring(L, 3), "a\n\nb\n");
	lua_pop(L, 3);
	close_state(L, 0);
}

static void test_verify_tampered(void **state)
{
	lua_State *L = signed_state();

	(void)state;
	/* a changed byte of the text: "bad"; spaces or a CR at a line's end,
	 * which the signature does not cover: still good, and not given back;
	 * a changed byte of the signature: nil, message */
	assert_int_equal(run_lua(L,
		"local msg = assert(gpg.clearsign('{\"size\":1000}\\n', signer))\n"
		"local text, sigs = gpg.verify((msg:gsub('1000', '9000')))\n"
		"local text2, sigs2 = gpg.verify((msg:gsub('1000}\\n', '1000}  \\r\\n')))\n"
		"local bad = msg:gsub('(SIGNATURE%-%-%-%-%-\\n\\n)(.)', function(head, c)\n"
		"  return head .. (c == 'A' and 'B' or 'A') end)\n"
		"local none, err = gpg.verify(bad)\n"
		"return text, #sigs, sigs[1].status, sigs[1].fpr == keys.signer,\n"
		"  text2, sigs2[1].status, none, err"), 8);
	assert_string_equal(lua_tostring(L, 1), "{\"size\":9000}\n");
	assert_int_equal(lua_tointeger(L, 2), 1);
	assert_string_equal(lua_tostring(L, 3), "bad");
	assert_true(lua_toboolean(L, 4));
	assert_string_equal(lua_tostring(L, 5), "{\"size\":1000}\n");
	assert_string_equal(lua_tostring(L, 6), "good");
	assert_true(lua_isnil(L, 7));
	assert_non_null(strstr(lua_tostring(L, 8), "gpg: verify: "));
	lua_pop(L, 8);
	close_state(L, 0);
}

static void test_verify_names_the_signer(void **state)
{
	lua_State *L = signed_state();

	(void)state;
	/* another key's signature names that key; a key that signs with a
	 * subkey is named by its primary key; a key missing from the keyring
	 * is "no-key"; a key expired since it signed is "expired-key" */
	assert_int_equal(run_lua(L,
		"local _, a = gpg.verify(assert(gpg.clearsign('x', {signer = keys.alice})))\n"
		"assert(sh('gpg --batch --quiet --passphrase \"\" --pinentry-mode loopback'\n"
		"  .. ' --quick-gen-key \"Sub <sub@test.invalid>\" ed25519 cert never 2>&1'))\n"
		"local sub = sh('gpg --with-colons --list-keys sub@test.invalid 2>/dev/null'):match('\\nfpr:+(%x+):')\n"
		"assert(sh('gpg --batch --quiet --passphrase \"\" --pinentry-mode loopback'\n"
		"  .. ' --quick-add-key ' .. sub .. ' ed25519 sign 2>&1'))\n"
		"local _, s = gpg.verify(assert(gpg.clearsign('x', {signer = sub})))\n"
		"local home = dir .. '/empty'\n"
		"os.execute('mkdir -m 700 ' .. home)\n"
		"local _, n = gpg.verify(assert(gpg.clearsign('x', {signer = keys.alice})), {homedir = home})\n"
		"local old = sh('printf old | gpg --batch --quiet --faked-system-time 20200101T120000!'\n"
		"  .. ' --local-user ' .. keys.expired .. ' --clearsign 2>/dev/null')\n"
		"local _, e = gpg.verify(old)\n"
		"os.execute('gpgconf --homedir ' .. home .. ' --kill all')\n"
		"return a[1].fpr == keys.alice, a[1].status, s[1].fpr == sub, s[1].status,\n"
		"  n[1].status, #n[1].fpr >= 16 and keys.alice:find(n[1].fpr .. '$') ~= nil,\n"
		"  e[1].status, e[1].fpr == keys.expired"), 8);
	assert_true(lua_toboolean(L, 1));
	assert_string_equal(lua_tostring(L, 2), "good");
	assert_true(lua_toboolean(L, 3));
	assert_string_equal(lua_tostring(L, 4), "good");
	assert_string_equal(lua_tostring(L, 5), "no-key");
	assert_true(lua_toboolean(L, 6));
	assert_string_equal(lua_tostring(L, 7), "expired-key");
	assert_true(lua_toboolean(L, 8));
	lua_pop(L, 8);
	close_state(L, 0);
}

static void test_verify_refuses(void **state)
{
	static const char *const want[] = {
		"gpg: verify: not a signed message: it does not begin with "
		"-----BEGIN PGP SIGNED MESSAGE-----",
		"gpg: verify: not a signed message: it does not begin with "
		"-----BEGIN PGP SIGNED MESSAGE-----",
		"gpg: verify: not a signed message: text follows its signature",
		"gpg: verify: not a signed message: text follows its signature",
		"gpg: verify: not a signed message: its signature is missing or cut short",
		"gpg: verify: not a signed message: it holds a NUL byte",
		"gpg: verify: the message is 1048577 bytes, more than the 1048576 "
		"a signed message may hold",
	};
	lua_State *L = signed_state();
	size_t i;

	(void)state;
	/* plain text; text before it; text after it; two of them; no
	 * signature; a NUL; too big */
	assert_int_equal(run_lua(L,
		"local msg = assert(gpg.clearsign('{}', signer))\n"
		"local cases = {'{\"a\":1}\\n', 'x\\n' .. msg, msg .. 'x\\n', msg .. msg,\n"
		"  msg:match('^(.-)%-%-%-%-%-BEGIN PGP SIGNATURE'), msg:gsub('{}', '{\\0}'),\n"
		"  msg .. (' '):rep(1048577 - #msg)}\n"
		"local out = {}\n"
		"for i, m in ipairs(cases) do\n"
		"  local text, err = gpg.verify(m)\n"
		"  assert(text == nil, 'case ' .. i .. ' verified')\n"
		"  out[i] = err\n"
		"end\n"
		"assert(gpg.verify(msg .. '\\n \\t\\n'), 'blank lines after it are fine')\n"
		"return table.unpack(out)"), 7);
	for (i = 0; i < 7; i++)
		assert_string_equal(lua_tostring(L, (int)i + 1), want[i]);
	lua_pop(L, 7);
	close_state(L, 0);
}

static void test_clearsign_refuses(void **state)
{
	lua_State *L = signed_state();

	(void)state;
	assert_int_equal(run_lua(L,
		"forget()\n"
		"put(dir .. '/wrong', 'not it\\n')\n"
		"local r = {}\n"
		"local function try(text, opts) r[#r + 1] = select(2, gpg.clearsign(text, opts)) end\n"
		"try('x', {signer = 'signer@test.invalid', passphrase_file = dir .. '/wrong'})\n"
		"try('x', {signer = 'signer@test.invalid'})\n"
		"try('x', {signer = 'expired@test.invalid'})\n"
		"try('x', {signer = 'revoked@test.invalid'})\n"
		"try('x', {signer = 'carol@test.invalid'})\n"
		"try('{} \\n', signer)\n"
		"try('a\\r\\nb', signer)\n"
		"try(('x'):rep(16385), signer)\n"
		"try(('x\\n'):rep(524289), signer)\n"
		"try('a\\0b', signer)\n"
		"local ok, err = pcall(gpg.clearsign, 'x', {signer = 'x', sign = 'y'})\n"
		"r[#r + 1] = err\n"
		"ok, err = pcall(gpg.clearsign, 'x', {})\n"
		"r[#r + 1] = err\n"
		"return keys.signer, keys.expired, keys.revoked, table.unpack(r)"), 15);
	{
		const char *signer = lua_tostring(L, 1);
		char want[512];

		snprintf(want, sizeof want, "gpg: signing key %s: the passphrase in "
		         "%s/wrong is wrong", signer, dir);
		assert_string_equal(lua_tostring(L, 4), want);
		snprintf(want, sizeof want, "gpg: signing key %s needs a passphrase "
		         "and gpg-agent has none cached: preset it in the agent or "
		         "name a passphrase_file", signer);
		assert_string_equal(lua_tostring(L, 5), want);
		snprintf(want, sizeof want, "gpg: signing key 'expired@test.invalid' "
		         "(%s, Expired <expired@test.invalid>) cannot be used: "
		         "expired", lua_tostring(L, 2));
		assert_string_equal(lua_tostring(L, 6), want);
		snprintf(want, sizeof want, "gpg: signing key 'revoked@test.invalid' "
		         "(%s, Revoked <revoked@test.invalid>) cannot be used: "
		         "revoked", lua_tostring(L, 3));
		assert_string_equal(lua_tostring(L, 7), want);
	}
	assert_string_equal(lua_tostring(L, 8), "gpg: signing key "
	                    "'carol@test.invalid': no secret key found in the keyring");
	assert_string_equal(lua_tostring(L, 9), "gpg: clearsign: line 1 ends in a "
	                    "space, tab or CR, which a cleartext signature does not cover");
	assert_string_equal(lua_tostring(L, 10), "gpg: clearsign: line 1 ends in a "
	                    "space, tab or CR, which a cleartext signature does not cover");
	assert_string_equal(lua_tostring(L, 11), "gpg: clearsign: line 1 is longer "
	                    "than 16384 bytes");
	assert_string_equal(lua_tostring(L, 12), "gpg: clearsign: the text is "
	                    "1048578 bytes, more than the 1048576 a signed message may hold");
	assert_string_equal(lua_tostring(L, 13), "gpg: clearsign: the text holds a "
	                    "NUL byte: only text can be clearsigned");
	assert_non_null(strstr(lua_tostring(L, 14), "gpg.clearsign: unknown option 'sign'"));
	assert_non_null(strstr(lua_tostring(L, 15), "gpg.clearsign: signer is required"));
	lua_pop(L, 15);
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
		cmocka_unit_test(test_clearsign_roundtrip),
		cmocka_unit_test(test_clearsign_read_by_gpg),
		cmocka_unit_test(test_verify_gpg_clearsign),
		cmocka_unit_test(test_verify_tampered),
		cmocka_unit_test(test_verify_names_the_signer),
		cmocka_unit_test(test_verify_refuses),
		cmocka_unit_test(test_clearsign_refuses),
	};

	return cmocka_run_group_tests(tests, make_keys, remove_keys);
}
