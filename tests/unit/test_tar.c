/*
 * vakap.tar: a tree made in a temporary directory goes through
 * tar.create and comes back through tar.extract byte for byte; GNU tar
 * lists the archive; excludes, symlinks, unreadable and changing files,
 * truncated, corrupt and hostile archives and failing upstreams.
 */
#define _XOPEN_SOURCE 700

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <langinfo.h>
#include <locale.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "harness.h"

#define BIG_SIZE (3 * 1024 * 1024 + 1234)

static char root[64];      /* the temporary directory of the group */
static char src[128];      /* the tree archived */
static char outside[128];  /* a directory src/linkdir points to */
static char dst[128];      /* where a test extracts */

/* ---- building the tree ---- */

static void path_at(char *buf, size_t len, const char *dir, const char *rel)
{
	int n = snprintf(buf, len, "%s/%s", dir, rel);

	assert_true(n > 0 && (size_t)n < len);
}

static void make_dir(const char *dir, const char *rel)
{
	char p[PATH_MAX];

	path_at(p, sizeof p, dir, rel);
	if (mkdir(p, 0755) != 0)
		fail_msg("mkdir %s: %s", p, strerror(errno));
}

static void write_file(const char *dir, const char *rel, const char *data)
{
	char p[PATH_MAX];
	FILE *f;

	path_at(p, sizeof p, dir, rel);
	f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, strlen(data), f), strlen(data));
	assert_int_equal(fclose(f), 0);
}

/* Bytes no run of zeros or repeats hides: a linear congruence. */
static void write_big(const char *dir, const char *rel, size_t size)
{
	char p[PATH_MAX];
	unsigned char buf[8192];
	uint32_t x = 12345;
	FILE *f;

	path_at(p, sizeof p, dir, rel);
	f = fopen(p, "wb");
	assert_non_null(f);
	while (size > 0) {
		size_t i, n = size < sizeof buf ? size : sizeof buf;

		for (i = 0; i < n; i++) {
			x = x * 1103515245u + 12345u;
			buf[i] = (unsigned char)(x >> 16);
		}
		assert_int_equal(fwrite(buf, 1, n, f), n);
		size -= n;
	}
	assert_int_equal(fclose(f), 0);
}

static void make_symlink(const char *dir, const char *rel, const char *target)
{
	char p[PATH_MAX];

	path_at(p, sizeof p, dir, rel);
	if (symlink(target, p) != 0)
		fail_msg("symlink %s: %s", p, strerror(errno));
}

static void make_socket(const char *dir, const char *rel)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	path_at(sa.sun_path, sizeof sa.sun_path, dir, rel);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	close(fd);
}

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

static void remove_tree(const char *path)
{
	nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* An mtime long past, so that one not restored shows. */
static int age_one(const char *path, const struct stat *st, int flag,
                   struct FTW *ftw)
{
	struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};

	(void)st, (void)ftw;
	if (flag != FTW_SL && utimensat(AT_FDCWD, path, ts, 0) != 0)
		fail_msg("utimensat %s: %s", path, strerror(errno));
	return 0;
}

/*
 * src/                        archived with EXCLUDES below
 *   café/naïve file.txt
 *   日本語.txt
 *   with space/a b.txt
 *   sub/deep/keep.txt
 *   sub/deep/x.log            excluded: *.log
 *   sub/cache/c2              excluded: cache/
 *   sub/loop -> ..            a loop: stored as a symlink
 *   sub/hard2                 a hard link to big.bin
 *   cache/c1                  excluded: cache/
 *   debug.log                 excluded: *.log
 *   other/cache               a file, not a directory: kept
 *                             (other is 0775, a b.txt 0664: not the umask's)
 *   var/tmp/a                 excluded: var/tmp/(star)
 *   var/tmpfile
 *   big.bin                   BIG_SIZE bytes
 *   empty
 *   lnfile -> empty
 *   linkdir -> ../outside     followed: a directory holding o1.txt
 *   fifo
 *   sock                      skipped: tar cannot store sockets
 */
