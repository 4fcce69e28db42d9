/*
 * vakap.proc: local processes.  A process's stdout as a stream source,
 * a process's stdin fed from a stream (a sink), and the few facts about
 * this process that Lua's standard library lacks.
 *
 * Commands are argument lists run without a shell.  Standard error is
 * kept, bounded, and shown when the command fails; the exit status is
 * the stream's end: zero is a clean end, anything else an error.
 */
#define _GNU_SOURCE /* posix_spawn_file_actions_addchdir_np, pipe2 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "engine.h"
#include "proc.h"
#include "stream.h"

extern char **environ;

struct child {
	pid_t pid;
	int out;     /* its stdout (source) or -1 */
	int in;      /* its stdin (sink) or -1 */
	int err;     /* its stderr or -1 */
	int status;  /* from waitpid, once reaped */
	int reaped;
	char name[64];
	struct vk_tail tail; /* of what it wrote on stderr */
};

static void child_init(struct child *c)
{
	memset(c, 0, sizeof *c);
	c->pid = -1;
	c->out = c->in = c->err = -1;
}

static void closefd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* Read what is waiting on fd (stderr, or a sink's stdout) into the tail;
 * closes it at end of file. */
static void drain_into_tail(struct child *c, int *fd)
{
	char buf[4096];
	ssize_t r = read(*fd, buf, sizeof buf);

	if (r > 0)
		vk_tail_add(&c->tail, buf, (size_t)r);
	else if (r == 0 || (errno != EINTR && errno != EAGAIN))
		closefd(fd);
}

static void reap(struct child *c)
{
	while (!c->reaped && c->pid > 0) {
		if (waitpid(c->pid, &c->status, 0) == c->pid)
			c->reaped = 1;
		else if (errno != EINTR)
			break;
	}
}

/* Stop a child that is still running, with everything it started (it
 * leads its own process group): SIGTERM, then SIGKILL after 2 s. */
static void stop(struct child *c)
{
	int i;

	if (c->pid <= 0 || c->reaped)
		return;
	kill(-c->pid, SIGTERM);
	for (i = 0; i < 200; i++) {
		if (waitpid(c->pid, &c->status, WNOHANG) == c->pid) {
			c->reaped = 1;
			return;
		}
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	}
	kill(-c->pid, SIGKILL);
	reap(c);
}

/* The message for a child that ended badly, or NULL if it exited 0. */
static const char *exit_problem(struct child *c, char *buf, size_t len)
{
	const char *tail = c->tail.buf;
	size_t n = vk_tail_trimmed(&c->tail);

	if (WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0)
		return NULL;
	if (WIFEXITED(c->status))
		snprintf(buf, len, "%s exited with status %d%s%.*s", c->name,
		         WEXITSTATUS(c->status), n ? ": " : "", (int)n, tail);
	else if (WIFSIGNALED(c->status))
		snprintf(buf, len, "%s was killed by signal %d (%s)%s%.*s",
		         c->name, WTERMSIG(c->status),
		         strsignal(WTERMSIG(c->status)), n ? ": " : "", (int)n,
		         tail);
	else
		snprintf(buf, len, "%s ended abnormally", c->name);
	return buf;
}

/* ---- spawning ---- */

struct spawn_opts {
	const char *cwd;
	char **env; /* NULL: inherit */
};

static void free_strv(char **v)
{
	char **p;

	if (v == NULL)
		return;
	for (p = v; *p; p++)
		free(*p);
	free(v);
}

/* argv from the Lua list at idx; a malloc'd vector the caller frees. */
static char **check_argv(lua_State *L, int idx)
{
	lua_Integer i, n;
	char **argv;

	luaL_checktype(L, idx, LUA_TTABLE);
	n = (lua_Integer)lua_rawlen(L, idx);
	luaL_argcheck(L, n > 0, idx, "empty command");
	for (i = 1; i <= n; i++) {
		if (lua_rawgeti(L, idx, i) != LUA_TSTRING)
			luaL_error(L, "command argument %d is a %s, not a string",
			           (int)i, luaL_typename(L, -1));
		lua_pop(L, 1);
	}
	argv = calloc((size_t)n + 1, sizeof *argv);
	if (argv == NULL)
		luaL_error(L, "out of memory");
	for (i = 1; i <= n; i++) {
		lua_rawgeti(L, idx, i);
		argv[i - 1] = strdup(lua_tostring(L, -1));
		lua_pop(L, 1);
		if (argv[i - 1] == NULL) {
			free_strv(argv);
			luaL_error(L, "out of memory");
		}
	}
	return argv;
}

/* The environment: this process's, with the table at idx's NAME = value
 * (false removes NAME).  NULL when there is nothing to change. */
static char **build_env(lua_State *L, int idx)
{
	size_t n = 0, k = 0, i;
	char **env;

	if (lua_isnoneornil(L, idx))
		return NULL;
	luaL_checktype(L, idx, LUA_TTABLE);
	while (environ[n])
		n++;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		k++;
		lua_pop(L, 1);
	}
	env = calloc(n + k + 1, sizeof *env);
	if (env == NULL)
		luaL_error(L, "out of memory");
	k = 0;
	for (i = 0; i < n; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t len = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		char name[256];

		if (len >= sizeof name)
			continue;
		memcpy(name, environ[i], len);
		name[len] = '\0';
		if (lua_getfield(L, idx, name) == LUA_TNIL)
			env[k++] = strdup(environ[i]);
		lua_pop(L, 1);
	}
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (lua_type(L, -2) == LUA_TSTRING &&
		    lua_type(L, -1) == LUA_TSTRING) {
			size_t ln, lv;
			const char *name = lua_tolstring(L, -2, &ln);
			const char *val = lua_tolstring(L, -1, &lv);
			char *e = malloc(ln + lv + 2);
			if (e) {
				memcpy(e, name, ln);
				e[ln] = '=';
				memcpy(e + ln + 1, val, lv + 1);
				env[k++] = e;
			}
		}
		lua_pop(L, 1);
	}
	return env;
}

