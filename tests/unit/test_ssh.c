/*
 * vakap.ssh without a server: ssh.quote (checked by handing its output to
 * a real sh and comparing the words it sees), argument misuse, and the
 * failures of connecting that need no sshd.  The e2e tests
 * (tests/e2e/test_ssh.sh) run the rest against a real sshd.
 */
#define _POSIX_C_SOURCE 200809L

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

/* The words sh sees in the command line ssh.quote makes of argv, joined
 * with '|' after a printf of each one: the round trip must be exact. */
static void test_quote_round_trips_through_sh(void **state)
{
	lua_State *L = new_state();
	(void)state;
	int n = run_lua(L,
		"local ssh = require 'vakap.ssh'\n"
		"local args = { 'plain', 'two words', \"it's\", '', '$HOME', '`id`',\n"
		"  '\"dq\"', 'a\\\\b', '*', 'new\\nline', \"''\", '-n', ';', '|&', 'ñandú' }\n"
		"local cmd = ssh.quote(args)\n"
		"local p = io.popen(\"sh -c \" .. ssh.quote({ 'for a; do printf \"%s|\" \"$a\"; done', 'sh' })\n"
		"  .. ' ' .. cmd)\n"
		"local got = p:read('a')\n"
		"p:close()\n"
		"return got, table.concat(args, '|') .. '|'");
	assert_int_equal(n, 2);
	assert_string_equal(lua_tostring(L, -2), lua_tostring(L, -1));
	lua_pop(L, 2);
	close_state(L, 0);
}

static void test_quote_each_word_single_quoted(void **state)
{
	lua_State *L = new_state();
	(void)state;
	run_lua(L, "return require('vakap.ssh').quote({ 'a', \"b'c\", '' })");
	assert_string_equal(lua_tostring(L, -1), "'a' 'b'\\''c' ''");
	lua_pop(L, 1);
	close_state(L, 0);
}

/* Misuse raises, with a message naming the mistake. */
static void expect_raise(const char *code, const char *says)
{
	lua_State *L = new_state();

	assert_int_not_equal(luaL_dostring(L, code), LUA_OK);
	if (strstr(lua_tostring(L, -1), says) == NULL)
		fail_msg("'%s' not in: %s", says, lua_tostring(L, -1));
	lua_pop(L, 1);
	close_state(L, 0);
}

static void test_quote_misuse_raises(void **state)
{
	(void)state;
	expect_raise("require('vakap.ssh').quote({})", "empty command");
	expect_raise("require('vakap.ssh').quote({ 'a', 3 })", "argument 2 is a number");
	expect_raise("require('vakap.ssh').quote({ 'a\\0b' })", "NUL byte");
	expect_raise("require('vakap.ssh').quote('ls')", "table expected");
	expect_raise("require('vakap.ssh').connect({ port = 22, user = 'u' })", "string expected");
	expect_raise("require('vakap.ssh').connect({ host = 'h', port = 0, user = 'u' })", "port out of range");
	expect_raise("require('vakap.ssh').connect({ host = 'h' })", "user is required");
}

/* A port nobody listens on: bound, then closed. */
static int closed_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void test_connect_refused_is_a_failure_not_a_raise(void **state)
{
	lua_State *L = new_state();
	char code[512];
	(void)state;

	snprintf(code, sizeof code,
	         "local ssh = require 'vakap.ssh'\n"
	         "return ssh.connect({ host = '127.0.0.1', port = %d, user = 'u',\n"
	         "  label = 'web1', connect_timeout = 5 })", closed_port());
	assert_int_equal(run_lua(L, code), 3);
	assert_true(lua_isnil(L, -3));
	assert_non_null(strstr(lua_tostring(L, -2), "cannot connect to web1"));
	assert_non_null(strstr(lua_tostring(L, -2), "refused"));
	assert_string_equal(lua_tostring(L, -1), "connect");
	lua_pop(L, 3);
	close_state(L, 0);
}

static void test_unknown_name_is_a_failure(void **state)
{
	lua_State *L = new_state();
	(void)state;

	assert_int_equal(run_lua(L, "return require('vakap.ssh').scan({ host = 'no-such-host.invalid' })"), 3);
	assert_true(lua_isnil(L, -3));
	assert_non_null(strstr(lua_tostring(L, -2), "no-such-host.invalid"));
	lua_pop(L, 3);
	close_state(L, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote_round_trips_through_sh),
		cmocka_unit_test(test_quote_each_word_single_quoted),
		cmocka_unit_test(test_quote_misuse_raises),
		cmocka_unit_test(test_connect_refused_is_a_failure_not_a_raise),
		cmocka_unit_test(test_unknown_name_is_a_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