static int group_setup(void **state)
{
	char p[PATH_MAX], q[PATH_MAX];

	(void)state;
	strcpy(root, "/tmp/vakap-tar-XXXXXX");
	assert_non_null(mkdtemp(root));
	assert_int_equal(chmod(root, 0755), 0); /* for the unprivileged child */
	path_at(src, sizeof src, root, "src");
	path_at(outside, sizeof outside, root, "outside");
	path_at(dst, sizeof dst, root, "dst");
	make_dir(root, "src");
	make_dir(root, "outside");
	write_file(outside, "o1.txt", "outside\n");
	make_dir(src, "café");
	write_file(src, "café/naïve file.txt", "bonjour\n");
	write_file(src, "日本語.txt", "konnichiwa\n");
	make_dir(src, "with space");
	write_file(src, "with space/a b.txt", "spaced out\n");
	make_dir(src, "sub");
	make_dir(src, "sub/deep");
	write_file(src, "sub/deep/keep.txt", "keep\n");
	write_file(src, "sub/deep/x.log", "log\n");
	make_dir(src, "sub/cache");
	write_file(src, "sub/cache/c2", "cached\n");
	make_symlink(src, "sub/loop", "..");
	make_dir(src, "cache");
	write_file(src, "cache/c1", "cached\n");
	write_file(src, "debug.log", "log\n");
	make_dir(src, "other");
	write_file(src, "other/cache", "not a dir\n");
	make_dir(src, "var");
	make_dir(src, "var/tmp");
	write_file(src, "var/tmp/a", "tmp\n");
	write_file(src, "var/tmpfile", "kept\n");
	write_big(src, "big.bin", BIG_SIZE);
	path_at(p, sizeof p, src, "big.bin");
	path_at(q, sizeof q, src, "sub/hard2");
	assert_int_equal(link(p, q), 0);
	write_file(src, "empty", "");
	make_symlink(src, "lnfile", "empty");
	make_symlink(src, "linkdir", "../outside");
	path_at(p, sizeof p, src, "fifo");
	assert_int_equal(mkfifo(p, 0644), 0);
	make_socket(src, "sock");
	/* modes the umask would change, had PERM not been asked for */
	path_at(p, sizeof p, src, "with space/a b.txt");
	assert_int_equal(chmod(p, 0664), 0);
	path_at(p, sizeof p, src, "other");
	assert_int_equal(chmod(p, 0775), 0);
	assert_int_equal(nftw(root, age_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	remove_tree(root);
	return 0;
}

/* ---- comparing trees ---- */

static void compare_files(const char *a, const char *b)
{
	static char ba[65536], bb[65536];
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	size_t na, nb;

	assert_non_null(fa);
	assert_non_null(fb);
	do {
		na = fread(ba, 1, sizeof ba, fa);
		nb = fread(bb, 1, sizeof bb, fb);
		if (na != nb || memcmp(ba, bb, na) != 0)
			fail_msg("%s and %s differ", a, b);
	} while (na > 0);
	fclose(fa);
	fclose(fb);
}

/* Names of src that EXCLUDES leaves out, or tar skips. */
static int left_out(const char *rel, const char *name, const struct stat *st)
{
	size_t len = strlen(name);

	if (len >= 4 && strcmp(name + len - 4, ".log") == 0)
		return 1;
	if (S_ISDIR(st->st_mode) && strcmp(name, "cache") == 0)
		return 1;
	if (strncmp(rel, "var/tmp/", 8) == 0)
		return 1;
	return S_ISSOCK(st->st_mode);
}

/*
 * Check that d holds exactly what s does as tar.create stores it
 * (symlinks followed or not): the same names less those left out, the
 * same types, modes, mtimes, contents and link targets.
 */
static void compare_trees(const char *s, const char *d, const char *rel,
                          int follow)
{
	char sp[PATH_MAX], dp[PATH_MAX], r[PATH_MAX];
	struct dirent *de;
	int ns = 0, nd = 0;
	DIR *dir;

	dir = opendir(d);
	assert_non_null(dir);
	while ((de = readdir(dir)) != NULL) {
		struct stat ss, ds;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		nd++;
		path_at(sp, sizeof sp, s, de->d_name);
		path_at(dp, sizeof dp, d, de->d_name);
		snprintf(r, sizeof r, "%s%s", rel, de->d_name);
		assert_int_equal(lstat(dp, &ds), 0);
		if (S_ISLNK(ds.st_mode)) {
			char ts[PATH_MAX], td[PATH_MAX];
			ssize_t ls = readlink(sp, ts, sizeof ts - 1);
			ssize_t ld = readlink(dp, td, sizeof td - 1);

			if (ls < 0 || ld != ls || memcmp(ts, td, (size_t)ls) != 0)
				fail_msg("%s: not the symlink %s", dp, sp);
			continue;
		}
		if ((follow ? stat(sp, &ss) : lstat(sp, &ss)) != 0)
			fail_msg("%s: extracted, but not in the source", dp);
		if (left_out(r, de->d_name, &ss))
			fail_msg("%s: should have been left out", r);
		if ((ss.st_mode & S_IFMT) != (ds.st_mode & S_IFMT) ||
		    (ss.st_mode & 07777) != (ds.st_mode & 07777))
			fail_msg("%s: mode %o, not %o", r, (unsigned)ds.st_mode,
			         (unsigned)ss.st_mode);
		if (ss.st_mtime != ds.st_mtime)
			fail_msg("%s: mtime %ld, not %ld", r, (long)ds.st_mtime,
			         (long)ss.st_mtime);
		if (S_ISREG(ds.st_mode)) {
			assert_int_equal(ss.st_size, ds.st_size);
			compare_files(sp, dp);
		} else if (S_ISDIR(ds.st_mode)) {
			strcat(r, "/");
			compare_trees(sp, dp, r, follow);
		}
	}
	closedir(dir);
	dir = opendir(s);
	assert_non_null(dir);
	while ((de = readdir(dir)) != NULL) {
		struct stat ss;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		path_at(sp, sizeof sp, s, de->d_name);
		snprintf(r, sizeof r, "%s%s", rel, de->d_name);
		assert_int_equal(lstat(sp, &ss), 0);
		if (follow)
			stat(sp, &ss); /* a dangling link stays a link */
		ns += !left_out(r, de->d_name, &ss);
	}
	closedir(dir);
	if (ns != nd)
		fail_msg("%s: %d entries extracted, %d expected", d, nd, ns);
}

static void stat_at(const char *dir, const char *rel, struct stat *st)
{
	char p[PATH_MAX];

	path_at(p, sizeof p, dir, rel);
	if (lstat(p, st) != 0)
		fail_msg("%s: %s", p, strerror(errno));
}

/* ---- listing with GNU tar ---- */

static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Check that GNU tar lists exactly the names in want (any order), and
 * says nothing else. */
static void check_listing(const char *tarfile, const char *const *want,
                          size_t n)
{
	char cmd[PATH_MAX + 128], line[PATH_MAX];
	const char *sorted[64];
	char *got[64];
	size_t i, ngot = 0;
	FILE *p;

	assert_true(n <= 64);
	snprintf(cmd, sizeof cmd,
	         "LC_ALL=C.UTF-8 tar --quoting-style=literal -tf '%s' 2>&1",
	         tarfile);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof line, p) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (ngot == 64)
			fail_msg("tar -tf: too many lines");
		got[ngot] = strdup(line);
		assert_non_null(got[ngot++]);
	}
	assert_int_equal(pclose(p), 0);
	memcpy(sorted, want, n * sizeof *want);
	qsort(sorted, n, sizeof *sorted, cmpstr);
	qsort(got, ngot, sizeof *got, cmpstr);
	for (i = 0; i < n || i < ngot; i++) {
		if (i >= n || i >= ngot || strcmp(sorted[i], got[i]) != 0)
			fail_msg("tar -tf: got '%s', expected '%s'",
			         i < ngot ? got[i] : "(end)",
			         i < n ? sorted[i] : "(end)");
	}
	for (i = 0; i < ngot; i++)
		free(got[i]);
}

