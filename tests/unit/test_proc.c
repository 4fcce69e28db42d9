/*
 * vakap.proc, vakap.fs and vakap.worker: a command's exit status is its
 * stream's end, a sink fed a failing stream stops its command before it
 * sees a clean end, a file sink removes what it wrote, and a worker's end
 * (result, error or crash) reaches its parent.
 */
#define _POSIX_C_SOURCE 200809L

#include "harness.h"

#include <unistd.h>

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/vakap-proc.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd);
}

/* Run a Lua chunk that gets the temporary directory as `...`. */
static int run_in_dir(lua_State *L, const char *code)
{
	int top = lua_gettop(L);

	if (luaL_loadstring(L, code) != LUA_OK)
		fail_msg("lua: %s", lua_tostring(L, -1));
	lua_pushstring(L, dir);
	if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK)
		fail_msg("lua: %s", lua_tostring(L, -1));
	return lua_gettop(L) - top;
}

static void test_output_and_clean_exit(void **state)
{
	lua_State *L = new_state();

	(void)state;
	assert_int_equal(run_lua(L, "local p = require 'vakap.proc'\n"
	                            "local s <close> = p.spawn({'printf', '%s', 'a b'})\n"
	                            "local out = s:readall()\n"
	                            "return out, s:info().exit_status"),
	                 2);
	assert_string_equal(lua_tostring(L, 1), "a b");
	assert_int_equal(lua_tointeger(L, 2), 0);
	lua_pop(L, 2);
	close_state(L, 0);
}

static void test_nonzero_exit_is_an_error_with_stderr(void **state)
{
	lua_State *L = new_state();

	(void)state;
	assert_int_equal(
		run_lua(L, "local p = require 'vakap.proc'\n"
		           "local s <close> = p.spawn({'sh', '-c', 'echo out; echo broken pipe dream >&2; exit 3'})\n"
		           "local first = s:read()\n"
		           "local a, b = s:read()\n"
		           "return first, a, b, s:info().exit_status"),
		4);
	assert_string_equal(lua_tostring(L, 1), "out\n");
	assert_true(lua_isnil(L, 2));
	assert_non_null(strstr(lua_tostring(L, 3), "sh exited with status 3"));
	assert_non_null(strstr(lua_tostring(L, 3), "broken pipe dream"));
	assert_int_equal(lua_tointeger(L, 4), 3);
	lua_pop(L, 4);
	close_state(L, 0);
}

static void test_signal_and_missing_command(void **state)
{
	lua_State *L = new_state();

	(void)state;
	assert_int_equal(run_lua(L, "local p = require 'vakap.proc'\n"
	                            "local s <close> = p.spawn({'sh', '-c', 'kill -TERM $$'})\n"
	                            "local _, killed = s:readall()\n"
	                            "return killed, p.spawn({'/nonexistent/cmd'})"),
	                 3);
	assert_non_null(strstr(lua_tostring(L, 1), "killed by signal 15"));
	assert_true(lua_isnil(L, 2));
	assert_string_equal(lua_tostring(L, 3),
	                    "cannot run /nonexistent/cmd: No such file or directory");
	lua_pop(L, 3);
	close_state(L, 0);
}

/* Much on stdout and stderr at once: reading one must not block on the
 * other. */
static void test_no_deadlock_on_full_stderr(void **state)
{
	lua_State *L = new_state();

	(void)state;
	assert_int_equal(
		run_lua(L, "local p = require 'vakap.proc'\n"
		           "local s <close> = p.spawn({'sh', '-c', "
		           "'head -c 1000000 /dev/zero >&2; head -c 5000000 /dev/zero; "
		           "head -c 1000000 /dev/zero >&2'})\n"
		           "return s:drain(), #s:info().stderr"),
		2);
	assert_int_equal(lua_tointeger(L, 1), 5000000);
	assert_int_equal(lua_tointeger(L, 2), 4096); /* only the tail is kept */
	lua_pop(L, 2);
	close_state(L, 0);
}

static void test_feed_delivers_the_stream(void **state)
{
	lua_State *L = new_state();

	(void)state;
	assert_int_equal(
		run_in_dir(L, "local dir = ...\n"
		              "local p, st = require 'vakap.proc', require 'vakap.stream'\n"
		              "local s <close> = st.string(string.rep('x', 300000))\n"
		              "local n = p.feed({'sh', '-c', 'cat > \"$0\"', dir .. '/out'}, s)\n"
		              "local f = io.open(dir .. '/out', 'rb')\n"
		              "local data = f:read('a'); f:close()\n"
		              "return n, #data"),
		2);
	assert_int_equal(lua_tointeger(L, 1), 300000);
	assert_int_equal(lua_tointeger(L, 2), 300000);
	lua_pop(L, 2);
	close_state(L, 0);
}