/*
 * The program argv[0] names: itself if it has a '/', else the first
 * executable of that name on PATH.  Returns 0, or an errno value.  Done
 * here rather than left to posix_spawnp, so that a missing command is an
 * error at start on every libc (and under valgrind), not an exit 127.
 */
static int resolve(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH"), *p, *end;

	if (strchr(name, '/')) {
		snprintf(out, len, "%s", name);
		return access(out, X_OK) == 0 ? 0 : errno;
	}
	if (path == NULL || *path == '\0')
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p; p = *end ? end + 1 : end) {
		end = strchr(p, ':');
		if (end == NULL)
			end = p + strlen(p);
		if (end == p)
			continue;
		snprintf(out, len, "%.*s/%s", (int)(end - p), p, name);
		if (access(out, X_OK) == 0)
			return 0;
	}
	return ENOENT;
}

/*
 * Start argv with the given ends of pipes as its stdin/stdout/stderr
 * (-1: /dev/null), and fd3 as its fd 3 unless -1.  Returns 0, or an errno
 * value.
 */
static int start(struct child *c, char **argv, const struct spawn_opts *o,
                 int in, int out, int err, int fd3)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t dflt;
	char prog[4096];
	int rc;

	snprintf(c->name, sizeof c->name, "%s", argv[0]);
	rc = resolve(argv[0], prog, sizeof prog);
	if (rc != 0)
		return rc;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	sigaddset(&dflt, SIGINT);
	sigaddset(&dflt, SIGTERM);
	posix_spawnattr_setsigdefault(&attr, &dflt);
	/* its own process group, so stop() reaches a whole pipeline */
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	if (in >= 0)
		posix_spawn_file_actions_adddup2(&fa, in, 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (out >= 0)
		posix_spawn_file_actions_adddup2(&fa, out, 1);
	else
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, err, 2);
	if (fd3 >= 0)
		posix_spawn_file_actions_adddup2(&fa, fd3, 3);
	if (o->cwd)
		posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
	rc = posix_spawn(&c->pid, prog, &fa, &attr, argv,
	                 o->env ? o->env : environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0)
		c->pid = -1;
	return rc;
}

static void check_opts(lua_State *L, int idx, struct spawn_opts *o)
{
	o->cwd = NULL;
	o->env = NULL;
	if (lua_isnoneornil(L, idx))
		return;
	luaL_checktype(L, idx, LUA_TTABLE);
	if (lua_getfield(L, idx, "cwd") != LUA_TNIL)
		o->cwd = luaL_checkstring(L, -1); /* kept alive by the table */
	lua_pop(L, 1);
}