static const char *const listed_follow[] = {
	"café/", "café/naïve file.txt", "日本語.txt", "with space/",
	"with space/a b.txt", "sub/", "sub/deep/", "sub/deep/keep.txt",
	"sub/loop", "sub/hard2", "other/", "other/cache", "var/", "var/tmp/",
	"var/tmpfile", "big.bin", "empty", "lnfile", "linkdir/",
	"linkdir/o1.txt", "fifo",
};
#define NLISTED (sizeof listed_follow / sizeof *listed_follow)

/* ---- the Lua side ---- */

/* A stream of the first n bytes of s, then an error. */
struct failing_source {
	struct vk_stream s;
	const char *data;
	size_t len, pos;
};

static ssize_t failing_read(struct vk_stream *s, void *buf, size_t n)
{
	struct failing_source *f = (struct failing_source *)s;

	if (f->pos == f->len)
		return vk_fail(s, "disk on fire after %zu bytes", f->len);
	if (n > f->len - f->pos)
		n = f->len - f->pos;
	memcpy(buf, f->data + f->pos, n);
	f->pos += n;
	return (ssize_t)n;
}

static const struct vk_stream_ops failing_ops = {
	.name = "failing",
	.read = failing_read,
};

/* lua: failing(s, n) -> stream */
static int l_failing(lua_State *L)
{
	size_t len;
	const char *data = luaL_checklstring(L, 1, &len);
	lua_Integer n = luaL_checkinteger(L, 2);
	struct failing_source *f;

	luaL_argcheck(L, n >= 0 && (size_t)n <= len, 2, "out of range");
	f = (struct failing_source *)vk_stream_push(L, sizeof *f, &failing_ops);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	f->data = data;
	f->len = (size_t)n;
	vk_open(&f->s);
	return 1;
}

static const char prelude[] =
	"tar = require 'vakap.tar'\n"
	"stream = require 'vakap.stream'\n"
	"EXCLUDES = { '*.log', 'cache/', 'var/tmp/*' }\n"
	"function save(s, path)\n"
	"  local f = assert(io.open(path, 'wb'))\n"
	"  while true do\n"
	"    local chunk, err = s:read(65536)\n"
	"    if not chunk then f:close(); return err == nil, err end\n"
	"    f:write(chunk)\n"
	"  end\n"
	"end\n"
	"function slurp(path)\n"
	"  local f = assert(io.open(path, 'rb'))\n"
	"  local data = f:read('a')\n"
	"  f:close()\n"
	"  return data\n"
	"end\n";

