/*
 * vakap.ssh without a server: ssh.quote (checked by handing its output to
 * a real sh and comparing the words it sees), argument misuse, and the
 * failures of connecting that need no sshd.  Then, against a real sshd
 * on 127.0.0.1 (tests/support/sshd.sh, as root), the faults a test of the
 * binary cannot time or see: a server that stops answering under a feed
 * and under an exec, a forked child given the parent's session, and the
 * socket of a dropped connection.  The e2e tests (tests/e2e/test_ssh.sh)
 * run the rest.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "base.h"
#include "harness.h"

/* what a session says in a process that did not open it (ssh/ssh.h) */
#define NOT_OURS_TEXT "this SSH session was opened by another process"

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

/* ---- against a real sshd ---- */

static char dir[64];  /* the server's, the key's and known_hosts' */
static char port[16];

/* Run a shell command line made from fmt; its exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* DIR/name, in a static buffer. */
static const char *in_dir(const char *name)
{
	static char path[128];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return path;
}

/* sshd, a key it lets in as root, and known_hosts with its key. */
static int server_up(void **state)
{
	FILE *f;

	(void)state;
	unsetenv("SSH_AUTH_SOCK"); /* the key file alone */
	snprintf(dir, sizeof dir, "/tmp/vakap-sshtest.XXXXXX");
	if (mkdtemp(dir) == NULL ||
	    sh("ssh-keygen -q -t ed25519 -N '' -f %s/key", dir) != 0 ||
	    sh("sh tests/support/sshd.sh start %s/sshd > %s/port", dir, dir) != 0 ||
	    sh("cat %s/key.pub >> %s/sshd/authorized_keys", dir, dir) != 0)
		return -1;
	f = fopen(in_dir("port"), "r");
	if (f == NULL)
		return -1;
	if (fgets(port, sizeof port, f) == NULL)
		port[0] = '\0';
	fclose(f);
	port[strcspn(port, "\n")] = '\0';
	return sh("echo \"[127.0.0.1]:%s $(cut -d' ' -f1,2 %s/sshd/hostkey.pub)\" "
	          "> %s/known_hosts", port, dir, dir) == 0 && port[0] ? 0 : -1;
}

static int server_down(void **state)
{
	(void)state;
	return sh("sh tests/support/sshd.sh stop %s/sshd; rm -rf %s", dir,
	          dir) == 0 ? 0 : -1;
}

static void on_alarm(int sig)
{
	(void)sig;
	vk_interrupted = 1;
}

/* A watchdog: what still waits after seconds is interrupted (as the
 * engine's signal handler does), so that a test fails, never hangs;
 * 0 to call it off. */
static void watchdog(int seconds)
{
	struct itimerval it;
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm; /* no SA_RESTART, as in the engine */
	sigaction(SIGALRM, &sa, NULL);
	memset(&it, 0, sizeof it);
	it.it_value.tv_sec = seconds;
	setitimer(ITIMER_REAL, &it, NULL);
	vk_interrupted = 0;
}

/* A state with DIR, PORT, MARK (a path that does not exist yet) and
 * connect(keepalive): a session to the server as root, labelled web1. */
static lua_State *server_state(void)
{
	lua_State *L = new_state();

	lua_pushstring(L, dir);
	lua_setglobal(L, "DIR");
	lua_pushstring(L, port);
	lua_setglobal(L, "PORT");
	run_lua(L,
		"MARK = DIR .. '/started'\n"
		"os.remove(MARK)\n"
		"function connect(keepalive)\n"
		"  return assert(require('vakap.ssh').connect({ host = '127.0.0.1',\n"
		"    port = tonumber(PORT), user = 'root', label = 'web1',\n"
		"    identity_files = { DIR .. '/key' }, known_hosts = DIR .. '/known_hosts',\n"
		"    keepalive = keepalive, connect_timeout = 10 }))\n"
		"end\n");
	return L;
}

