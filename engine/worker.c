/*
 * vakap.worker: run a Lua function in a child process.
 *
 * Each site runs in a worker, a fork of the engine, so that a site that
 * raises, hangs or crashes the process (a segfault in a library, an
 * out-of-memory kill) fails alone.  The child reports to its parent in
 * lines on a pipe (worker.send); the parent waits on many workers at
 * once (worker.wait) and reads each one's lines and end.
 */
#define _GNU_SOURCE /* pipe2 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>

#include "engine.h"
#include "stream.h"

#define WORKER_MT "vakap.worker"
#define MAX_LINE (64 * 1024 * 1024)

struct worker {
	pid_t pid;   /* -1 before the fork */
	pid_t owner; /* the process that forked it: only it may reap it */
	int fd;      /* read end of the child's report pipe, or -1 */
	int status;
	int reaped;
	char *buf; /* what the child sent that is not yet taken */
	size_t len, cap;
	int overflow;
};

static int report_fd = -1; /* in a worker: the write end to the parent */

static struct worker *checkworker(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, WORKER_MT);
}

static void release(struct worker *w)
{
	if (w->owner == getpid() && w->pid > 0 && !w->reaped) {
		kill(w->pid, SIGKILL);
		while (waitpid(w->pid, &w->status, 0) < 0 && errno == EINTR)
			;
		w->reaped = 1;
	}
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
}

static _Noreturn void run_child(lua_State *L, int wfd)
{
	int rc;

	report_fd = wfd;
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		_exit(70); /* the parent is already gone */
	lua_pushvalue(L, 1);
	lua_insert(L, 2);
	rc = lua_pcall(L, lua_gettop(L) - 2, 0, 0);
	if (rc != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		fprintf(stderr, "vakap: worker: %s\n", msg ? msg : "error");
	}
	fflush(stdout);
	fflush(stderr);
	_exit(rc == LUA_OK ? 0 : 70);
}

/* lua: worker.spawn(fn, ...) -> worker | fail, message
 *      Runs fn(...) in a new process; the child exits when fn returns
 *      (status 0) or raises (status 70). */
static int l_spawn(lua_State *L)
{
	struct worker *w;
	int p[2];

	luaL_checktype(L, 1, LUA_TFUNCTION);
	w = lua_newuserdatauv(L, sizeof *w, 0);
	memset(w, 0, sizeof *w);
	w->pid = -1;
	w->fd = -1;
	w->owner = getpid();
	luaL_setmetatable(L, WORKER_MT);
	if (pipe2(p, O_CLOEXEC) != 0)
		return vk_pushfail(L, "cannot create a pipe: %s", strerror(errno));
	fflush(NULL);
	w->pid = fork();
	if (w->pid < 0) {
		int saved = errno;
		close(p[0]);
		close(p[1]);
		return vk_pushfail(L, "cannot fork: %s", strerror(saved));
	}
	if (w->pid == 0) {
		close(p[0]);
		lua_pop(L, 1); /* the handle */
		run_child(L, p[1]);
	}
	close(p[1]);
	w->fd = p[0];
	return 1;
}

/* lua: worker.send(line) -> true | fail, message -- from inside a worker,
 *      one line (without newlines) to the parent */
static int l_send(lua_State *L)
{
	size_t len;
	const char *line = luaL_checklstring(L, 1, &len);
	char nl = '\n';

	if (report_fd < 0)
		return luaL_error(L, "worker.send outside a worker");
	luaL_argcheck(L, memchr(line, '\n', len) == NULL, 1,
	              "a line must not contain a newline");
	while (len > 0) {
		ssize_t w = write(report_fd, line, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return vk_pushfail(L, "report to parent: %s", strerror(errno));
		line += w;
		len -= (size_t)w;
	}
	while (write(report_fd, &nl, 1) < 0)
		if (errno != EINTR)
			return vk_pushfail(L, "report to parent: %s", strerror(errno));
	lua_pushboolean(L, 1);
	return 1;
}

/* Take what is waiting on w's pipe; at its end, reap the child. */
static void take(struct worker *w)
{
	ssize_t r;

	if (w->cap - w->len < 65536 && !w->overflow) {
		size_t cap = w->cap ? w->cap * 2 : 65536;
		char *nb = cap <= MAX_LINE ? realloc(w->buf, cap) : NULL;
		if (nb == NULL) {
			w->overflow = 1; /* drop what the child sends from now */
		} else {
			w->buf = nb;
			w->cap = cap;
		}
	}
	if (w->overflow) {
		char sink[65536];
		r = read(w->fd, sink, sizeof sink);
	} else {
		r = read(w->fd, w->buf + w->len, w->cap - w->len);
		if (r > 0)
			w->len += (size_t)r;
	}
	if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
		close(w->fd);
		w->fd = -1;
		while (!w->reaped) {
			if (waitpid(w->pid, &w->status, 0) == w->pid)
				w->reaped = 1;
			else if (errno != EINTR)
				break;
		}
	}
}