static lua_State *tar_state(void)
{
	lua_State *L = new_state();

	lua_pushstring(L, root);
	lua_setglobal(L, "ROOT");
	lua_pushstring(L, src);
	lua_setglobal(L, "SRC");
	lua_pushstring(L, outside);
	lua_setglobal(L, "OUTSIDE");
	lua_pushstring(L, dst);
	lua_setglobal(L, "DST");
	lua_register(L, "failing", l_failing);
	assert_int_equal(run_lua(L, prelude), 0);
	remove_tree(dst);
	return L;
}

static void check_lua_string_contains(lua_State *L, int idx, const char *want)
{
	const char *got = lua_tostring(L, idx);

	if (got == NULL || strstr(got, want) == NULL)
		fail_msg("'%s' does not contain '%s'", got ? got : "(nil)", want);
}

/* ---- the tests ---- */

/* create -> extract, streamed, gives the same tree back byte for byte. */
static void test_roundtrip(void **state)
{
	lua_State *L = tar_state();
	int top = lua_gettop(L);
	struct stat a, b;

	(void)state;
	assert_int_equal(run_lua(L,
		"local s <close> = tar.create(SRC, { exclude = EXCLUDES })\n"
		"local ok, err = tar.extract(s, DST, { progress = function(n)\n"
		"  LAST = n end })\n"
		"assert(ok, err)\n"
		"local i = s:info()\n"
		"assert(LAST == i.bytes, 'progress ' .. tostring(LAST))\n"
		"return i.entries, i.files, i.dirs, i.excluded, i.skipped,\n"
		"  i.warnings, i.state\n"), 7);
	assert_int_equal(lua_tointeger(L, -7), NLISTED);
	assert_int_equal(lua_tointeger(L, -6), 11);
	assert_int_equal(lua_tointeger(L, -5), 8);
	assert_int_equal(lua_tointeger(L, -4), 5);
	assert_int_equal(lua_tointeger(L, -3), 1);
	assert_int_equal(lua_tointeger(L, -2), 0);
	assert_string_equal(lua_tostring(L, -1), "ended");
	lua_pop(L, 7);
	compare_trees(src, dst, "", 1);
	/* followed: linkdir and lnfile are real; the loop stays a link */
	stat_at(dst, "linkdir", &a);
	assert_true(S_ISDIR(a.st_mode));
	stat_at(dst, "lnfile", &a);
	assert_true(S_ISREG(a.st_mode));
	stat_at(dst, "sub/loop", &a);
	assert_true(S_ISLNK(a.st_mode));
	/* the hard link is one */
	stat_at(dst, "big.bin", &a);
	stat_at(dst, "sub/hard2", &b);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_size, BIG_SIZE);
	remove_tree(dst);
	close_state(L, top);
}

/* GNU tar lists exactly the expected names, non-ASCII ones included. */
static void test_gnu_tar_lists_names(void **state)
{
	lua_State *L = tar_state();
	int top = lua_gettop(L);
	char tarfile[PATH_MAX];

	(void)state;
	path_at(tarfile, sizeof tarfile, root, "list.tar");
	assert_int_equal(run_lua(L,
		"local s <close> = tar.create(SRC, { exclude = EXCLUDES })\n"
		"assert(save(s, ROOT .. '/list.tar'))\n"), 0);
	check_listing(tarfile, listed_follow, NLISTED);
	unlink(tarfile);
	close_state(L, top);
}

/* follow_symlinks = false stores symlinks as symlinks. */
static void test_symlinks_kept(void **state)
{
	static const char *const listed[] = {
		"café/", "café/naïve file.txt", "日本語.txt", "with space/",
		"with space/a b.txt", "sub/", "sub/deep/", "sub/deep/keep.txt",
		"sub/loop", "sub/hard2", "other/", "other/cache", "var/",
		"var/tmp/", "var/tmpfile", "big.bin", "empty", "lnfile",
		"linkdir", "fifo",
	};
	lua_State *L = tar_state();
	int top = lua_gettop(L);
	char tarfile[PATH_MAX], target[PATH_MAX];
	struct stat st;
	ssize_t n;

	(void)state;
	path_at(tarfile, sizeof tarfile, root, "links.tar");
	assert_int_equal(run_lua(L,
		"local opts = { exclude = EXCLUDES, follow_symlinks = false }\n"
		"local s <close> = tar.create(SRC, opts)\n"
		"assert(save(s, ROOT .. '/links.tar'))\n"
		"local i = s:info()\n"
		"assert(i.files == 9 and i.dirs == 7, i.files .. ' ' .. i.dirs)\n"
		"local t <close> = tar.create(SRC, opts)\n"
		"assert(tar.extract(t, DST))\n"), 0);
	check_listing(tarfile, listed,
	              sizeof listed / sizeof *listed);
	compare_trees(src, dst, "", 0);
	stat_at(dst, "linkdir", &st);
	assert_true(S_ISLNK(st.st_mode));
	path_at(tarfile, sizeof tarfile, dst, "linkdir");
	n = readlink(tarfile, target, sizeof target - 1);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, "../outside");
	stat_at(dst, "lnfile", &st);
	assert_true(S_ISLNK(st.st_mode));
	path_at(tarfile, sizeof tarfile, root, "links.tar");
	unlink(tarfile);
	remove_tree(dst);
	close_state(L, top);
}