/* ---- the stream: a process's standard output ---- */

#define PIPE_WIDE (1024 * 1024) /* fewer rounds between it and us */

/* proc.spawn's source, and proc.filter's filter, whose stdin is fed from
 * the upstream as its stdout is read. */
struct proc_stream {
	struct vk_stream s;
	struct child c;
	unsigned char *buf;  /* filter: the upstream's bytes not yet written */
	size_t pos, len;
	int up_ended;        /* its stdin was closed at the upstream's end
	                      * (a source: it has none) */
	int ran;             /* it was reaped after closing its stdout */
};

/* Write what is pending to its stdin; a command that stops reading has
 * its stdin closed, and is judged at its end. */
static void feed_pending(struct proc_stream *p)
{
	ssize_t w = write(p->c.in, p->buf + p->pos, p->len - p->pos);

	if (w > 0)
		p->pos += (size_t)w;
	else if (w < 0 && errno != EINTR && errno != EAGAIN)
		closefd(&p->c.in);
}

/* Its stdout has ended: its exit status decides. */
static ssize_t stream_end(struct proc_stream *p)
{
	struct child *c = &p->c;
	char msg[VK_TAIL + 256];

	closefd(&c->in);
	while (c->err >= 0)
		drain_into_tail(c, &c->err);
	reap(c);
	p->ran = 1;
	if (exit_problem(c, msg, sizeof msg))
		return vk_fail(&p->s, "%s", msg);
	if (!p->up_ended)
		return vk_fail(&p->s, "%s ended before reading all its input",
		               c->name);
	return 0;
}

/* Move the upstream's bytes (if any) to its stdin and its stderr to the
 * tail until it has output for buf, or has ended. */
static ssize_t stream_read(struct vk_stream *s, void *buf, size_t n)
{
	struct proc_stream *p = (struct proc_stream *)s;
	struct child *c = &p->c;

	while (c->out >= 0) {
		struct pollfd fds[3] = {{c->out, POLLIN, 0}, {c->err, POLLIN, 0},
		                        {c->in, POLLOUT, 0}};
		int ready;

		if (c->in >= 0 && p->pos == p->len) {
			ssize_t r = vk_read(s->up, p->buf, VK_CHUNK);

			if (r < 0) {
				stop(c); /* before it sees a clean end of its input */
				return vk_fail_up(s);
			}
			p->pos = 0;
			p->len = (size_t)r;
			if (r == 0) {
				p->up_ended = 1;
				closefd(&c->in);
			}
		}
		fds[2].fd = c->in;
		ready = poll(fds, 3, 1000); /* closed ones are -1: skipped */
		if (ready < 0 && errno != EINTR)
			return vk_fail(s, "%s: %s", c->name, strerror(errno));
		if (vk_stopping())
			return vk_fail(s, "%s: interrupted", c->name);
		if (ready <= 0)
			continue;
		if (fds[1].revents)
			drain_into_tail(c, &c->err);
		if (fds[2].revents)
			feed_pending(p);
		if (fds[0].revents) {
			ssize_t r = read(c->out, buf, n);
			if (r > 0)
				return r;
			if (r == 0)
				closefd(&c->out);
			else if (errno != EINTR)
				return vk_fail(s, "%s: reading its output: %s",
				               c->name, strerror(errno));
		}
	}
	return stream_end(p);
}

static void stream_release(struct vk_stream *s)
{
	struct proc_stream *p = (struct proc_stream *)s;

	closefd(&p->c.in);
	closefd(&p->c.out);
	closefd(&p->c.err);
	stop(&p->c);
	free(p->buf);
	p->buf = NULL;
}

static void child_info(struct child *c, lua_State *L)
{
	lua_pushinteger(L, c->pid);
	lua_setfield(L, -2, "pid");
	lua_pushstring(L, c->name);
	lua_setfield(L, -2, "command");
	lua_pushlstring(L, c->tail.buf, c->tail.len);
	lua_setfield(L, -2, "stderr");
	if (c->reaped && WIFEXITED(c->status)) {
		lua_pushinteger(L, WEXITSTATUS(c->status));
		lua_setfield(L, -2, "exit_status");
	} else if (c->reaped && WIFSIGNALED(c->status)) {
		lua_pushinteger(L, WTERMSIG(c->status));
		lua_setfield(L, -2, "signal");
	}
}