/* A stream that fails must not look like a clean end to the command:
 * `cat > f && touch f.done` never gets to touch. */
static void test_feed_stops_the_command_on_a_failed_stream(void **state)
{
	lua_State *L = new_state();

	(void)state;
	assert_int_equal(
		run_in_dir(L, "local dir = ...\n"
		              "local p = require 'vakap.proc'\n"
		              "local src = p.spawn({'sh', '-c', 'head -c 200000 /dev/zero; exit 4'})\n"
		              "local ok, err = p.feed({'sh', '-c', 'cat > \"$0\" && touch \"$0.done\"', "
		              "dir .. '/out'}, src)\n"
		              "src:close()\n"
		              "return ok, err, io.open(dir .. '/out.done') == nil"),
		3);
	assert_true(lua_isnil(L, 1));
	assert_non_null(strstr(lua_tostring(L, 2), "exited with status 4"));
	assert_true(lua_toboolean(L, 3));
	lua_pop(L, 3);
	close_state(L, 0);
}

static void test_feed_reports_a_failing_command(void **state)
{
	lua_State *L = new_state();

	(void)state;
	assert_int_equal(
		run_lua(L, "local p, st = require 'vakap.proc', require 'vakap.stream'\n"
		           "local s <close> = st.string(string.rep('y', 1000000))\n"
		           "return p.feed({'sh', '-c', 'head -c 10 >/dev/null; echo no room >&2; exit 5'}, s)"),
		2);
	assert_true(lua_isnil(L, 1));
	assert_non_null(strstr(lua_tostring(L, 2), "exited with status 5"));
	assert_non_null(strstr(lua_tostring(L, 2), "no room"));
	lua_pop(L, 2);
	close_state(L, 0);
}

/* proc.filter: a stream through a command, larger than any pipe, both
 * ways at once; a command that fails, or ends before reading all its
 * input, fails the stream; a failing upstream stops the command before it
 * sees a clean end; one closed half read is stopped. */
static void test_filter(void **state)
{
	lua_State *L = new_state();

	(void)state;
	assert_int_equal(
		run_in_dir(L, "local dir = ...\n"
		              "local p, st = require 'vakap.proc', require 'vakap.stream'\n"
		              "local parts = {}\n"
		              "for i = 1, 300000 do parts[i] = tostring(i) end\n"
		              "local data = table.concat(parts, '\\n')\n"
		              "local a <close> = p.filter(st.string(data), {'tr', '0-9', 'a-j'})\n"
		              "local out = a:readall()\n"
		              "local b <close> = p.filter(st.string(string.rep('z', 3000000)),\n"
		              "  {'sh', '-c', 'head -c 10 >/dev/null; echo enough >&2; exit 5'})\n"
		              "local _, berr = b:readall()\n"
		              "local c <close> = p.filter(st.string(string.rep('z', 3000000)), {'head', '-c', '10'})\n"
		              "local _, cerr = c:readall()\n"
		              "local up = p.spawn({'sh', '-c', 'head -c 200000 /dev/zero; echo dump broke >&2; exit 4'})\n"
		              "local d <close> = p.filter(up, {'sh', '-c', 'cat > \"$0\" && touch \"$0.done\"',\n"
		              "  dir .. '/out'})\n"
		              "local _, derr = d:readall()\n"
		              "local e = p.filter(p.spawn({'cat', '/dev/zero'}), {'cat'})\n"
		              "assert(#e:read(1000) > 0)\n"
		              "e:close()\n"
		              "return out == data:gsub('%d', function(x) return string.char(97 + x) end),\n"
		              "  berr, cerr, derr, io.open(dir .. '/out.done') == nil, e:info().state"),
		6);
	assert_true(lua_toboolean(L, 1));
	assert_string_equal(lua_tostring(L, 2), "sh exited with status 5: enough");
	assert_string_equal(lua_tostring(L, 3), "head ended before reading all its input");
	assert_string_equal(lua_tostring(L, 4), "sh exited with status 4: dump broke");
	assert_true(lua_toboolean(L, 5));
	assert_string_equal(lua_tostring(L, 6), "closed");
	lua_pop(L, 6);
	close_state(L, 0);
}