/* Patterns: no slash matches a name at any depth, a trailing slash only
 * directories, an inner or leading slash the path from the root. */
static void test_exclude_patterns(void **state)
{
	static const char *const listed[] = {
		"sub/", "sub/top.txt", "sub/build", "a/", "a/b/", "a/bc",
		"keep/", "keep/x.txt",
	};
	lua_State *L = tar_state();
	int top = lua_gettop(L);
	char dir[PATH_MAX], tarfile[PATH_MAX];

	(void)state;
	path_at(dir, sizeof dir, root, "pat");
	path_at(tarfile, sizeof tarfile, root, "pat.tar");
	make_dir(root, "pat");
	write_file(dir, "top.txt", "");
	make_dir(dir, "sub");
	write_file(dir, "sub/top.txt", "");
	write_file(dir, "sub/build", "a file");
	write_file(dir, "x.tmp", "");
	make_dir(dir, "build");
	write_file(dir, "build/z", "");
	make_dir(dir, "a");
	make_dir(dir, "a/b");
	write_file(dir, "a/b/c", "");
	make_dir(dir, "a/b/d");
	write_file(dir, "a/b/d/e", "");
	write_file(dir, "a/bc", "");
	make_dir(dir, "keep");
	write_file(dir, "keep/x.txt", "");
	write_file(dir, "keep/y.tmp", "");
	lua_pushstring(L, dir);
	lua_setglobal(L, "PAT");
	assert_int_equal(run_lua(L,
		"local opts = { exclude = { '/top.txt', '*.tmp', 'build/',\n"
		"                           'a/b/*' } }\n"
		"local s <close> = tar.create(PAT .. '//', opts)\n"
		"assert(save(s, ROOT .. '/pat.tar'))\n"
		"assert(s:info().excluded == 6, s:info().excluded)\n"), 0);
	check_listing(tarfile, listed,
	              sizeof listed / sizeof *listed);
	unlink(tarfile);
	remove_tree(dir);
	close_state(L, top);
}

/* Reads of any size give the same bytes: the source buffers right. */
static void test_small_reads(void **state)
{
	lua_State *L = tar_state();
	int top = lua_gettop(L);

	(void)state;
	assert_int_equal(run_lua(L,
		"local opts = { exclude = { 'big.bin', 'hard2' } }\n"
		"local a <close> = tar.create(SRC, opts)\n"
		"local whole = assert(a:readall())\n"
		"local b <close> = tar.create(SRC, opts)\n"
		"local parts = {}\n"
		"for chunk in function() return b:read(7) end do\n"
		"  parts[#parts + 1] = chunk\n"
		"end\n"
		"assert(b:info().state == 'ended')\n"
		"assert(#whole % 10240 == 0, #whole)\n"
		"assert(table.concat(parts) == whole, 'small reads differ')\n"),
		0);
	close_state(L, top);
}

/* A missing directory, or a file given as one: the stream fails, naming
 * it, and a sink reading it says the same. */
static void test_not_a_directory(void **state)
{
	lua_State *L = tar_state();
	int top = lua_gettop(L);

	(void)state;
	assert_int_equal(run_lua(L,
		"local s, err = tar.create(ROOT .. '/missing')\n"
		"assert(io.open(DST) == nil, 'extract made its directory')\n"
		"local f, ferr = tar.create(SRC .. '/empty')\n"
		"return s, err, f, ferr\n"), 4);
	assert_true(lua_isnil(L, -4));
	check_lua_string_contains(L, -3, root);
	check_lua_string_contains(L, -3, "/missing: No such file or directory");
	assert_true(lua_isnil(L, -2));
	check_lua_string_contains(L, -1, "/src/empty: Not a directory");
	lua_pop(L, 4);
	close_state(L, top);
}

