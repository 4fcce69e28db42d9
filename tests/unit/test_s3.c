/*
 * vakap.s3's transfers under the sanitizers and valgrind: the busted spec
 * (spec/s3_spec.lua) covers the behaviour at length with the plain build;
 * this runs the C paths it goes through -- multipart upload, streaming
 * GET with pause and resume, XML answers, retries, aborts, errors -- in
 * the instrumented builds, against moto (tests/support/moto_s3.py) and the
 * fault proxy, on 127.0.0.1.  It also interrupts transfers and a backoff
 * the way the engine's signal handler does (vk_interrupted), which the
 * spec cannot: that must abort the upload and return promptly.  And it
 * uses a client in a forked worker, which must not share the parent's
 * connections.  And it lists from a hostile server
 * (tests/support/hostile_s3.py), whose answers nest 100,000 deep or whose
 * listings never end: each must fail promptly, its memory bounded.
 */
#define _POSIX_C_SOURCE 200809L

#include "harness.h"

#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[64];
static char endpoint[128], proxy[128], hostile[128];

/* Run a command, keep the first line that starts with "endpoint=". */
static int start(const char *cmd, char *out, size_t len)
{
	FILE *p = popen(cmd, "r");
	char line[512];

	if (p == NULL)
		return -1;
	out[0] = '\0';
	while (fgets(line, sizeof line, p))
		if (strncmp(line, "endpoint=", 9) == 0) {
			size_t n = strcspn(line + 9, "\n");
			if (n >= len)
				n = len - 1;
			memcpy(out, line + 9, n);
			out[n] = '\0';
		}
	return pclose(p) == 0 && out[0] ? 0 : -1;
}

static int servers_up(void **state)
{
	char cmd[512];

	(void)state;
	snprintf(dir, sizeof dir, "/tmp/vakap-s3test.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(cmd, sizeof cmd,
	         "python3 tests/support/moto_s3.py start %s/moto", dir);
	if (start(cmd, endpoint, sizeof endpoint) != 0)
		return -1;
	snprintf(cmd, sizeof cmd,
	         "python3 tests/support/faultproxy.py start %s/proxy %s", dir,
	         endpoint);
	if (start(cmd, proxy, sizeof proxy) != 0)
		return -1;
	snprintf(cmd, sizeof cmd,
	         "python3 tests/support/hostile_s3.py start %s/hostile", dir);
	return start(cmd, hostile, sizeof hostile);
}