/* The message at idx, which must hold says. */
static void assert_says(lua_State *L, int idx, const char *says)
{
	const char *msg = lua_tostring(L, idx);

	if (msg == NULL || strstr(msg, says) == NULL)
		fail_msg("'%s' not in: %s", says, msg ? msg : "(nil)");
}

/* A feed whose server stops answering (its sshd stopped once the remote
 * command started, by the feed's own input: the kernel still takes and
 * acknowledges what is written) fails within three keepalive intervals
 * after the first unanswered one; before, it wrote into the socket
 * until the watchdog. */
static void test_feed_to_a_frozen_server_is_dropped(void **state)
{
	lua_State *L = server_state();
	double start, took;

	(void)state;
	watchdog(30);
	start = vk_clock();
	assert_int_equal(run_lua(L,
		"local proc = require 'vakap.proc'\n"
		"local s = connect(1)\n"
		"local input <close> = assert(proc.spawn({ 'sh', '-c',\n"
		"  'while [ ! -e \"$1\" ]; do sleep 0.05; done;'\n"
		"  .. ' sh tests/support/sshd.sh freeze \"$2\";'\n"
		"  .. ' while :; do echo more; sleep 0.1; done',\n"
		"  'sh', MARK, DIR .. '/sshd' }))\n"
		"local n, err = s:feed({ 'sh', '-c', 'touch \"$1\"; exec cat > /dev/null',\n"
		"  'sh', MARK }, input)\n"
		"s:close()\n"
		"return n, err"), 2);
	took = vk_clock() - start;
	watchdog(0);
	sh("sh tests/support/sshd.sh thaw %s/sshd", dir);
	assert_true(lua_isnil(L, -2));
	assert_says(L, -1, "sh on web1: no answer from the SSH server for 3 s "
	            "(3 keepalives); connection dropped");
	print_message("the feed failed %.1f s after it started\n", took);
	if (took > 15)
		fail_msg("the feed failed only %.1f s after it started", took);
	lua_pop(L, 2);
	close_state(L, 0);
}

/* The same for the output of a remote command: once the server stops
 * answering (stopped after the first line came), the stream fails
 * within about four intervals of its last word. */
static void test_exec_from_a_frozen_server_is_dropped(void **state)
{
	lua_State *L = server_state();

	(void)state;
	watchdog(30);
	assert_int_equal(run_lua(L,
		"local proc = require 'vakap.proc'\n"
		"local s <close> = connect(1)\n"
		"local out <close> = assert(s:exec({ 'timeout', '60', 'sh', '-c',\n"
		"  'while :; do echo tick; sleep 0.1; done' }))\n"
		"assert(out:read())\n"
		"os.execute('sh tests/support/sshd.sh freeze ' .. DIR .. '/sshd')\n"
		"local frozen, data, err = proc.clock()\n"
		"repeat data, err = out:read() until not data\n"
		"return err, proc.clock() - frozen"), 2);
	watchdog(0);
	sh("sh tests/support/sshd.sh thaw %s/sshd", dir);
	assert_says(L, -2, "timeout on web1: no answer from the SSH server for "
	            "3 s (3 keepalives); connection dropped");
	print_message("the stream failed %.1f s after the server stopped\n",
	              lua_tonumber(L, -1));
	if (lua_tonumber(L, -1) > 10)
		fail_msg("the stream failed %.1f s after the server stopped",
		         lua_tonumber(L, -1));
	lua_pop(L, 2);
	close_state(L, 0);
}

/* A forked child (a worker) given the parent's session cannot use it:
 * running a command raises, a stream opened before the fork fails,
 * closing it frees only the child's copy; and the parent's session,
 * that stream included, goes on.  Before, the child's command and close
 * went out on the parent's connection, and the parent's next command
 * found it lost. */
