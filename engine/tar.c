/*
 * vakap.tar: a directory tree as a POSIX pax tar stream, and back.
 *
 * tar.create is a source: libarchive's read_disk walks the tree and its
 * pax writer appends the archive to a small buffer; each read advances the
 * walk (the next header, or the next chunk of the current file) only until
 * the caller's buffer is full, so memory does not grow with the files.
 * tar.extract and tar.verify are sinks: libarchive's reader pulls the tar
 * stream through vk_read, so an upstream failure ends them with its message.
 *
 * Names: libarchive converts pathnames between the charset of the current
 * LC_CTYPE (nl_langinfo(CODESET), looked up once per archive object) and
 * the UTF-8 that pax headers hold.  main() runs the engine with a UTF-8
 * LC_CTYPE so that non-ASCII names round trip; under "C" they could not be
 * converted and would be stored as raw bytes with hdrcharset=BINARY (which
 * GNU tar warns about), counted in the source's `warnings`.
 */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <lauxlib.h>
#include <lua.h>

#include "engine.h"
#include "stream.h"

#define TAR_READ (64 * 1024)    /* bytes of a file copied per step */
#define TAR_JOB_MT "vakap.tar.job"

/* Raise unless the table at idx (if any) has only the keys in allowed. */
static void checkoptions(lua_State *L, int idx, const char *const allowed[])
{
	if (lua_isnoneornil(L, idx))
		return;
	luaL_checktype(L, idx, LUA_TTABLE);
	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		const char *key = NULL;
		int i = 0;

		if (lua_type(L, -2) == LUA_TSTRING)
			for (key = lua_tostring(L, -2); allowed[i]; i++)
				if (strcmp(key, allowed[i]) == 0)
					break;
		if (key == NULL || allowed[i] == NULL)
			luaL_argerror(L, idx, lua_pushfstring(L,
			              "unknown option '%s'",
			              key ? key : luaL_typename(L, -2)));
		lua_pop(L, 1);
	}
}

/* ======================================================================
 * tar.create: the source
 * ====================================================================== */

struct pattern {
	char *glob;
	int anchored; /* matched against the whole relative path */
	int dir_only; /* written with a trailing slash: directories only */
};

struct tar_source {
	struct vk_stream s;
	struct archive *disk;  /* the walk */
	struct archive *out;   /* the pax writer */
	struct archive_entry *entry;
	struct archive_entry_linkresolver *links;
	struct pattern *patterns;
	size_t npatterns;
	char *root;            /* the directory, as the walk names it */
	size_t rootlen;
	int started;           /* the walk returned the root */
	int done;              /* the end of the archive is in buf */
	int closing;           /* released: the writer's output is unwanted */
	int fd;                /* the file being copied, or -1 */
	int64_t size, left;    /* its size, and the bytes still to copy */
	struct timespec ctime; /* its change time when opened */
	const char *path;      /* its path on disk, owned by entry */
	char *chunk;           /* TAR_READ bytes read from fd */
	char *name;            /* the relative name of the entry */
	size_t namecap;
	char *buf;             /* archive bytes not yet read: [pos, len) */
	size_t pos, len, cap;
	lua_Integer entries, files, dirs, excluded, skipped, warnings;
};

/* The pax writer's output: append to buf, which grows to the largest
 * step's output (a header, or one chunk plus a 10 KiB block). */
static la_ssize_t source_write(struct archive *a, void *ctx, const void *p,
                               size_t n)
{
	struct tar_source *t = ctx;

	if (t->closing) {
		archive_set_error(a, ECANCELED, "stream closed");
		return -1;
	}
	if (t->pos > 0) {
		memmove(t->buf, t->buf + t->pos, t->len - t->pos);
		t->len -= t->pos;
		t->pos = 0;
	}
	if (n > t->cap - t->len) {
		size_t cap = t->cap ? t->cap : 16 * 1024;
		char *nb;

		while (n > cap - t->len)
			cap *= 2;
		nb = realloc(t->buf, cap);
		if (nb == NULL) {
			archive_set_error(a, ENOMEM, "out of memory");
			return -1;
		}
		t->buf = nb;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, p, n);
	t->len += n;
	return (la_ssize_t)n;
}