static void stream_info(struct vk_stream *s, lua_State *L)
{
	child_info(&((struct proc_stream *)s)->c, L);
}

static const struct vk_stream_ops stream_ops = {
	.name = "process",
	.read = stream_read,
	.release = stream_release,
	.info = stream_info,
};

static void close_pipe(int fds[2])
{
	closefd(&fds[0]);
	closefd(&fds[1]);
}

/* A pipe whose read end, fds[0], holds data and then its end (data fits
 * in a pipe's buffer).  0, or an errno value. */
static int pipe_of(const char *data, int fds[2])
{
	size_t len = strlen(data);
	int rc = 0;

	if (pipe2(fds, O_CLOEXEC) != 0)
		return errno;
	if (write(fds[1], data, len) != (ssize_t)len)
		rc = errno ? errno : EIO;
	closefd(&fds[1]);
	if (rc != 0)
		closefd(&fds[0]);
	return rc;
}

/* Start argv with pipes to its stdout and stderr, and with input, to its
 * stdin (else /dev/null); our end of stdout is wide, and of stdin wide
 * and not blocking.  fd3_data: what its fd 3 reads, or NULL.  0, or an
 * errno value. */
static int start_piped(struct proc_stream *p, char **argv,
                       const struct spawn_opts *o, int with_input,
                       const char *fd3_data)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	int fd3[2] = {-1, -1}, rc;

	if (fd3_data && (rc = pipe_of(fd3_data, fd3)) != 0)
		return rc;
	if ((with_input && pipe2(in, O_CLOEXEC) != 0) ||
	    pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
		rc = errno;
		close_pipe(in);
		close_pipe(out);
		close_pipe(err);
		close_pipe(fd3);
		return rc;
	}
	if (with_input) {
		(void)fcntl(in[1], F_SETPIPE_SZ, PIPE_WIDE);
		(void)fcntl(in[1], F_SETFL, O_NONBLOCK);
	}
	(void)fcntl(out[0], F_SETPIPE_SZ, PIPE_WIDE);
	rc = start(&p->c, argv, o, in[0], out[1], err[1], fd3[0]);
	closefd(&in[0]);
	closefd(&out[1]);
	closefd(&err[1]);
	closefd(&fd3[0]);
	p->c.in = in[1];
	p->c.out = out[0];
	p->c.err = err[0];
	return rc;
}

/* The options' env (at idx, a table or nothing) into o->env. */
static void opts_env(lua_State *L, int idx, struct spawn_opts *o)
{
	if (!lua_istable(L, idx))
		return;
	if (lua_getfield(L, idx, "env") != LUA_TNIL)
		o->env = build_env(L, lua_gettop(L));
	lua_pop(L, 1);
}

/* lua: proc.spawn(argv [, {cwd=, env={NAME=value|false}}]) -> stream |
 *      fail, message.  The stream is the command's standard output. */
static int l_spawn(lua_State *L)
{
	struct spawn_opts o;
	struct proc_stream *p;
	char **argv;
	int rc;

	check_opts(L, 2, &o);
	argv = check_argv(L, 1);
	p = (struct proc_stream *)vk_stream_push(L, sizeof *p, &stream_ops);
	child_init(&p->c);
	p->up_ended = 1;
	opts_env(L, 2, &o);
	rc = start_piped(p, argv, &o, 0, NULL);
	free_strv(o.env);
	if (rc != 0) {
		vk_close(&p->s);
		lua_pop(L, 1);
		vk_pushfail(L, "cannot run %s: %s", argv[0], strerror(rc));
		free_strv(argv);
		return 2;
	}
	free_strv(argv);
	vk_open(&p->s);
	return 1;
}

/* Push the filter of argv over the stream at up_idx: opened and running,
 * or failed with why it could not start. */
static struct proc_stream *push_filter(lua_State *L, int up_idx, char **argv,
                                       const struct spawn_opts *o,
                                       const char *fd3_data)
{
	struct proc_stream *p;
	int rc;

	up_idx = lua_absindex(L, up_idx);
	vk_stream_check(L, up_idx);
	p = (struct proc_stream *)vk_stream_push(L, sizeof *p, &stream_ops);
	child_init(&p->c);
	vk_stream_adopt(L, -1, up_idx);
	vk_open(&p->s);
	p->buf = malloc(VK_CHUNK);
	if (p->buf == NULL) {
		vk_fail(&p->s, "out of memory");
		return p;
	}
	rc = start_piped(p, argv, o, 1, fd3_data);
	if (rc != 0)
		vk_fail(&p->s, "cannot run %s: %s", argv[0], strerror(rc));
	return p;
}