static int servers_down(void **state)
{
	char cmd[512];

	(void)state;
	snprintf(cmd, sizeof cmd,
	         "python3 tests/support/hostile_s3.py stop %s/hostile; "
	         "python3 tests/support/faultproxy.py stop %s/proxy; "
	         "python3 tests/support/moto_s3.py stop %s/moto; rm -rf %s",
	         dir, dir, dir, dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void on_alarm(int sig)
{
	(void)sig;
	vk_interrupted = 1;
}

/* lua: interrupt([seconds]) -- now, or from SIGALRM after seconds */
static int l_interrupt(lua_State *L)
{
	lua_Number t = luaL_optnumber(L, 1, 0);
	struct itimerval it;
	struct sigaction sa;

	if (t <= 0) {
		vk_interrupted = 1;
		return 0;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm; /* no SA_RESTART, as in the engine */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	memset(&it, 0, sizeof it);
	it.it_value.tv_sec = (time_t)t;
	it.it_value.tv_usec = (suseconds_t)((t - (lua_Number)(time_t)t) * 1e6);
	setitimer(ITIMER_REAL, &it, NULL);
	return 0;
}

static lua_State *s3_state(void)
{
	lua_State *L = new_state();

	vk_interrupted = 0;
	lua_register(L, "interrupt", l_interrupt);
	lua_pushstring(L, endpoint);
	lua_setglobal(L, "ENDPOINT");
	lua_pushstring(L, proxy);
	lua_setglobal(L, "PROXY");
	lua_pushfstring(L, "%s/proxy/rules.json", dir);
	lua_setglobal(L, "RULES");
	run_lua(L,
		"s3 = require 'vakap.s3'\n"
		"stream = require 'vakap.stream'\n"
		"proc = require 'vakap.proc'\n"
		"function client(ep, o)\n"
		"  local t = { bucket = 'vakap-test', endpoint = ep, access_key = 'a',\n"
		"    secret_key = 's', retry_base_ms = 5, stall_timeout = 2 }\n"
		"  for k, v in pairs(o or {}) do t[k] = v end\n"
		"  return s3.client(t)\n"
		"end\n"
		"function faults(json)\n"
		"  local f = assert(io.open(RULES, 'w')); f:write(json); f:close()\n"
		"end\n"
		"local f = assert(io.open('/dev/urandom', 'rb'))\n"
		"DATA = f:read(11 * 1024 * 1024 + 5); f:close()\n");
	return L;
}

static void done(lua_State *L, int top)
{
	struct itimerval off;

	memset(&off, 0, sizeof off);
	setitimer(ITIMER_REAL, &off, NULL);
	vk_interrupted = 0;
	run_lua(L, "faults('[]')");
	close_state(L, top);
}

static void test_round_trip(void **state)
{
	lua_State *L = s3_state();
	int top = lua_gettop(L);

	(void)state;
	run_lua(L,
		"local c <close> = client(ENDPOINT)\n"
		"local r = assert(c:put('rt/big', stream.string(DATA)))\n"
		"assert(r.parts == 3 and r.size == #DATA, r.parts)\n"
		"assert(c:put_string('rt/small', 'small', { if_none_match = true }))\n"
		"assert(not c:put_string('rt/small', 'again', { if_none_match = true }))\n"
		"local s = assert(c:get('rt/big'))\n"
		"local parts, n = {}, 0\n"
		"while true do\n"
		"  local b = s:read(50000)\n"
		"  if not b then break end\n"
		"  parts[#parts + 1] = b; n = n + #b\n"
		"  if n < 300000 then proc.sleep(0.01) end -- let it pause\n"
		"end\n"
		"assert(table.concat(parts) == DATA, 'GET differs')\n"
		"s:close()\n"
		"assert(c:head('rt/small').size == 5)\n"
		"r = assert(c:put('rt/empty', stream.string('')))\n"
		"assert(r.size == 0 and r.parts == 1)\n"
		"assert(assert(c:get('rt/empty')):readall() == '')\n"
		"local ok, err, status = c:head('rt/none')\n"
		"assert(ok == nil and status == 404, err)\n"
		"ok, err, status = c:get('rt/none')\n"
		"assert(ok == nil and status == 404, err)\n"
		"local objs = assert(c:list('rt/', { max_keys = 1 }))\n"
		"assert(#objs == 3 and c:stats().by_op.LIST == 3)\n"
		"assert(c:delete({ 'rt/big', 'rt/small', 'rt/empty' }).deleted == 3)\n"
		"assert(#assert(c:list('rt/')) == 0)\n"
		"assert(#assert(c:uploads('')) == 0)\n"
		"local ref <close> = client('http://127.0.0.1:9', { retries = 1 })\n"
		"ok, err = ref:put_string('k', 'v')\n"
		"assert(err == 's3: cannot connect to http://127.0.0.1:9: Connection "
		"refused (after 2 attempts)', err)\n"
		"assert(ref:get('k') == nil)\n");
	done(L, top);
}

static void test_faults_retried(void **state)
{
	lua_State *L = s3_state();
	int top = lua_gettop(L);

	(void)state;
	run_lua(L,
		"local c <close> = client(PROXY)\n"
		"faults('[{\"method\":\"PUT\",\"match\":\"partNumber=2&\",\"fault\":"
		"\"slowdown\",\"times\":1},{\"method\":\"POST\",\"match\":\"uploadId\","
		"\"fault\":\"error200\",\"times\":1},{\"method\":\"PUT\",\"match\":"
		"\"partNumber=3&\",\"fault\":\"stall-upload\",\"times\":1,\"seconds\":8}]')\n"
		"assert(c:put('f/big', stream.string(DATA)))\n"
		"faults('[{\"method\":\"GET\",\"fault\":\"cut\",\"after\":4000000,"
		"\"times\":1},{\"method\":\"GET\",\"fault\":\"stall\",\"after\":1000000,"
		"\"times\":1,\"seconds\":8}]')\n"
		"local s = assert(c:get('f/big'))\n"
		"assert(s:readall(64 * 1024 * 1024) == DATA, 'resumed GET differs')\n"
		"assert(s:info().attempts == 3, s:info().attempts)\n"
		"assert(c:stats().retries == 5, c:stats().retries)\n"
		"faults('[{\"fault\":\"skew\",\"times\":1}]')\n"
		"local ok, err = c:put_string('f/skew', 'x')\n"
		"assert(err:match('server time 2026%-01%-01T00:00:00Z, local time'), err)\n"
		"assert(c:delete({ 'f/big' }).deleted == 1)\n");
	done(L, top);
}

static void test_failures_abort(void **state)
{
	lua_State *L = s3_state();
	int top = lua_gettop(L);

	(void)state;
	run_lua(L,
		"local c <close> = client(PROXY, { retries = 1 })\n"
		"faults('[{\"method\":\"PUT\",\"match\":\"partNumber=2&\",\"fault\":"
		"\"503\",\"times\":-1}]')\n"
		"local ok, err = c:put('a/one', stream.string(DATA))\n"
		"assert(ok == nil and err:match('%(after 2 attempts%)$'), err)\n"
		"faults('[]')\n"
		"local src = assert(proc.spawn({ 'sh', '-c',\n"
		"  'head -c 6000000 /dev/zero; exit 3' }))\n"
		"ok, err = c:put('a/two', src)\n"
		"src:close()\n"
		"assert(ok == nil and err:match('exited with status 3'), err)\n"
		"assert(c:stats().by_op.ABORT == 2, c:stats().by_op.ABORT)\n"
		"assert(#assert(c:uploads('a/')) == 0, 'an upload is left')\n"
		"assert(#assert(c:list('a/')) == 0, 'an object is left')\n");
	done(L, top);
}

/* A write whose answer was lost (the proxy's "lose": the server acted,
 * the answer never came) meets itself when sent again; a HEAD resolves
 * it: the object there is the one written (one PUT; a Complete whose
 * upload is gone), or another writer's, which is kept and reported. */
static void test_lost_answers(void **state)
{
	lua_State *L = s3_state();
	int top = lua_gettop(L);

	(void)state;
	run_lua(L,
		"local c <close> = client(PROXY)\n"
		"faults('[{\"method\":\"PUT\",\"match\":\"l/small\",\"fault\":"
		"\"lose\",\"times\":1}]')\n"
		"assert(c:put_string('l/small', 'small', { if_none_match = true }))\n"
		"assert(assert(c:get('l/small')):readall() == 'small')\n"
		"faults('[{\"method\":\"POST\",\"match\":\"uploadId\",\"fault\":"
		"\"lose\",\"times\":1},{\"method\":\"POST\",\"match\":\"uploadId\","
		"\"fault\":\"nosuchupload\",\"times\":1}]')\n"
		"local r = assert(c:put('l/big', stream.string(DATA),\n"
		"  { if_none_match = true }))\n"
		"assert(r.parts == 3 and c:head('l/big').etag == r.etag, r.etag)\n"
		"local s = assert(c:get('l/big'))\n"
		"assert(s:readall(64 * 1024 * 1024) == DATA, 'GET differs')\n"
		"s:close()\n"
		"faults('[{\"method\":\"PUT\",\"match\":\"l/theirs\",\"fault\":"
		"\"lose\",\"times\":1,\"overwrite\":\"theirs\"}]')\n"
		"local ok, err = c:put_string('l/theirs', 'mine',\n"
		"  { if_none_match = true })\n"
		"assert(ok == nil and err:match('an object already exists at '\n"
		"  .. 's3://vakap%-test/l/theirs and is not the one written'), err)\n"
		"assert(assert(c:get('l/theirs')):readall() == 'theirs')\n"
		"assert(c:stats().by_op.HEAD == 4, c:stats().by_op.HEAD)\n"
		"assert(c:delete({ 'l/small', 'l/big', 'l/theirs' }).deleted == 3)\n");
	done(L, top);
}

/* SIGINT/SIGTERM during a multipart upload: the stream's read fails, the
 * upload is aborted all the same, nothing is left. */
static void test_interrupted_upload(void **state)
{
	lua_State *L = s3_state();
	int top = lua_gettop(L);

	(void)state;
	run_lua(L,
		"local c <close> = client(ENDPOINT)\n"
		"local src = assert(proc.spawn({ 'sh', '-c',\n"
		"  'head -c 6000000 /dev/zero; sleep 10' }))\n"
		"local t = proc.clock()\n"
		"interrupt(1)\n"
		"local ok, err = c:put('i/one', src)\n"
		"src:close()\n"
		"assert(ok == nil and err:match('interrupted'), err)\n"
		"assert(proc.clock() - t < 5, 'took ' .. (proc.clock() - t))\n"
		"assert(c:stats().by_op.INIT == 1 and c:stats().by_op.ABORT == 1)\n");
	vk_interrupted = 0;
	run_lua(L,
		"local c <close> = client(ENDPOINT)\n"
		"assert(#assert(c:uploads('i/')) == 0, 'an upload is left')\n");
	done(L, top);
}

/* An interruption is noticed during a retry's backoff and mid-GET. */
static void test_interrupted_waits(void **state)
{
	lua_State *L = s3_state();
	int top = lua_gettop(L);

	(void)state;
	run_lua(L,
		"local c <close> = client(PROXY, { retries = 10, retry_base_ms = 4000 })\n"
		"faults('[{\"fault\":\"503\",\"times\":-1}]')\n"
		"local t = proc.clock()\n"
		"interrupt(0.5)\n"
		"local ok, err = c:put_string('w/x', 'x')\n"
		"assert(ok == nil and err:match('interrupted'), err)\n"
		"assert(proc.clock() - t < 5, 'took ' .. (proc.clock() - t))\n");
	vk_interrupted = 0;
	run_lua(L,
		"faults('[]')\n"
		"local c <close> = client(ENDPOINT)\n"
		"assert(c:put_string('w/y', DATA))\n"
		"local s = assert(c:get('w/y'))\n"
		"assert(#assert(s:read()) > 0)\n"
		"interrupt()\n"
		"local b, err\n"
		"repeat b, err = s:read() until not b\n"
		"assert(err and err:match('interrupted'), err)\n"
		"s:close()\n");
	done(L, top);
}

/* A client made in one process and used in a forked worker: the worker
 * makes connections of its own, and a GET stream started by the parent
 * fails in the worker without touching the parent's transfer, which
 * reads on to the end. */
static void test_forked_worker(void **state)
{
	lua_State *L = s3_state();
	int top = lua_gettop(L);

	(void)state;
	run_lua(L,
		"local worker = require 'vakap.worker'\n"
		"local function finish(h)\n"
		"  local lines = {}\n"
		"  for _ = 1, 300 do\n"
		"    worker.wait({ h }, 100)\n"
		"    for _, l in ipairs(h:messages()) do lines[#lines + 1] = l end\n"
		"    local how, code = h:status()\n"
		"    if how then h:close(); return table.concat(lines, '|'), how, code end\n"
		"  end\n"
		"end\n"
		"local c <close> = client(ENDPOINT)\n"
		"assert(c:put_string('fork/big', DATA))\n"
		"local h = worker.spawn(function()\n"
		"  assert(c:put_string('fork/child', 'child'))\n"
		"  worker.send(assert(c:get('fork/child')):readall())\n"
		"end)\n"
		"local lines, how, code = finish(h)\n"
		"assert(lines == 'child' and how == 'exited' and code == 0, lines)\n"
		"assert(c:head('fork/child').size == 5)\n"
		"local s = assert(c:get('fork/big'))\n"
		"h = worker.spawn(function()\n"
		"  local b, err\n"
		"  repeat b, err = s:read() until not b\n"
		"  worker.send(err or 'the end')\n"
		"end)\n"
		"lines, how, code = finish(h)\n"
		"assert(lines:match('not this one$') and code == 0, lines)\n"
		"assert(s:readall(64 * 1024 * 1024) == DATA, 'GET differs')\n"
		"s:close()\n"
		"assert(c:delete({ 'fork/big', 'fork/child' }).deleted == 2)\n");
	done(L, top);
}

/* ---- a hostile server ---- */

#define HOSTILE_SECONDS 60          /* what "promptly" is, valgrind or not */
#define HOSTILE_GROWTH (256L << 20) /* what "bounded" is: bytes of RSS */

/* The resident size of process pid, in bytes; -1 when it is gone. */
static long rss_of(pid_t pid)
{
	char path[64];
	long pages, resident;
	FILE *f;
	int n;

	snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fscanf(f, "%ld %ld", &pages, &resident);
	fclose(f);
	return n == 2 ? resident * sysconf(_SC_PAGESIZE) : -1;
}

/* The child: the chunk in a state of its own, HOSTILE its endpoint;
 * exits 0 when it ran to its end. */
static void hostile_child(const char *code)
{
	lua_State *L = luaL_newstate();
	int rc;

	luaL_openlibs(L);
	vk_preload_primitives(L);
	lua_pushstring(L, hostile);
	lua_setglobal(L, "HOSTILE");
	rc = luaL_dostring(L,
		"s3 = require 'vakap.s3'\n"
		"function client(bucket)\n"
		"  return s3.client({ bucket = bucket, endpoint = HOSTILE,\n"
		"    access_key = 'a', secret_key = 's', retry_base_ms = 5,\n"
		"    stall_timeout = 2 })\n"
		"end\n");
	if (rc == LUA_OK)
		rc = luaL_dostring(L, code);
	if (rc != LUA_OK)
		fprintf(stderr, "lua: %s\n", lua_tostring(L, -1));
	lua_close(L);
	_exit(rc == LUA_OK ? 0 : 1);
}

/* Run the chunk in a child, killed should it take longer than
 * HOSTILE_SECONDS or grow by more than HOSTILE_GROWTH; the test fails
 * unless it runs to its end within both. */
static void in_child(const char *code)
{
	struct timespec tick = {0, 10 * 1000 * 1000};
	long start_rss, rss, peak = 0, ticks = 0;
	int status;
	pid_t pid;

	fflush(NULL);
	if ((pid = fork()) == 0)
		hostile_child(code);
	assert_true(pid > 0);
	start_rss = rss_of(pid);
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if ((rss = rss_of(pid)) - start_rss > peak)
			peak = rss - start_rss;
		if (peak > HOSTILE_GROWTH || ++ticks > HOSTILE_SECONDS * 100) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("the listing went on: %ld ms, %ld MiB more",
			         ticks * 10, peak >> 20);
		}
		nanosleep(&tick, NULL);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the child failed (status %d)", status);
}

/* An answer 100,000 elements deep is refused at the 33rd, its memory
 * linear: no path rebuilt per level. */
static void test_hostile_deep(void **state)
{
	(void)state;
	in_child(
		"local c <close> = client('deep')\n"
		"local ok, err = c:list('')\n"
		"assert(ok == nil and err == 's3: LIST s3://deep/: the server\\'s "
		"answer nests deeper than 32 elements: not an S3 answer', tostring(err))\n"
		"assert(c:stats().by_op.LIST == 1, c:stats().by_op.LIST)\n");
}

/* A listing whose continuation token (or markers) comes again ends
 * there: the same as the last page's, or an older one. */
static void test_hostile_loop(void **state)
{
	(void)state;
	in_child(
		"local function check(bucket, what, n, pattern)\n"
		"  local c <close> = client(bucket)\n"
		"  local ok, err\n"
		"  if what == 'LIST' then ok, err = c:list('')\n"
		"  else ok, err = c:uploads('') end\n"
		"  assert(ok == nil and err:find(pattern, 1, true), tostring(err))\n"
		"  assert(err:find(': the server is misbehaving$'), err)\n"
		"  assert(c:stats().by_op[what] == n, c:stats().by_op[what])\n"
		"end\n"
		"check('loop', 'LIST', 2, 'the listing repeats its continuation "
		"token \\'same\\' after page 2')\n"
		"check('cycle', 'LIST', 3, 'the listing repeats its continuation "
		"token \\'a\\' after page 3')\n"
		"check('loop', 'UPLOADS', 2, 'the listing repeats its marker "
		"\\'same\\' after page 2')\n"
		"check('cycle', 'UPLOADS', 3, 'the listing repeats its marker "
		"\\'a\\' after page 3')\n"
		"local c <close> = client('count')\n"
		"local objs = assert(c:list(''))\n"
		"assert(#objs == 200 and c:stats().by_op.LIST == 200, #objs)\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_faults_retried),
		cmocka_unit_test(test_failures_abort),
		cmocka_unit_test(test_lost_answers),
		cmocka_unit_test(test_interrupted_upload),
		cmocka_unit_test(test_interrupted_waits),
		cmocka_unit_test(test_forked_worker),
		cmocka_unit_test(test_hostile_deep),
		cmocka_unit_test(test_hostile_loop),
	};

	return cmocka_run_group_tests(tests, servers_up, servers_down);
}
