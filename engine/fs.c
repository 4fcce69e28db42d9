/*
 * vakap.fs: local files.  A file as a stream source, a stream written to a
 * file (a sink that removes what it wrote when the stream fails), and the
 * directory operations Lua's standard library lacks.
 */
#define _GNU_SOURCE /* renameat2, RENAME_NOREPLACE */

#include <dirent.h>
#include <sys/file.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>

#include "engine.h"
#include "stream.h"

static int fail_errno(lua_State *L, const char *what, const char *path)
{
	return vk_pushfail(L, "%s %s: %s", what, path, strerror(errno));
}

/* ---- the source: a file ---- */

struct file_source {
	struct vk_stream s;
	int fd;
	char path[256];
};

static ssize_t file_read(struct vk_stream *s, void *buf, size_t n)
{
	struct file_source *f = (struct file_source *)s;

	for (;;) {
		ssize_t r = read(f->fd, buf, n);
		if (r >= 0)
			return r;
		if (errno != EINTR || vk_stopping())
			return vk_fail(s, "reading %s: %s", f->path,
			               vk_stopping() ? "interrupted" : strerror(errno));
	}
}

static void file_release(struct vk_stream *s)
{
	struct file_source *f = (struct file_source *)s;

	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

static const struct vk_stream_ops file_ops = {
	.name = "file",
	.read = file_read,
	.release = file_release,
};

/* lua: fs.source(path) -> stream | fail, message */
static int l_source(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct file_source *f;

	f = (struct file_source *)vk_stream_push(L, sizeof *f, &file_ops);
	f->fd = -1;
	snprintf(f->path, sizeof f->path, "%s", path);
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return fail_errno(L, "cannot open", path);
	vk_open(&f->s);
	return 1;
}

/* ---- the sink: a stream into a new file ---- */

struct file_sink {
	int fd;
	const char *path;
};

static int sink_write(void *ctx, const void *buf, size_t n, char *errbuf,
                      size_t errlen)
{
	struct file_sink *f = ctx;
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(f->fd, p, n);
		if (w < 0) {
			if (errno == EINTR && !vk_interrupted)
				continue;
			snprintf(errbuf, errlen, "writing %s: %s", f->path,
			         vk_interrupted ? "interrupted" : strerror(errno));
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* lua: fs.write(stream, path [, {progress = fn, mode = 0600}]) ->
 *      bytes | fail, message.  path must not exist.  The data reaches
 *      the disk (fsync) before this returns; on any failure, including
 *      the stream's, the file is removed. */
static int l_write(lua_State *L)
{
	struct vk_stream *s = vk_stream_check(L, 1);
	struct file_sink f = {-1, luaL_checkstring(L, 2)};
	int mode = 0600, progress = 0;
	char err[600];

	if (lua_istable(L, 3)) {
		if (lua_getfield(L, 3, "mode") == LUA_TNUMBER)
			mode = (int)lua_tointeger(L, -1);
		lua_pop(L, 1);
		lua_getfield(L, 3, "progress");
		progress = lua_gettop(L);
	}
	f.fd = open(f.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (f.fd < 0)
		return fail_errno(L, "cannot create", f.path);
	if (vk_pump(L, s, sink_write, &f, progress, err, sizeof err) == 0) {
		if (fsync(f.fd) != 0)
			snprintf(err, sizeof err, "fsync %s: %s", f.path,
			         strerror(errno));
		else if (close(f.fd) != 0)
			snprintf(err, sizeof err, "closing %s: %s", f.path,
			         strerror(errno));
		else {
			lua_pushinteger(L, (lua_Integer)s->nbytes);
			return 1;
		}
		f.fd = -1;
	}
	if (f.fd >= 0)
		close(f.fd);
	unlink(f.path);
	return vk_pushfail(L, "%s", err);
}

/* ---- directories and names ---- */

/* lua: fs.rename(from, to [, {replace = false}]) -> true | fail, message
 *      Without replace, an existing `to` is an error, never overwritten. */
static int l_rename(lua_State *L)
{
	const char *from = luaL_checkstring(L, 1);
	const char *to = luaL_checkstring(L, 2);
	int replace = 0;

	if (lua_istable(L, 3)) {
		lua_getfield(L, 3, "replace");
		replace = lua_toboolean(L, -1);
		lua_pop(L, 1);
	}
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to,
	              replace ? 0 : RENAME_NOREPLACE) != 0)
		return vk_pushfail(L, "cannot rename %s to %s: %s", from, to,
		                   strerror(errno));
	lua_pushboolean(L, 1);
	return 1;
}

/* lua: fs.mkdir(path) -> true | fail, message -- with missing parents;
 *      an existing directory is fine. */
static int l_mkdir(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	char buf[PATH_MAX];
	size_t len = strlen(path), i;
	struct stat st;

	if (len == 0 || len >= sizeof buf)
		return vk_pushfail(L, "bad directory name '%s'", path);
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return fail_errno(L, "cannot create directory", buf);
		buf[i] = path[i];
	}
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return vk_pushfail(L, "%s is not a directory", path);
	lua_pushboolean(L, 1);
	return 1;
}

/* lua: fs.private_dir(path) -> true | fail, message
 *      path made if missing (mode 0700, its parents too), then checked: a
 *      directory itself (not a link to one), owned by this user, that no
 *      one else may write to.  For what another local user must not be
 *      able to plant or replace (the locks). */
static int l_private_dir(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct stat st;

	lua_pushcfunction(L, l_mkdir);
	lua_pushvalue(L, 1);
	lua_call(L, 1, 2);
	if (lua_isnil(L, -2))
		return 2;
	lua_pop(L, 2);
	if (lstat(path, &st) != 0)
		return fail_errno(L, "cannot look at", path);
	if (!S_ISDIR(st.st_mode))
		return vk_pushfail(L, "%s is not a directory of its own (a link, or "
		                   "another file): refusing to use it", path);
	if (st.st_uid != geteuid())
		return vk_pushfail(L, "%s belongs to another user (uid %d): "
		                   "refusing to use it", path, (int)st.st_uid);
	if (st.st_mode & 022) {
		char mode[8];

		snprintf(mode, sizeof mode, "%03o", (unsigned)(st.st_mode & 0777));
		return vk_pushfail(L, "%s may be written by others (mode %s): "
		                   "refusing to use it", path, mode);
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* lua: fs.list(dir) -> { names } (unsorted, without . and ..) |
 *      fail, message */
static int l_list(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	DIR *d = opendir(path);
	struct dirent *e;
	lua_Integer n = 0;

	if (d == NULL)
		return fail_errno(L, "cannot list", path);
	lua_newtable(L);
	while ((errno = 0, e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		lua_pushstring(L, e->d_name);
		lua_rawseti(L, -2, ++n);
	}
	if (errno != 0) {
		int saved = errno;
		closedir(d);
		errno = saved;
		return fail_errno(L, "cannot list", path);
	}
	closedir(d);
	return 1;
}

static const char *type_name(mode_t m)
{
	if (S_ISREG(m))
		return "file";
	if (S_ISDIR(m))
		return "directory";
	if (S_ISLNK(m))
		return "link";
	return "other";
}

/* lua: fs.stat(path [, nofollow]) -> { type, size, mtime, mode } |
 *      fail, message */
static int l_stat(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct stat st;

	if ((lua_toboolean(L, 2) ? lstat(path, &st) : stat(path, &st)) != 0)
		return fail_errno(L, "cannot stat", path);
	lua_createtable(L, 0, 4);
	lua_pushstring(L, type_name(st.st_mode));
	lua_setfield(L, -2, "type");
	lua_pushinteger(L, (lua_Integer)st.st_size);
	lua_setfield(L, -2, "size");
	lua_pushinteger(L, (lua_Integer)st.st_mtime);
	lua_setfield(L, -2, "mtime");
	lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
	lua_setfield(L, -2, "mode");
	return 1;
}

/* lua: fs.remove(path) -> true | fail, message -- a file or an empty
 *      directory */
static int l_remove(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);

	if (remove(path) != 0)
		return fail_errno(L, "cannot remove", path);
	lua_pushboolean(L, 1);
	return 1;
}

/* lua: fs.syncdir(path) -> true | fail, message -- make a rename in the
 *      directory durable */
static int l_syncdir(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return fail_errno(L, "cannot open", path);
	if (fsync(fd) != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return fail_errno(L, "cannot sync", path);
	}
	close(fd);
	lua_pushboolean(L, 1);
	return 1;
}

/* lua: fs.realpath(path) -> absolute path | fail, message */
static int l_realpath(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	char *r = realpath(path, NULL);

	if (r == NULL)
		return fail_errno(L, "cannot resolve", path);
	lua_pushstring(L, r);
	free(r);
	return 1;
}

/* ---- locks: flock(2) on a file, held while the lock object is open ---- */

#define LOCK_MT "vakap.lock"

struct lock {
	int fd; /* -1 once released */
};

/* What the holder wrote in the lock file, for the message: "pid N on
 * HOST since TIME", or "" when it wrote nothing yet. */
static void holder_of(int fd, char *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/* The one release of a lock: the lock goes with the descriptor. */
static void lock_release(struct lock *lk)
{
	if (lk->fd >= 0)
		close(lk->fd);
	lk->fd = -1;
}

/* A lock that could not be taken whole is not kept: fail, message. */
static int lock_give_up(lua_State *L, struct lock *lk, const char *what,
                        const char *path)
{
	int e = errno;

	lock_release(lk);
	errno = e;
	return fail_errno(L, what, path);
}

/* lua: fs.lock(path [, wait_seconds=0 [, who]]) -> lock | fail, message
 *      An exclusive lock on path (created if missing), held until
 *      lock:release(), its collection, or the process's end (a holder that
 *      died holds nothing).  Waits up to wait_seconds for another holder;
 *      then fails naming it (what it wrote: `who`, e.g. "pid 12 on host
 *      since 2026-11-21T22:00:00Z"). */
static int l_lock(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	lua_Number wait = luaL_optnumber(L, 2, 0);
	const char *who = luaL_optstring(L, 3, "");
	struct timespec nap = {0, 100 * 1000 * 1000};
	double start = vk_clock();
	struct lock *lk;
	struct stat st;
	char holder[256];
	int r;

	lk = lua_newuserdatauv(L, sizeof *lk, 0);
	lk->fd = -1;
	luaL_setmetatable(L, LOCK_MT);
	lk->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lk->fd < 0)
		return fail_errno(L, "cannot open the lock", path);
	if (fstat(lk->fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		lock_release(lk);
		return vk_pushfail(L, "the lock %s is not a file of this user's: "
		                   "refusing it", path);
	}
	while (flock(lk->fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			return lock_give_up(L, lk, "cannot lock", path);
		if (vk_interrupted || vk_clock() - start >= wait) {
			holder_of(lk->fd, holder, sizeof holder);
			lock_release(lk);
			return vk_pushfail(L, "%s is locked by another run%s%s%s",
			                   path, holder[0] ? " (" : "", holder,
			                   holder[0] ? ")" : "");
		}
		nanosleep(&nap, NULL);
	}
	r = ftruncate(lk->fd, 0);
	if (r != 0 || pwrite(lk->fd, who, strlen(who), 0) < 0)
		return lock_give_up(L, lk, "cannot write the lock", path);
	return 1;
}

static int l_lock_release(lua_State *L)
{
	lock_release(luaL_checkudata(L, 1, LOCK_MT));
	return 0;
}

static const luaL_Reg lock_meta[] = {
	{"__gc", l_lock_release}, {"__close", l_lock_release}, {NULL, NULL},
};

static const luaL_Reg lock_methods[] = {
	{"release", l_lock_release}, {NULL, NULL},
};

static const luaL_Reg funcs[] = {
	{"source", l_source}, {"write", l_write},     {"rename", l_rename},
	{"mkdir", l_mkdir},   {"list", l_list},       {"stat", l_stat},
	{"remove", l_remove}, {"syncdir", l_syncdir}, {"realpath", l_realpath},
	{"lock", l_lock},     {"private_dir", l_private_dir},
	{NULL, NULL},
};

int luaopen_vakap_fs(lua_State *L)
{
	vk_class(L, LOCK_MT, lock_meta, lock_methods);
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