struct vk_stream *vk_proc_filter(lua_State *L, int up_idx, char **argv,
                                 const char *fd3_data)
{
	struct spawn_opts o = {NULL, NULL};

	return &push_filter(L, up_idx, argv, &o, fd3_data)->s;
}

int vk_proc_filter_ran(struct vk_stream *s, const char **tail)
{
	struct proc_stream *p = (struct proc_stream *)s;

	*tail = p->c.tail.buf;
	return p->ran;
}

/* lua: proc.filter(up, argv [, {cwd=, env=}]) -> stream of what argv
 *      writes on its standard output while up is its standard input.  Its
 *      end is argv's exit: a status other than 0, or an end before it
 *      read all of up, fails the stream (with the end of its stderr).  A
 *      failing up stops it (SIGTERM) before it sees a clean end. */
static int l_filter(lua_State *L)
{
	struct spawn_opts o;
	char **argv;

	vk_stream_check(L, 1);
	check_opts(L, 3, &o);
	argv = check_argv(L, 2);
	opts_env(L, 3, &o);
	push_filter(L, 1, argv, &o, NULL);
	free_strv(argv);
	free_strv(o.env);
	return 1;
}

/* ---- the sink: a process's standard input ---- */

struct feed {
	struct child c;
	int failed_write;
};

/* Write all of buf to the child's stdin, draining its stdout and stderr
 * meanwhile so it never blocks on them. */
static int feed_write(void *ctx, const void *buf, size_t n, char *errbuf,
                      size_t errlen)
{
	struct feed *f = ctx;
	struct child *c = &f->c;
	const char *p = buf;

	while (n > 0) {
		struct pollfd fds[2] = {{c->in, POLLOUT, 0},
		                        {c->err, POLLIN, 0}};
		if (poll(fds, c->err >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR && !vk_interrupted)
				continue;
			snprintf(errbuf, errlen, "%s: %s", c->name,
			         vk_interrupted ? "interrupted" : strerror(errno));
			return -1;
		}
		if (c->err >= 0 && fds[1].revents)
			drain_into_tail(c, &c->err);
		if (fds[0].revents) {
			ssize_t w = write(c->in, p, n);
			if (w < 0 && errno != EINTR && errno != EAGAIN) {
				f->failed_write = errno;
				snprintf(errbuf, errlen, "%s stopped reading its input: %s",
				         c->name, strerror(errno));
				return -1;
			}
			if (w > 0) {
				p += w;
				n -= (size_t)w;
			}
		}
	}
	return 0;
}

/* lua: proc.feed(argv, stream [, {cwd=, env=, progress=fn}]) ->
 *      bytes | fail, message.  Runs argv with the stream as its standard
 *      input; its output is kept like its errors and shown on failure.
 *      A stream that fails stops the command (SIGTERM) before it sees a
 *      clean end of input. */
static int l_feed(lua_State *L)
{
	struct spawn_opts o;
	struct vk_stream *s = vk_stream_check(L, 2);
	struct feed f;
	char err[VK_TAIL + 256];
	int in[2], errp[2], rc, progress = 0;
	char **argv;

	check_opts(L, 3, &o);
	argv = check_argv(L, 1);
	child_init(&f.c);
	f.failed_write = 0;
	opts_env(L, 3, &o);
	if (lua_istable(L, 3)) {
		lua_getfield(L, 3, "progress");
		progress = lua_gettop(L);
	}
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
		rc = errno;
		free_strv(argv);
		free_strv(o.env);
		return vk_pushfail(L, "cannot run: %s", strerror(rc));
	}
	/* stdout and stderr both go to the kept tail */
	rc = start(&f.c, argv, &o, in[0], errp[1], errp[1], -1);
	close(in[0]);
	close(errp[1]);
	f.c.in = in[1];
	f.c.err = errp[0];
	free_strv(o.env);
	if (rc != 0) {
		closefd(&f.c.in);
		closefd(&f.c.err);
		vk_pushfail(L, "cannot run %s: %s", argv[0], strerror(rc));
		free_strv(argv);
		return 2;
	}
	free_strv(argv);
	rc = vk_pump(L, s, feed_write, &f, progress, err, sizeof err);
	if (rc != 0 && !f.failed_write) {
		/* the stream failed: the command must not see a clean end, so
		 * it is stopped before its input is closed */
		stop(&f.c);
		closefd(&f.c.in);
		closefd(&f.c.err);
		return vk_pushfail(L, "%s", err);
	}
	closefd(&f.c.in);
	while (f.c.err >= 0)
		drain_into_tail(&f.c, &f.c.err);
	reap(&f.c);
	if (exit_problem(&f.c, err, sizeof err))
		return vk_pushfail(L, "%s", err);
	if (rc != 0)
		return vk_pushfail(L, "%s: stopped reading its input", f.c.name);
	lua_pushinteger(L, (lua_Integer)s->nbytes);
	return 1;
}