static void test_a_forked_child_cannot_use_the_session(void **state)
{
	lua_State *L = server_state();

	(void)state;
	watchdog(30);
	assert_int_equal(run_lua(L,
		"local worker = require 'vakap.worker'\n"
		"local s <close> = connect(30)\n"
		"local before <close> = assert(s:exec({ 'echo', 'opened before' }))\n"
		"local w <close> = assert(worker.spawn(function()\n"
		"  local ok, err = pcall(s.exec, s, { 'echo', 'from the child' })\n"
		"  worker.send(('exec: %s %s'):format(ok, err))\n"
		"  local data, rerr = before:read()\n"
		"  worker.send((('read: %s %s'):format(data, rerr):gsub('\\n', ' ')))\n"
		"  s:close()\n"
		"  worker.send('closed')\n"
		"end))\n"
		"local lines = {}\n"
		"for _ = 1, 100 do\n"
		"  worker.wait({ w }, 200)\n"
		"  for _, l in ipairs(w:messages()) do lines[#lines + 1] = l end\n"
		"  if w:status() then break end\n"
		"end\n"
		"local how, code = w:status()\n"
		"local after = assert(s:exec({ 'echo', 'the parent goes on' }))\n"
		"return table.concat(lines, '\\n'), ('%s %s'):format(how, code),\n"
		"  before:readall(), after:readall()"), 4);
	watchdog(0);
	assert_says(L, -4, "exec: false");
	assert_says(L, -4, "read: nil echo on web1: " NOT_OURS_TEXT);
	assert_says(L, -4, "closed");
	assert_string_equal(lua_tostring(L, -3), "exited 0");
	assert_string_equal(lua_tostring(L, -2), "opened before\n");
	assert_string_equal(lua_tostring(L, -1), "the parent goes on\n");
	lua_pop(L, 4);
	close_state(L, 0);
}

/* How many descriptors this process has open. */
static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* d's own */
}

/* The descriptor of the one TCP socket open (the session's), or -1. */
static int session_socket(void)
{
	char link[64], target[64];
	int fd, found = -1;

	for (fd = 0; fd < 1024; fd++) {
		ssize_t n;

		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof target - 1);
		if (n > 0 && strncmp(target, "socket:", 7) == 0) {
			assert_int_equal(found, -1);
			found = fd;
		}
	}
	return found;
}

/* A connection the server drops: libssh closes the socket as it fails,
 * and the session's close must not close that number again -- by then
 * another file may have it (here, one opened in its place: it stays
 * open).  Before, it was closed twice.  No descriptor is left open. */
static void test_a_dropped_connection_closes_its_socket_once(void **state)
{
	lua_State *L = server_state();
	int before = open_fds(), sock, other;

	(void)state;
	watchdog(30);
	run_lua(L,
		"S = connect(30)\n"
		"OUT = assert(S:exec({ 'sh', '-c', 'echo up; exec sleep 30' }))\n"
		"assert(OUT:read())\n");
	sock = session_socket();
	assert_true(sock >= 0);
	assert_int_equal(run_lua(L,
		"os.execute('sh tests/support/sshd.sh drop ' .. DIR .. '/sshd')\n"
		"local data, err\n"
		"repeat data, err = OUT:read() until not data\n"
		"return err"), 1);
	assert_says(L, -1, "connection lost");
	lua_pop(L, 1);
	/* libssh closed it as the connection failed: another file takes it */
	assert_int_equal(fcntl(sock, F_GETFD), -1);
	other = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(other >= 0);
	if (other != sock) { /* it has the lowest number free: most often */
		assert_int_equal(dup2(other, sock), sock);
		close(other);
	}
	run_lua(L, "OUT:close(); S:close(); OUT, S = nil, nil; collectgarbage()");
	watchdog(0);
	assert_int_not_equal(fcntl(sock, F_GETFD), -1);
	assert_int_equal(open_fds(), before + 1);
	close(sock);
	assert_int_equal(open_fds(), before);
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
	const struct CMUnitTest with_server[] = {
		cmocka_unit_test(test_feed_to_a_frozen_server_is_dropped),
		cmocka_unit_test(test_exec_from_a_frozen_server_is_dropped),
		cmocka_unit_test(test_a_forked_child_cannot_use_the_session),
		cmocka_unit_test(test_a_dropped_connection_closes_its_socket_once),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	return failed + cmocka_run_group_tests_name("against sshd", with_server,
	                                            server_up, server_down);
}