/* "tar: " and libarchive's message for a, naming path unless it does. */
static const char *archive_message(struct archive *a, const char *path,
                                   char *buf, size_t len)
{
	const char *msg = archive_error_string(a);

	if (msg == NULL)
		msg = "libarchive failed";
	if (path == NULL || strstr(msg, path) != NULL)
		snprintf(buf, len, "tar: %s", msg);
	else
		snprintf(buf, len, "tar: %s: %s", path, msg);
	return buf;
}

/* Fail with libarchive's message for a, naming path unless it does. */
static int source_fail(struct tar_source *t, struct archive *a,
                       const char *path)
{
	char buf[sizeof t->s.err];

	return vk_fail(&t->s, "%s", archive_message(a, path, buf, sizeof buf));
}

static void close_file(struct tar_source *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->left = 0;
}

static int excluded(const struct tar_source *t, const char *rel, int isdir)
{
	const char *base = strrchr(rel, '/');
	size_t i;

	base = base ? base + 1 : rel;
	for (i = 0; i < t->npatterns; i++) {
		const struct pattern *p = &t->patterns[i];

		if (p->dir_only && !isdir)
			continue;
		if (p->anchored ? fnmatch(p->glob, rel, FNM_PATHNAME) == 0
		                : fnmatch(p->glob, base, 0) == 0)
			return 1;
	}
	return 0;
}

/* Set t->name to path relative to the root, a '/' after a directory. */
static int relname(struct tar_source *t, const char *path)
{
	const char *rel;
	size_t len;

	if (path == NULL || strncmp(path, t->root, t->rootlen) != 0)
		return vk_fail(&t->s, "tar: %s: not under %s",
		               path ? path : "(unnamed)", t->root);
	rel = path + t->rootlen;
	if (*rel == '/')
		rel++;
	len = strlen(rel);
	if (len + 2 > t->namecap) {
		char *nn = realloc(t->name, len + 2);

		if (nn == NULL)
			return vk_fail(&t->s, "tar: out of memory");
		t->name = nn;
		t->namecap = len + 2;
	}
	memcpy(t->name, rel, len + 1);
	return 0;
}