/* ---- facts about this process ---- */

/* lua: proc.pid() -> this process's id */
static int l_pid(lua_State *L)
{
	lua_pushinteger(L, getpid());
	return 1;
}

/* Whether process pid is a zombie: dead, not yet reaped (Linux's /proc). */
static int zombie(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* after the command's name, which may hold anything */
	return p != NULL && p[1] == ' ' && p[2] == 'Z';
}

/* lua: proc.alive(pid) -> whether a live process of that id exists here */
static int l_alive(lua_State *L)
{
	lua_Integer pid = luaL_checkinteger(L, 1);

	luaL_argcheck(L, pid > 0, 1, "must be a process id");
	lua_pushboolean(L, (kill((pid_t)pid, 0) == 0 || errno == EPERM) &&
	                       !zombie((pid_t)pid));
	return 1;
}

/* lua: proc.unsetenv(name) -- gone from this process's environment, and
 *      so from every command it starts from now on */
static int l_unsetenv(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);

	luaL_argcheck(L, *name != '\0' && strchr(name, '=') == NULL, 1,
	              "not a variable's name");
	unsetenv(name);
	return 0;
}

/* lua: proc.env_names() -> { the names of this process's environment } */
static int l_env_names(lua_State *L)
{
	lua_Integer n = 0;
	char **e;

	lua_newtable(L);
	for (e = environ; *e; e++) {
		const char *eq = strchr(*e, '=');

		lua_pushlstring(L, *e, eq ? (size_t)(eq - *e) : strlen(*e));
		lua_rawseti(L, -2, ++n);
	}
	return 1;
}

/* lua: proc.isatty(fd) -> boolean */
static int l_isatty(lua_State *L)
{
	lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
	return 1;
}

/* lua: proc.clock() -> seconds on a monotonic clock, with a fraction */
static int l_clock(lua_State *L)
{
	lua_pushnumber(L, vk_clock());
	return 1;
}

/* lua: proc.sleep(seconds) */
static int l_sleep(lua_State *L)
{
	lua_Number t = luaL_checknumber(L, 1);
	struct timespec ts;

	luaL_argcheck(L, t >= 0, 1, "must not be negative");
	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (lua_Number)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !vk_interrupted)
		;
	return 0;
}

/* lua: proc.hostname() -> this machine's name */
static int l_hostname(lua_State *L)
{
	char name[256];

	if (gethostname(name, sizeof name) != 0)
		return vk_pushfail(L, "gethostname: %s", strerror(errno));
	name[sizeof name - 1] = '\0';
	lua_pushstring(L, name);
	return 1;
}

/* lua: proc.interrupted() -> true once SIGINT or SIGTERM arrived */
static int l_interrupted(lua_State *L)
{
	lua_pushboolean(L, vk_interrupted);
	return 1;
}

static const luaL_Reg funcs[] = {
	{"spawn", l_spawn},       {"feed", l_feed},
	{"filter", l_filter},
	{"pid", l_pid},           {"isatty", l_isatty},
	{"alive", l_alive},       {"unsetenv", l_unsetenv},
	{"env_names", l_env_names},
	{"clock", l_clock},       {"sleep", l_sleep},
	{"hostname", l_hostname}, {"interrupted", l_interrupted},
	{NULL, NULL},
};

int luaopen_vakap_proc(lua_State *L)
{
	/* a command that stops reading its input is an error, not our death */
	signal(SIGPIPE, SIG_IGN);
	luaL_newlib(L, funcs);
	return 1;
}