static void test_file_sink_removes_partial_output(void **state)
{
	lua_State *L = new_state();

	(void)state;
	assert_int_equal(
		run_in_dir(L, "local dir = ...\n"
		              "local p, fs = require 'vakap.proc', require 'vakap.fs'\n"
		              "local src <close> = p.spawn({'sh', '-c', 'head -c 500000 /dev/zero; exit 2'})\n"
		              "local ok, err = fs.write(src, dir .. '/partial')\n"
		              "local again = fs.write(require('vakap.stream').string('z'), dir .. '/whole')\n"
		              "local exists = fs.write(require('vakap.stream').string('w'), dir .. '/whole')\n"
		              "return ok, err, fs.stat(dir .. '/partial') == nil, again, exists"),
		5);
	assert_true(lua_isnil(L, 1));
	assert_non_null(strstr(lua_tostring(L, 2), "exited with status 2"));
	assert_true(lua_toboolean(L, 3));
	assert_int_equal(lua_tointeger(L, 4), 1);
	assert_true(lua_isnil(L, 5)); /* never overwrites */
	lua_pop(L, 5);
	close_state(L, 0);
}

static void test_lock_excludes_until_released(void **state)
{
	lua_State *L = new_state();

	(void)state;
	assert_int_equal(
		run_in_dir(L, "local dir = ...\n"
		              "local fs = require 'vakap.fs'\n"
		              "local path = dir .. '/site.lock'\n"
		              "local a = assert(fs.lock(path, 0, 'pid 1 on here'))\n"
		              "local b, err = fs.lock(path, 0.2)\n"
		              "a:release() a:release()\n"
		              "local c = assert(fs.lock(path, 0, 'the second'))\n"
		              "c = nil collectgarbage()\n"
		              "local d = fs.lock(path)\n"
		              "local f = io.open(path) local who = f:read('a') f:close()\n"
		              "return b, err, d ~= nil, who"),
		4);
	assert_true(lua_isnil(L, 1));
	assert_non_null(strstr(lua_tostring(L, 2), "is locked by another run (pid 1 on here)"));
	assert_true(lua_toboolean(L, 3)); /* collected, so released */
	assert_string_equal(lua_tostring(L, 4), "");
	lua_pop(L, 4);
	close_state(L, 0);
}

static void test_worker_results_errors_and_crashes(void **state)
{
	lua_State *L = new_state();

	(void)state;
	assert_int_equal(
		run_lua(L, "local w = require 'vakap.worker'\n"
		           "local function finish(h)\n"
		           "  local lines = {}\n"
		           "  for _ = 1, 500 do\n"
		           "    w.wait({ h }, 100)\n"
		           "    for _, l in ipairs(h:messages()) do lines[#lines + 1] = l end\n"
		           "    local how, code = h:status()\n"
		           "    if how then h:close(); return table.concat(lines, '|'), how, code end\n"
		           "  end\n"
		           "end\n"
		           "local good = w.spawn(function(a, b) w.send(a); w.send(b) end, 'one', 'two')\n"
		           "local bad = w.spawn(function() error('no') end)\n"
		           "local dead = w.spawn(function() os.execute('kill -KILL ' .. "
		           "require('vakap.proc').pid()) end)\n"
		           "local r = table.pack(finish(good))\n"
		           "local e = table.pack(finish(bad))\n"
		           "local d = table.pack(finish(dead))\n"
		           "return r[1], r[2], r[3], e[2], e[3], d[2], d[3]"),
		7);
	assert_string_equal(lua_tostring(L, 1), "one|two");
	assert_string_equal(lua_tostring(L, 2), "exited");
	assert_int_equal(lua_tointeger(L, 3), 0);
	assert_string_equal(lua_tostring(L, 4), "exited");
	assert_int_equal(lua_tointeger(L, 5), 70);
	assert_string_equal(lua_tostring(L, 6), "killed");
	assert_int_equal(lua_tointeger(L, 7), 9);
	lua_pop(L, 7);
	close_state(L, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_output_and_clean_exit),
		cmocka_unit_test(test_nonzero_exit_is_an_error_with_stderr),
		cmocka_unit_test(test_signal_and_missing_command),
		cmocka_unit_test(test_no_deadlock_on_full_stderr),
		cmocka_unit_test(test_feed_delivers_the_stream),
		cmocka_unit_test(test_feed_stops_the_command_on_a_failed_stream),
		cmocka_unit_test(test_feed_reports_a_failing_command),
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_file_sink_removes_partial_output),
		cmocka_unit_test(test_lock_excludes_until_released),
		cmocka_unit_test(test_worker_results_errors_and_crashes),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