/* Open the regular file of e, checking it is still the one walked. */
static int open_file(struct tar_source *t, struct archive_entry *e)
{
	struct stat st;

	t->path = archive_entry_sourcepath(e);
	t->fd = open(t->path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (t->fd < 0)
		return vk_fail(&t->s, "tar: %s: %s", t->path, strerror(errno));
	if (fstat(t->fd, &st) != 0)
		return vk_fail(&t->s, "tar: %s: %s", t->path, strerror(errno));
	if (!S_ISREG(st.st_mode) || st.st_dev != archive_entry_dev(e) ||
	    (int64_t)st.st_ino != archive_entry_ino64(e))
		return vk_fail(&t->s, "tar: %s: replaced while being read",
		               t->path);
	archive_entry_set_size(e, st.st_size);
	t->size = t->left = st.st_size;
	t->ctime = st.st_ctim;
	return 0;
}

/* The root: remember how the walk names it, and go in. */
static int start(struct tar_source *t, struct archive_entry *e)
{
	const char *path = archive_entry_pathname(e);

	t->started = 1;
	if (archive_entry_filetype(e) != AE_IFDIR)
		return vk_fail(&t->s, "tar: %s: %s", t->root, strerror(ENOTDIR));
	if (path == NULL || strcmp(path, t->root) != 0)
		return vk_fail(&t->s, "tar: %s: walk started at %s", t->root,
		               path ? path : "(unnamed)");
	t->rootlen = strlen(t->root);
	if (archive_read_disk_descend(t->disk) != ARCHIVE_OK)
		return source_fail(t, t->disk, t->root);
	return 0;
}

/* Files the walk listed were gone when it came to them: the archive would
 * not hold the tree as it was, so it is not finished.  libarchive names
 * them all, "A B C: File removed before we read it": the first ones fit. */
static int removed(struct tar_source *t)
{
	const char *msg = archive_error_string(t->disk);

	return vk_fail(&t->s, "tar: files were removed while the tree was "
	               "read, so the archive would be incomplete: %s",
	               msg ? msg : "(no names)");
}

/* Write the header of the next entry of the walk, or the archive's end. */
static int next_entry(struct tar_source *t)
{
	struct archive_entry *e = t->entry, *spare = NULL;
	const char *path;
	int r, type, isdir;

	r = archive_read_next_header2(t->disk, e);
	if (r == ARCHIVE_EOF) {
		if (archive_write_close(t->out) != ARCHIVE_OK)
			return source_fail(t, t->out, NULL);
		t->done = 1;
		return 0;
	}
	if (r < ARCHIVE_WARN)
		return source_fail(t, t->disk, NULL);
	if (r == ARCHIVE_WARN && archive_errno(t->disk) == ENOENT)
		return removed(t);
	if (r == ARCHIVE_WARN)
		t->warnings++; /* metadata (xattrs, ACLs) partly unreadable */
	if (!t->started)
		return start(t, e);
	path = archive_entry_sourcepath(e);
	type = archive_entry_filetype(e);
	isdir = type == AE_IFDIR;
	if (relname(t, archive_entry_pathname(e)) != 0)
		return -1;
	if (excluded(t, t->name, isdir)) {
		t->excluded++;
		return 0; /* and not descended into */
	}
	if (type == AE_IFSOCK) {
		t->skipped++; /* tar cannot store sockets; GNU tar skips them */
		return 0;
	}
	if (isdir && archive_read_disk_can_descend(t->disk) &&
	    archive_read_disk_descend(t->disk) != ARCHIVE_OK)
		return source_fail(t, t->disk, path);
	if (isdir)
		strcat(t->name, "/");
	if (type == AE_IFREG && open_file(t, e) != 0)
		return -1;
	archive_entry_copy_pathname(e, t->name);
	archive_entry_linkify(t->links, &e, &spare);
	if (e == NULL)
		return 0;
	if (archive_entry_hardlink(e) != NULL || t->left == 0)
		close_file(t); /* no data follows the header */
	r = archive_write_header(t->out, e);
	if (r < ARCHIVE_WARN)
		return source_fail(t, t->out, path);
	if (r == ARCHIVE_WARN)
		t->warnings++; /* e.g. a name not valid in the charset */
	t->entries++;
	t->files += type == AE_IFREG;
	t->dirs += isdir;
	return 0;
}

/* Copy the next chunk of the current file; check its size at the end. */
static int copy_chunk(struct tar_source *t)
{
	size_t want = t->left < TAR_READ ? (size_t)t->left : TAR_READ;
	ssize_t r = read(t->fd, t->chunk, want);
	struct stat st;

	if (r < 0 && errno == EINTR)
		return 0;
	if (r < 0)
		return vk_fail(&t->s, "tar: %s: %s", t->path, strerror(errno));
	if (r == 0)
		return vk_fail(&t->s, "tar: %s: file shrank while being read "
		               "(%jd of %jd bytes)", t->path,
		               (intmax_t)(t->size - t->left), (intmax_t)t->size);
	if (archive_write_data(t->out, t->chunk, (size_t)r) != r)
		return source_fail(t, t->out, t->path);
	t->left -= r;
	if (t->left > 0)
		return 0;
	if (fstat(t->fd, &st) != 0)
		return vk_fail(&t->s, "tar: %s: %s", t->path, strerror(errno));
	if (st.st_size != t->size)
		return vk_fail(&t->s, "tar: %s: file changed size while being "
		               "read (%jd, now %jd bytes)", t->path,
		               (intmax_t)t->size, (intmax_t)st.st_size);
	if (st.st_nlink == 0)
		return vk_fail(&t->s, "tar: %s: file removed while being read",
		               t->path);
	if (st.st_ctim.tv_sec != t->ctime.tv_sec ||
	    st.st_ctim.tv_nsec != t->ctime.tv_nsec)
		return vk_fail(&t->s, "tar: %s: file changed while being read",
		               t->path);
	close_file(t);
	return 0;
}

static ssize_t source_read(struct vk_stream *s, void *buf, size_t n)
{
	struct tar_source *t = (struct tar_source *)s;
	size_t got = 0;

	for (;;) {
		size_t k = t->len - t->pos;

		if (k > n - got)
			k = n - got;
		if (k > 0)
			memcpy((char *)buf + got, t->buf + t->pos, k);
		t->pos += k;
		got += k;
		if (got == n || (t->done && t->pos == t->len))
			return (ssize_t)got;
		if ((t->fd >= 0 ? copy_chunk(t) : next_entry(t)) != 0)
			return -1;
	}
}

static void source_release(struct vk_stream *s)
{
	struct tar_source *t = (struct tar_source *)s;
	size_t i;

	close_file(t);
	if (t->out != NULL) {
		/* Close before freeing: free skips the close of a failed
		 * writer, which leaks its buffers.  Nothing more is wanted:
		 * source_write refuses it, which also stops the padding of
		 * a file cut short. */
		t->closing = 1;
		archive_write_close(t->out);
		archive_write_free(t->out);
	}
	if (t->disk != NULL)
		archive_read_free(t->disk);
	if (t->entry != NULL)
		archive_entry_free(t->entry);
	if (t->links != NULL)
		archive_entry_linkresolver_free(t->links);
	for (i = 0; i < t->npatterns; i++)
		free(t->patterns[i].glob);
	free(t->patterns);
	free(t->root);
	free(t->chunk);
	free(t->name);
	free(t->buf);
	t->out = t->disk = NULL;
	t->entry = NULL;
	t->links = NULL;
	t->patterns = NULL;
	t->npatterns = 0;
	t->root = t->chunk = t->name = t->buf = NULL;
}

static void source_info(struct vk_stream *s, lua_State *L)
{
	struct tar_source *t = (struct tar_source *)s;

	lua_pushinteger(L, t->entries);
	lua_setfield(L, -2, "entries");
	lua_pushinteger(L, t->files);
	lua_setfield(L, -2, "files");
	lua_pushinteger(L, t->dirs);
	lua_setfield(L, -2, "dirs");
	lua_pushinteger(L, t->excluded);
	lua_setfield(L, -2, "excluded");
	lua_pushinteger(L, t->skipped);
	lua_setfield(L, -2, "skipped");
	lua_pushinteger(L, t->warnings);
	lua_setfield(L, -2, "warnings");
}

static const struct vk_stream_ops source_ops = {
	.name = "tar",
	.read = source_read,
	.release = source_release,
	.info = source_info,
};

static void *checkalloc(lua_State *L, void *p)
{
	if (p == NULL)
		luaL_error(L, "not enough memory");
	return p;
}

/* The exclude patterns of the options at idx (the value on top). */
static void getpatterns(lua_State *L, int idx, struct tar_source *t)
{
	lua_Integer i, n;

	if (lua_isnil(L, -1))
		return;
	luaL_argexpected(L, lua_istable(L, -1), idx, "exclude as a table");
	n = luaL_len(L, -1);
	t->patterns = checkalloc(L, calloc((size_t)n + 1, sizeof *t->patterns));
	for (i = 1; i <= n; i++) {
		struct pattern *p = &t->patterns[t->npatterns];
		const char *glob;
		size_t len;

		if (lua_geti(L, -1, i) != LUA_TSTRING)
			luaL_argerror(L, idx, lua_pushfstring(L,
			              "exclude[%d] is not a string", (int)i));
		glob = lua_tolstring(L, -1, &len);
		while (len > 0 && glob[len - 1] == '/') {
			p->dir_only = 1;
			len--;
		}
		while (len > 0 && glob[0] == '/') {
			p->anchored = 1;
			glob++;
			len--;
		}
		if (len == 0)
			luaL_argerror(L, idx, lua_pushfstring(L,
			              "exclude[%d] is an empty pattern", (int)i));
		p->glob = checkalloc(L, malloc(len + 1));
		memcpy(p->glob, glob, len);
		p->glob[len] = '\0';
		p->anchored |= strchr(p->glob, '/') != NULL;
		t->npatterns++;
		lua_pop(L, 1);
	}
}

/* Acquire the walk and the writer; 0, or -1 after failing the stream. */
static int source_open(lua_State *L, struct tar_source *t, int follow)
{
	t->disk = checkalloc(L, archive_read_disk_new());
	t->out = checkalloc(L, archive_write_new());
	t->entry = checkalloc(L, archive_entry_new());
	t->links = checkalloc(L, archive_entry_linkresolver_new());
	t->chunk = checkalloc(L, malloc(TAR_READ));
	archive_entry_linkresolver_set_strategy(t->links,
	                                        ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	/* Files are read by copy_chunk, which checks their size, not by
	 * read_disk: holes are stored as zeros. */
	if (archive_read_disk_set_behavior(t->disk, ARCHIVE_READDISK_NO_SPARSE) ||
	    archive_read_disk_set_standard_lookup(t->disk) ||
	    (follow ? archive_read_disk_set_symlink_logical(t->disk)
	            : archive_read_disk_set_symlink_hybrid(t->disk)) ||
	    archive_read_disk_open(t->disk, t->root))
		return source_fail(t, t->disk, t->root);
	/* SCHILY.xattr only: GNU tar warns about LIBARCHIVE.xattr. */
	if (archive_write_set_format_pax_restricted(t->out) ||
	    archive_write_set_format_option(t->out, "pax", "xattrheader",
	                                    "SCHILY") ||
	    archive_write_add_filter_none(t->out) ||
	    archive_write_open2(t->out, t, NULL, source_write, NULL, NULL))
		return source_fail(t, t->out, NULL);
	return 0;
}

/* lua: tar.create(path [, { exclude = {patterns...},
 *                           follow_symlinks = true }]) -> stream */
static int l_create(lua_State *L)
{
	static const char *const options[] = {"exclude", "follow_symlinks",
	                                      NULL};
	const char *path = luaL_checkstring(L, 1);
	size_t len = strlen(path);
	struct tar_source *t;
	struct stat st;
	int follow = 1;

	checkoptions(L, 2, options);
	t = (struct tar_source *)vk_stream_push(L, sizeof *t, &source_ops);
	t->fd = -1;
	if (!lua_isnoneornil(L, 2)) {
		lua_getfield(L, 2, "follow_symlinks");
		luaL_argexpected(L, lua_isnil(L, -1) || lua_isboolean(L, -1), 2,
		                 "follow_symlinks as a boolean");
		follow = lua_isnil(L, -1) || lua_toboolean(L, -1);
		lua_getfield(L, 2, "exclude");
		getpatterns(L, 2, t);
		lua_pop(L, 2);
	}
	while (len > 1 && path[len - 1] == '/')
		len--; /* as the walk names it */
	t->root = checkalloc(L, malloc(len + 1));
	memcpy(t->root, path, len);
	t->root[len] = '\0';
	vk_open(&t->s);
	if (stat(t->root, &st) != 0)
		vk_fail(&t->s, "tar: %s: %s", t->root, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		vk_fail(&t->s, "tar: %s: %s", t->root, strerror(ENOTDIR));
	else if (source_open(L, t, follow) == 0)
		return 1;
	/* a source that cannot start is not returned: nil, why */
	vk_close(&t->s);
	return vk_pushfail(L, "%s", t->s.err);
}

/* ======================================================================
 * tar.extract and tar.verify: the sinks
 * ====================================================================== */

/* What a sink holds while libarchive reads the stream: a userdata, so
 * that its resources are freed even if something raises. */
struct tar_job {
	struct vk_stream *s;  /* the tar stream */
	struct archive *in;   /* its reader */
	struct archive *disk; /* extract: the tree written */
	char *buf;            /* VK_CHUNK bytes read from s */
	char *base;           /* extract: the target directory, resolved */
	char *path;           /* extract: base/name of an entry */
	size_t pathcap;
	uint64_t total;       /* bytes read from s */
	lua_State *L;
	int progress;         /* stack index of the progress function, or 0 */
	double last;          /* when progress was last called */
	int eof;              /* s has ended */
	int discard;          /* extract: remove base if the job fails */
	int failed;           /* err says why */
	char err[512];
};

static int job_fail(struct tar_job *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int job_fail(struct tar_job *j, const char *fmt, ...)
{
	va_list ap;

	if (j->failed)
		return -1; /* the first reason stands */
	va_start(ap, fmt);
	vsnprintf(j->err, sizeof j->err, fmt, ap);
	va_end(ap);
	j->failed = 1;
	return -1;
}

/* Fail with libarchive's message for a, naming name unless it does;
 * keeps the reason a callback gave (the stream's own error). */
static int job_fail_archive(struct tar_job *j, struct archive *a,
                            const char *name)
{
	char buf[sizeof j->err];

	return job_fail(j, "%s", archive_message(a, name, buf, sizeof buf));
}

/* Call progress(bytes) if it is time, or at the end (force). */
static int job_progress(struct tar_job *j, int force)
{
	lua_State *L = j->L;

	if (j->progress == 0 || (!force && vk_clock() - j->last < 0.25))
		return 0;
	j->last = vk_clock();
	lua_pushvalue(L, j->progress);
	lua_pushinteger(L, (lua_Integer)j->total);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
		const char *msg = lua_tostring(L, -1);

		job_fail(j, "progress: %s", msg ? msg : "(error object is not a "
		         "string)");
		lua_pop(L, 1);
		return -1;
	}
	return 0;
}

/* The next bytes of the stream into j->buf: > 0, 0 at its end, -1. */
static ssize_t job_pull(struct tar_job *j)
{
	ssize_t r;

	if (j->eof)
		return 0;
	r = vk_read(j->s, j->buf, VK_CHUNK);
	if (r < 0)
		return job_fail(j, "%s", j->s->err);
	j->total += (uint64_t)r;
	j->eof = r == 0;
	if (job_progress(j, j->eof) != 0)
		return -1;
	return r;
}

static la_ssize_t job_read(struct archive *a, void *ctx, const void **p)
{
	struct tar_job *j = ctx;
	ssize_t r = job_pull(j);

	if (r < 0) {
		archive_set_error(a, EIO, "%s", j->err);
		return -1;
	}
	*p = j->buf;
	return r;
}

/* After the reader's end: check it met the end-of-archive blocks (it
 * also ends quietly at a header boundary), then drain the stream so
 * that a failure after the archive still counts. */
static int job_end(struct tar_job *j)
{
	ssize_t r;

	if (archive_filter_bytes(j->in, 0) <= archive_read_header_position(j->in))
		return job_fail(j, "tar: truncated archive: no end-of-archive "
		                "marker after %jd bytes",
		                (intmax_t)archive_read_header_position(j->in));
	while ((r = job_pull(j)) > 0)
		;
	return r < 0 ? -1 : 0;
}

static int open_dir(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
	(void)ftw;
	if (flag == FTW_D && (st->st_mode & 0700) != 0700)
		chmod(path, (st->st_mode & 07777) | 0700);
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

/* Free what j holds; a failed extraction into a directory it made
 * removes that directory again. */
static void job_release(struct tar_job *j)
{
	/* Closing applies the directories' modes and times even after a
	 * failure: archive_write_fail() would skip that, but leak. */
	if (j->disk != NULL)
		archive_write_free(j->disk);
	if (j->in != NULL)
		archive_read_free(j->in);
	if (j->failed && j->discard && j->base != NULL) {
		nftw(j->base, open_dir, 16, FTW_PHYS);
		nftw(j->base, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	free(j->buf);
	free(j->base);
	free(j->path);
	j->disk = j->in = NULL;
	j->buf = j->base = j->path = NULL;
}

static int job_gc(lua_State *L)
{
	job_release(luaL_checkudata(L, 1, TAR_JOB_MT));
	return 0;
}

static const luaL_Reg job_meta[] = {{"__gc", job_gc}, {NULL, NULL}};
static const luaL_Reg job_methods[] = {{NULL, NULL}};

/* Push a job reading s; progress is a stack index, or 0. */
static struct tar_job *job_push(lua_State *L, struct vk_stream *s,
                                int progress)
{
	struct tar_job *j = lua_newuserdatauv(L, sizeof *j, 0);

	memset(j, 0, sizeof *j);
	vk_class(L, TAR_JOB_MT, job_meta, job_methods);
	lua_setmetatable(L, -2);
	j->s = s;
	j->L = L;
	j->progress = progress;
	j->last = vk_clock();
	j->buf = checkalloc(L, malloc(VK_CHUNK));
	j->in = checkalloc(L, archive_read_new());
	if (archive_read_support_format_tar(j->in) ||
	    archive_read_open(j->in, j, NULL, job_read, NULL))
		job_fail_archive(j, j->in, NULL);
	return j;
}

/* Set j->path to base/name, refusing absolute names. */
static int rebase(struct tar_job *j, const char *name)
{
	size_t blen = strlen(j->base), nlen;

	if (name == NULL || name[0] == '\0')
		return job_fail(j, "tar: entry without a name");
	if (name[0] == '/')
		return job_fail(j, "tar: %s: absolute path in archive", name);
	nlen = strlen(name);
	if (blen + nlen + 2 > j->pathcap) {
		char *np = realloc(j->path, blen + nlen + 2);

		if (np == NULL)
			return job_fail(j, "tar: out of memory");
		j->path = np;
		j->pathcap = blen + nlen + 2;
	}
	memcpy(j->path, j->base, blen);
	j->path[blen] = '/';
	memcpy(j->path + blen + 1, name, nlen + 1);
	return 0;
}

static int extract_entry(struct tar_job *j, struct archive_entry *e)
{
	const char *name = archive_entry_pathname(e);
	const void *p;
	size_t n;
	la_int64_t off;
	int r;

	if (rebase(j, name) != 0)
		return -1;
	archive_entry_copy_pathname(e, j->path);
	name = archive_entry_pathname(e) + strlen(j->base) + 1;
	if (archive_entry_hardlink(e) != NULL) {
		if (rebase(j, archive_entry_hardlink(e)) != 0)
			return -1;
		archive_entry_copy_hardlink(e, j->path);
	}
	if (archive_write_header(j->disk, e) != ARCHIVE_OK)
		return job_fail_archive(j, j->disk, name);
	while ((r = archive_read_data_block(j->in, &p, &n, &off)) ==
	       ARCHIVE_OK)
		if (archive_write_data_block(j->disk, p, n, off) != ARCHIVE_OK)
			return job_fail_archive(j, j->disk, name);
	if (r != ARCHIVE_EOF)
		return job_fail_archive(j, j->in, name);
	if (archive_write_finish_entry(j->disk) != ARCHIVE_OK)
		return job_fail_archive(j, j->disk, name);
	return 0;
}

static int extract_all(struct tar_job *j)
{
	struct archive_entry *e;
	int r;

	if (j->failed)
		return -1;
	while ((r = archive_read_next_header(j->in, &e)) != ARCHIVE_EOF) {
		if (r < ARCHIVE_WARN)
			return job_fail_archive(j, j->in, NULL);
		if (extract_entry(j, e) != 0)
			return -1;
	}
	if (job_end(j) != 0)
		return -1;
	if (archive_write_close(j->disk) != ARCHIVE_OK)
		return job_fail_archive(j, j->disk, NULL); /* dir fixups */
	return 0;
}

/* mkdir -p; 1 if it made dir itself, 0 if it was there, -1. */
static int makedirs(struct tar_job *j, const char *dir)
{
	char *p, *copy;
	struct stat st;

	if (stat(dir, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		return job_fail(j, "tar: %s: %s", dir, strerror(ENOTDIR));
	}
	if (errno != ENOENT)
		return job_fail(j, "tar: %s: %s", dir, strerror(errno));
	copy = strdup(dir);
	if (copy == NULL)
		return job_fail(j, "tar: out of memory");
	for (p = strchr(copy + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
			job_fail(j, "tar: %s: %s", copy, strerror(errno));
			free(copy);
			return -1;
		}
		*p = '/';
	}
	free(copy);
	if (mkdir(dir, 0700) == 0)
		return 1;
	if (errno == EEXIST)
		return 0;
	return job_fail(j, "tar: %s: %s", dir, strerror(errno));
}

/* lua: tar.extract(stream, dir [, { progress = fn }]) -> true | fail, msg
 * A dir that did not exist is removed again if the extraction fails. */
static int l_extract(lua_State *L)
{
	static const char *const options[] = {"progress", NULL};
	struct vk_stream *s = vk_stream_check(L, 1);
	const char *dir = luaL_checkstring(L, 2);
	struct tar_job *j;
	int created, rc = -1;

	checkoptions(L, 3, options);
	lua_settop(L, 3);
	if (lua_istable(L, 3))
		lua_getfield(L, 3, "progress");
	else
		lua_pushnil(L);
	luaL_argexpected(L, lua_isnil(L, 4) || lua_isfunction(L, 4), 3,
	                 "progress as a function");
	j = job_push(L, s, lua_isnil(L, 4) ? 0 : 4);
	created = j->failed ? -1 : makedirs(j, dir); /* not for a bad stream */
	if (created >= 0) {
		j->base = realpath(dir, NULL);
		if (j->base == NULL)
			job_fail(j, "tar: %s: %s", dir, strerror(errno));
	}
	/* Entries are written to base/name, without a chdir: the paths
	 * libarchive sees are absolute, so rebase() refuses absolute names
	 * in place of SECURE_NOABSOLUTEPATHS, and base is resolved so that
	 * SECURE_SYMLINKS only judges the archive's own components. */
	if (j->base != NULL) {
		j->disk = checkalloc(L, archive_write_disk_new());
		if (archive_write_disk_set_options(j->disk,
		        ARCHIVE_EXTRACT_SECURE_NODOTDOT |
		        ARCHIVE_EXTRACT_SECURE_SYMLINKS |
		        ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM) != ARCHIVE_OK)
			job_fail_archive(j, j->disk, NULL);
		rc = extract_all(j);
	}
	j->discard = created == 1;
	job_release(j);
	if (rc != 0)
		return vk_pushfail(L, "%s", j->err);
	lua_pushboolean(L, 1);
	return 1;
}

static int verify_all(struct tar_job *j, lua_Integer *entries)
{
	struct archive_entry *e;
	const void *p;
	size_t n;
	la_int64_t off;
	int r;

	if (j->failed)
		return -1;
	while ((r = archive_read_next_header(j->in, &e)) != ARCHIVE_EOF) {
		if (r < ARCHIVE_WARN)
			return job_fail_archive(j, j->in, NULL);
		(*entries)++;
		while ((r = archive_read_data_block(j->in, &p, &n, &off)) ==
		       ARCHIVE_OK)
			;
		if (r != ARCHIVE_EOF)
			return job_fail_archive(j, j->in,
			                        archive_entry_pathname(e));
	}
	return job_end(j);
}

/* lua: tar.verify(stream) -> { entries = n, bytes = n } | fail, message
 * Every entry's data is read through; bytes counts the tar stream. */
static int l_verify(lua_State *L)
{
	struct vk_stream *s = vk_stream_check(L, 1);
	struct tar_job *j = job_push(L, s, 0);
	lua_Integer entries = 0;
	int rc = verify_all(j, &entries);

	job_release(j);
	if (rc != 0)
		return vk_pushfail(L, "%s", j->err);
	lua_createtable(L, 0, 2);
	lua_pushinteger(L, entries);
	lua_setfield(L, -2, "entries");
	lua_pushinteger(L, (lua_Integer)j->total);
	lua_setfield(L, -2, "bytes");
	return 1;
}

static const luaL_Reg funcs[] = {
	{"create", l_create},
	{"extract", l_extract},
	{"verify", l_verify},
	{NULL, NULL},
};

int luaopen_vakap_tar(lua_State *L)
{
	luaL_newlib(L, funcs);
	return 1;
}