/* Misuse raises. */
static void test_bad_arguments(void **state)
{
	lua_State *L = tar_state();
	int top = lua_gettop(L);

	(void)state;
	assert_int_equal(run_lua(L,
		"local function raises(want, f, ...)\n"
		"  local ok, err = pcall(f, ...)\n"
		"  assert(not ok and err:find(want, 1, true), tostring(err))\n"
		"end\n"
		"raises(\"unknown option 'excludes'\", tar.create, SRC,\n"
		"  { excludes = {} })\n"
		"raises('empty pattern', tar.create, SRC, { exclude = { '/' } })\n"
		"raises('not a string', tar.create, SRC, { exclude = { 1 } })\n"
		"raises('boolean', tar.create, SRC, { follow_symlinks = 'no' })\n"
		"raises('table', tar.create, SRC, { exclude = '*.log' })\n"
		"raises(\"unknown option 'progres'\", tar.extract,\n"
		"  stream.string(''), DST, { progres = print })\n"
		"raises('function', tar.extract, stream.string(''), DST,\n"
		"  { progress = 1 })\n"
		"local s = stream.string('')\n"
		"s:close()\n"
		"raises('closed stream', tar.verify, s)\n"
		"raises('string expected', tar.extract, stream.string(''))\n"),
		0);
	close_state(L, top);
}

/* A truncated archive fails extract; a directory extract made is
 * removed again, one that was there is left. */
static void test_truncated_extract(void **state)
{
	lua_State *L = tar_state();
	int top = lua_gettop(L);
	struct stat st;

	(void)state;
	assert_int_equal(run_lua(L,
		"local s <close> = tar.create(SRC, { exclude = EXCLUDES })\n"
		"DATA = assert(s:readall())\n"
		"local cut = stream.string(DATA:sub(1, #DATA // 2))\n"
		"local ok, err = tar.extract(cut, DST .. '/new')\n"
		"assert(ok == nil and err:find('Truncated tar archive'), err)\n"
		"assert(io.open(DST .. '/new') == nil, 'partial output left')\n"
		"assert(io.open(DST .. '/marker', 'w')):close()\n"
		"cut = stream.string(DATA:sub(1, #DATA // 2))\n"
		"ok, err = tar.extract(cut, DST)\n"
		"assert(ok == nil and err:find('Truncated tar archive'), err)\n"
		"DATA = nil\n"), 0);
	stat_at(dst, "marker", &st);
	assert_true(S_ISREG(st.st_mode));
	remove_tree(dst);
	close_state(L, top);
}

/* verify counts the entries and bytes; refuses truncated, corrupt and
 * unterminated archives. */
static void test_verify(void **state)
{
	lua_State *L = tar_state();
	int top = lua_gettop(L);

	(void)state;
	lua_pushinteger(L, (lua_Integer)NLISTED);
	lua_setglobal(L, "NLISTED");
	assert_int_equal(run_lua(L,
		"local s <close> = tar.create(SRC, { exclude = EXCLUDES })\n"
		"local data = assert(s:readall())\n"
		"local r = assert(tar.verify(stream.string(data)))\n"
		"assert(r.entries == NLISTED, r.entries)\n"
		"assert(r.bytes == #data, r.bytes)\n"
		"local function refuses(want, bytes)\n"
		"  local ok, err = tar.verify(stream.string(bytes))\n"
		"  assert(ok == nil and err:find(want, 1, true), tostring(err))\n"
		"end\n"
		"refuses('Truncated tar archive', data:sub(1, #data - 300000))\n"
		"refuses('Unrecognized archive format', '')\n"
		"refuses('Unrecognized archive format', ('x'):rep(4096))\n"
		"-- cut after the last entry, before the end-of-archive blocks\n"
		"local last = #data\n"
		"while data:byte(last) == 0 do last = last - 1 end\n"
		"local cut = (last + 511) // 512 * 512\n"
		"refuses('no end-of-archive marker', data:sub(1, cut))\n"
		"-- a header's checksum no longer matches: a damaged archive\n"
		"local bad = data:sub(1, 100) .. 'X' .. data:sub(102)\n"
		"local ok, err = tar.verify(stream.string(bad))\n"
		"assert(ok == nil, 'corrupt header accepted')\n"), 0);
	close_state(L, top);
}

/* An upstream's error is what extract and verify report. */
static void test_upstream_error(void **state)
{
	lua_State *L = tar_state();
	int top = lua_gettop(L);

	(void)state;
	assert_int_equal(run_lua(L,
		"local s <close> = tar.create(SRC, { exclude = EXCLUDES })\n"
		"local data = assert(s:readall())\n"
		"for _, n in ipairs({ 0, 1000, #data // 2, #data }) do\n"
		"  local want = 'disk on fire after ' .. n .. ' bytes'\n"
		"  local ok, err = tar.extract(failing(data, n), DST)\n"
		"  assert(ok == nil and err == want, tostring(err))\n"
		"  assert(io.open(DST) == nil, 'partial output left')\n"
		"  ok, err = tar.verify(failing(data, n))\n"
		"  assert(ok == nil and err == want, tostring(err))\n"
		"end\n"
		"local ok, err = tar.extract(stream.string(data), DST,\n"
		"  { progress = function() error('stop', 0) end })\n"
		"assert(ok == nil and err == 'progress: stop', tostring(err))\n"),
		0);
	close_state(L, top);
}