/* lua: worker.wait(workers, timeout_ms) -> true when something arrived,
 *      false on timeout or interruption.  Reads what each running worker
 *      in the list has sent; take it with w:messages() and w:status(). */
static int l_wait(lua_State *L)
{
	struct pollfd fds[256];
	struct worker *ws[256];
	lua_Integer i, n;
	int count = 0, timeout, r;

	luaL_checktype(L, 1, LUA_TTABLE);
	timeout = (int)luaL_optinteger(L, 2, -1);
	n = (lua_Integer)lua_rawlen(L, 1);
	for (i = 1; i <= n && count < 256; i++) {
		struct worker *w;
		lua_rawgeti(L, 1, i);
		w = checkworker(L, -1);
		lua_pop(L, 1);
		if (w->fd < 0)
			continue;
		fds[count].fd = w->fd;
		fds[count].events = POLLIN;
		fds[count].revents = 0;
		ws[count++] = w;
	}
	if (count == 0) {
		lua_pushboolean(L, 1);
		return 1;
	}
	r = poll(fds, (nfds_t)count, timeout);
	if (r <= 0) {
		lua_pushboolean(L, 0);
		return 1;
	}
	for (i = 0; i < count; i++)
		if (fds[i].revents)
			take(ws[i]);
	lua_pushboolean(L, 1);
	return 1;
}

/* lua: w:messages() -> { lines } the worker sent since the last call */
static int m_messages(lua_State *L)
{
	struct worker *w = checkworker(L, 1);
	size_t start = 0, i;
	lua_Integer n = 0;

	lua_newtable(L);
	if (w->len == 0)
		return 1;
	for (i = 0; i < w->len; i++) {
		if (w->buf[i] != '\n')
			continue;
		lua_pushlstring(L, w->buf + start, i - start);
		lua_rawseti(L, -2, ++n);
		start = i + 1;
	}
	memmove(w->buf, w->buf + start, w->len - start);
	w->len -= start;
	return 1;
}

/* lua: w:status() -> nil while running; "exited", code | "killed", signal */
static int m_status(lua_State *L)
{
	struct worker *w = checkworker(L, 1);

	if (!w->reaped)
		return 0;
	if (WIFEXITED(w->status)) {
		lua_pushliteral(L, "exited");
		lua_pushinteger(L, WEXITSTATUS(w->status));
	} else {
		lua_pushliteral(L, "killed");
		lua_pushinteger(L, WTERMSIG(w->status));
	}
	return 2;
}

/* lua: w:kill([signal = SIGTERM]) */
static int m_kill(lua_State *L)
{
	struct worker *w = checkworker(L, 1);
	int sig = (int)luaL_optinteger(L, 2, SIGTERM);

	if (w->pid > 0 && !w->reaped && w->owner == getpid())
		kill(w->pid, sig);
	return 0;
}

/* lua: w:pid() -> the worker's process id */
static int m_pid(lua_State *L)
{
	lua_pushinteger(L, checkworker(L, 1)->pid);
	return 1;
}

/* lua: w:close() -- kills a worker still running; also __gc, __close */
static int m_close(lua_State *L)
{
	release(checkworker(L, 1));
	return 0;
}

static const luaL_Reg methods[] = {
	{"messages", m_messages}, {"status", m_status}, {"kill", m_kill},
	{"pid", m_pid},           {"close", m_close},   {NULL, NULL},
};

static const luaL_Reg metamethods[] = {
	{"__index", NULL},
	{"__gc", m_close},
	{"__close", m_close},
	{NULL, NULL},
};

static const luaL_Reg funcs[] = {
	{"spawn", l_spawn},
	{"send", l_send},
	{"wait", l_wait},
	{NULL, NULL},
};

int luaopen_vakap_worker(lua_State *L)
{
	vk_class(L, WORKER_MT, metamethods, methods);
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