/* Entries that would land outside the target (in root, next to dst)
 * are refused. */
static void test_hostile_archive(void **state)
{
	static const char *const want[] = {"'..'", "absolute path", "symlink"};
	lua_State *L = tar_state();
	int top = lua_gettop(L);
	char evil[PATH_MAX];
	size_t i;

	(void)state;
	path_at(evil, sizeof evil, root, "evil.txt");
	for (i = 0; i < sizeof want / sizeof *want; i++) {
		static char mem[64 * 1024];
		struct archive *a = archive_write_new();
		struct archive_entry *e = archive_entry_new();
		size_t used = 0;

		assert_int_equal(archive_write_set_format_pax_restricted(a), 0);
		assert_int_equal(archive_write_open_memory(a, mem, sizeof mem,
		                                           &used), 0);
		archive_entry_set_perm(e, 0644);
		if (i == 0) {
			archive_entry_set_pathname(e, "../evil.txt");
		} else if (i == 1) {
			archive_entry_set_pathname(e, evil);
		} else {
			/* sneaky -> root, then sneaky/evil.txt */
			archive_entry_set_pathname(e, "sneaky");
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_symlink(e, root);
			assert_int_equal(archive_write_header(a, e), 0);
			archive_entry_clear(e);
			archive_entry_set_perm(e, 0644);
			archive_entry_set_pathname(e, "sneaky/evil.txt");
		}
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, 5);
		assert_int_equal(archive_write_header(a, e), 0);
		assert_int_equal(archive_write_data(a, "evil\n", 5), 5);
		assert_int_equal(archive_write_close(a), 0);
		archive_write_free(a);
		archive_entry_free(e);
		lua_pushlstring(L, mem, used);
		lua_setglobal(L, "EVIL");
		assert_int_equal(run_lua(L,
			"return tar.extract(stream.string(EVIL), DST)\n"), 2);
		assert_null(lua_tostring(L, -2));
		check_lua_string_contains(L, -1, want[i]);
		lua_pop(L, 2);
		assert_int_equal(access(evil, F_OK), -1);
		assert_int_equal(access(dst, F_OK), -1); /* removed again */
	}
	close_state(L, top);
}

/* Ways a file changes while tar.create reads it. */
static void shrink(const char *file)
{
	assert_int_equal(truncate(file, 1000), 0);
}

static void grow(const char *file)
{
	int fd = open(file, O_WRONLY | O_APPEND);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "more", 4), 4);
	close(fd);
}

static void rewrite(const char *file)
{
	int fd = open(file, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "edit", 4, 10), 4);
	close(fd);
}

static void delete(const char *file)
{
	assert_int_equal(unlink(file), 0);
}

/* A 1 MiB file in a directory of its own, archived; change() done to it
 * once 200 KB of the archive are read; the stream must then fail with a
 * message holding want. */
static void changed_while_read(void (*change)(const char *), const char *want)
{
	lua_State *L = tar_state();
	int top = lua_gettop(L);
	char dir[PATH_MAX], file[PATH_MAX];

	path_at(dir, sizeof dir, root, "changing");
	path_at(file, sizeof file, dir, "f");
	make_dir(root, "changing");
	lua_pushstring(L, dir);
	lua_setglobal(L, "CHANGING");
	write_big(dir, "f", 1024 * 1024);
	assert_int_equal(run_lua(L,
		"S = tar.create(CHANGING)\n"
		"repeat assert(S:read()) until S:info().bytes > 200000\n"), 0);
	change(file);
	assert_int_equal(run_lua(L,
		"local ok, err = S:drain()\n"
		"S:close()\n"
		"S = nil\n"
		"return ok, err\n"), 2);
	assert_null(lua_tostring(L, -2));
	check_lua_string_contains(L, -1, want);
	lua_pop(L, 2);
	remove_tree(dir);
	close_state(L, top);
}

/* A file that shrinks, or grows, while it is read fails the stream. */
static void test_file_changes(void **state)
{
	(void)state;
	changed_while_read(shrink, "/changing/f: file shrank while being read");
	changed_while_read(grow, "/changing/f: file changed size");
}

/* A file rewritten in place at the same size, or removed, while it is
 * read fails the stream: the archive would hold neither version. */
static void test_file_rewritten_or_removed(void **state)
{
	(void)state;
	changed_while_read(rewrite, "/changing/f: file changed while being read");
	changed_while_read(delete, "/changing/f: file removed while being read");
}

/* Files the walk listed but that were gone when it came to them (a
 * directory removed while it is archived) fail the stream, instead of
 * ending it cleanly with an archive missing them. */
static void test_tree_removed(void **state)
{
	lua_State *L = tar_state();
	int top = lua_gettop(L);
	char dir[PATH_MAX], sub[PATH_MAX], name[32];
	int i;

	(void)state;
	path_at(dir, sizeof dir, root, "vanishing");
	path_at(sub, sizeof sub, dir, "a");
	make_dir(root, "vanishing");
	make_dir(dir, "a");
	for (i = 0; i < 200; i++) {
		snprintf(name, sizeof name, "f%d", i);
		write_big(sub, name, 100);
	}
	lua_pushstring(L, dir);
	lua_setglobal(L, "VANISHING");
	assert_int_equal(run_lua(L,
		"S = tar.create(VANISHING)\n"
		"assert(S:read(4096))\n"), 0);
	remove_tree(sub);
	assert_int_equal(run_lua(L,
		"local ok, err = S:drain()\n"
		"S:close()\n"
		"S = nil\n"
		"return ok, err\n"), 2);
	assert_null(lua_tostring(L, -2));
	check_lua_string_contains(L, -1, "removed while");
	lua_pop(L, 2);
	remove_tree(dir);
	close_state(L, top);
}

/* In the child, as an unprivileged user: 0 if archiving rel under dir
 * fails with a message holding want. */
static int unreadable_child(const char *dir, const char *want)
{
	lua_State *L = luaL_newstate();
	const char *err;
	int rc;

	luaL_openlibs(L);
	luaL_requiref(L, "tar", luaopen_vakap_tar, 1);
	lua_pop(L, 1);
	lua_pushstring(L, dir);
	lua_setglobal(L, "DIR");
	if (luaL_dostring(L, "local s <close> = tar.create(DIR)\n"
	                     "return select(2, s:drain())") != LUA_OK) {
		fprintf(stderr, "child: %s\n", lua_tostring(L, -1));
		lua_close(L);
		return 2;
	}
	err = lua_tostring(L, -1);
	rc = err != NULL && strstr(err, want) != NULL ? 0 : 3;
	if (rc != 0)
		fprintf(stderr, "child: '%s' lacks '%s'\n", err ? err : "(nil)",
		        want);
	lua_close(L);
	return rc;
}

/* An unreadable file or directory fails the stream (not skipped).
 * Root reads anything, so the check runs in a child as nobody. */
static void test_unreadable(void **state)
{
	static const struct {
		const char *make, *want;
	} cases[] = {
		{"secret", "/locked/secret: Permission denied"},
		{"hidden/", "/locked/hidden: Couldn't visit directory"},
	};
	char dir[PATH_MAX], p[PATH_MAX];
	size_t i;

	(void)state;
	path_at(dir, sizeof dir, root, "locked");
	for (i = 0; i < sizeof cases / sizeof *cases; i++) {
		const char *name = cases[i].make;
		int status;
		pid_t pid;

		make_dir(root, "locked");
		write_file(dir, "readable", "fine\n");
		if (name[strlen(name) - 1] == '/') {
			make_dir(dir, "hidden");
			write_file(dir, "hidden/x", "x\n");
			path_at(p, sizeof p, dir, "hidden");
		} else {
			write_file(dir, name, "secret\n");
			path_at(p, sizeof p, dir, name);
		}
		assert_int_equal(chmod(p, 0), 0);
		fflush(NULL);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			if (geteuid() == 0 && (setgid(65534) != 0 ||
			                       setuid(65534) != 0))
				_exit(77);
			_exit(unreadable_child(dir, cases[i].want));
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		chmod(p, 0700);
		remove_tree(dir);
		assert_true(WIFEXITED(status));
		if (WEXITSTATUS(status) == 77)
			skip();
		assert_int_equal(WEXITSTATUS(status), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_gnu_tar_lists_names),
		cmocka_unit_test(test_symlinks_kept),
		cmocka_unit_test(test_exclude_patterns),
		cmocka_unit_test(test_small_reads),
		cmocka_unit_test(test_not_a_directory),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_truncated_extract),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_upstream_error),
		cmocka_unit_test(test_hostile_archive),
		cmocka_unit_test(test_file_changes),
		cmocka_unit_test(test_file_rewritten_or_removed),
		cmocka_unit_test(test_tree_removed),
		cmocka_unit_test(test_unreadable),
	};

	/* As the engine's main() does: names are UTF-8 in libarchive. */
	setlocale(LC_ALL, "");
	if (strcmp(nl_langinfo(CODESET), "UTF-8") != 0)
		setlocale(LC_CTYPE, "C.UTF-8");
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
