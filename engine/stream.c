/*
 * vakap.stream: the stream handle every primitive returns, and the
 * functions shared by sources, filters and sinks (see stream.h).
 */
#define _POSIX_C_SOURCE 200809L

#include "stream.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

volatile int vk_interrupted;
_Thread_local atomic_int vk_cancelled;

static const char *const state_names[] = {"closed", "open", "ended", "failed"};

int vk_fail(struct vk_stream *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof s->err, fmt, ap);
	va_end(ap);
	if (s->state != VK_CLOSED)
		s->state = VK_FAILED;
	return -1;
}

int vk_fail_up(struct vk_stream *s)
{
	if (s->up && s->up->state == VK_CLOSED)
		return vk_fail(s, "%s: its input stream was closed", s->ops->name);
	return vk_fail(s, "%s", s->up ? s->up->err : "no upstream");
}

ssize_t vk_read(struct vk_stream *s, void *buf, size_t n)
{
	ssize_t r;

	switch (s->state) {
	case VK_EOF:
		return 0;
	case VK_FAILED:
		return -1;
	case VK_CLOSED:
		/* the message is for the reader; the closed stream keeps none */
		return -1;
	case VK_OPEN:
		break;
	}
	if (vk_stopping())
		return vk_fail(s, "interrupted");
	r = s->ops->read(s, buf, n);
	if (r > 0)
		s->nbytes += (uint64_t)r;
	else if (r == 0)
		s->state = VK_EOF;
	else if (s->state != VK_FAILED)
		vk_fail(s, "%s: read failed", s->ops->name);
	return r;
}

ssize_t vk_read_full(struct vk_stream *s, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = vk_read(s, (char *)buf + got, n - got);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

void vk_close(struct vk_stream *s)
{
	if (s->released)
		return;
	s->released = 1;
	s->state = VK_CLOSED;
	if (s->ops->release)
		s->ops->release(s);
	if (s->up)
		vk_close(s->up);
}

static int report_progress(lua_State *L, int progress_idx, uint64_t bytes,
                           char *errbuf, size_t errlen)
{
	lua_pushvalue(L, progress_idx);
	lua_pushinteger(L, (lua_Integer)bytes);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		snprintf(errbuf, errlen, "progress: %s",
		         msg ? msg : "(error object is not a string)");
		lua_pop(L, 1);
		return -1;
	}
	return 0;
}

int vk_pump(lua_State *L, struct vk_stream *s, vk_write_fn write, void *ctx,
            int progress_idx, char *errbuf, size_t errlen)
{
	int progress = L != NULL && progress_idx != 0 &&
	               lua_type(L, progress_idx) == LUA_TFUNCTION;
	double last = vk_clock();
	uint64_t total = 0;
	char *buf = malloc(VK_CHUNK);
	int rc = -1;

	if (buf == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return -1;
	}
	for (;;) {
		ssize_t r = vk_read(s, buf, VK_CHUNK);
		if (r < 0) {
			snprintf(errbuf, errlen, "%s", s->err);
			break;
		}
		if (r == 0) {
			rc = progress ? report_progress(L, progress_idx, total,
			                                errbuf, errlen)
			              : 0;
			break;
		}
		if (write(ctx, buf, (size_t)r, errbuf, errlen) != 0)
			break;
		total += (uint64_t)r;
		if (progress && vk_clock() - last >= 0.25) {
			last = vk_clock();
			if (report_progress(L, progress_idx, total, errbuf,
			                    errlen) != 0)
				break;
		}
	}
	free(buf);
	return rc;
}

void vk_tail_add(struct vk_tail *t, const char *data, size_t n)
{
	if (n >= VK_TAIL) {
		memcpy(t->buf, data + n - VK_TAIL, VK_TAIL);
		t->len = VK_TAIL;
	} else {
		size_t drop = t->len + n > VK_TAIL ? t->len + n - VK_TAIL : 0;
		memmove(t->buf, t->buf + drop, t->len - drop);
		t->len -= drop;
		memcpy(t->buf + t->len, data, n);
		t->len += n;
	}
	t->buf[t->len] = '\0';
}

size_t vk_tail_trimmed(const struct vk_tail *t)
{
	size_t n = t->len;

	while (n > 0 && (t->buf[n - 1] == '\n' || t->buf[n - 1] == ' '))
		n--;
	return n;
}

/* ---- the handle ---- */

static void createmeta(lua_State *L);

struct vk_stream *vk_stream_push(lua_State *L, size_t size,
                                 const struct vk_stream_ops *ops)
{
	struct vk_stream *s;

	s = lua_newuserdatauv(L, size, VK_UVALUES);
	memset(s, 0, size);
	s->ops = ops;
	s->state = VK_CLOSED;
	createmeta(L);
	lua_setmetatable(L, -2);
	return s;
}

void vk_open(struct vk_stream *s)
{
	s->state = VK_OPEN;
}

static struct vk_stream *tostream(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, VK_STREAM_MT);
}

struct vk_stream *vk_stream_check(lua_State *L, int idx)
{
	struct vk_stream *s = tostream(L, idx);

	if (s->state == VK_CLOSED)
		luaL_error(L, "attempt to use a closed stream");
	if (s->adopted)
		luaL_error(L, "stream is already read by a filter");
	return s;
}

void vk_stream_adopt(lua_State *L, int filter_idx, int up_idx)
{
	struct vk_stream *f = tostream(L, filter_idx);
	struct vk_stream *up = vk_stream_check(L, up_idx);

	up->adopted = 1;
	f->up = up;
	lua_pushvalue(L, up_idx);
	lua_setiuservalue(L, filter_idx < 0 ? filter_idx - 1 : filter_idx, 1);
}

/* ---- a source reading a Lua string ---- */

struct string_source {
	struct vk_stream s;
	const char *data;
	size_t len, pos;
};

static ssize_t string_read(struct vk_stream *s, void *buf, size_t n)
{
	struct string_source *src = (struct string_source *)s;
	size_t left = src->len - src->pos;

	if (n > left)
		n = left;
	memcpy(buf, src->data + src->pos, n);
	src->pos += n;
	return (ssize_t)n;
}

static const struct vk_stream_ops string_ops = {
	.name = "string",
	.read = string_read,
};

/* lua: stream.string(s) -> stream of the bytes of s */
static int l_string(lua_State *L)
{
	size_t len;
	const char *data = luaL_checklstring(L, 1, &len);
	struct string_source *src;

	src = (struct string_source *)vk_stream_push(L, sizeof *src, &string_ops);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1); /* keeps data alive */
	src->data = data;
	src->len = len;
	vk_open(&src->s);
	return 1;
}

/* ---- a filter keeping the end of what passes, and checking it ---- */

struct tail_filter {
	struct vk_stream s;
	struct vk_tail tail;
	char marker[256];    /* what the end must contain, or "" */
	char if_empty[256];  /* the failure of an empty stream, or "" */
	char if_unmarked[256]; /* the failure of an end without the marker */
};

/* At the upstream's clean end: whether what passed is whole. */
static ssize_t tail_end(struct tail_filter *f)
{
	if (f->if_empty[0] != '\0' && f->s.nbytes == 0)
		return vk_fail(&f->s, "%s", f->if_empty);
	if (f->marker[0] != '\0' && strstr(f->tail.buf, f->marker) == NULL)
		return vk_fail(&f->s, "%s", f->if_unmarked);
	return 0;
}

static ssize_t tail_read(struct vk_stream *s, void *buf, size_t n)
{
	struct tail_filter *f = (struct tail_filter *)s;
	ssize_t r = vk_read(s->up, buf, n);

	if (r < 0)
		return vk_fail_up(s);
	if (r == 0)
		return tail_end(f);
	vk_tail_add(&f->tail, buf, (size_t)r);
	return r;
}

static void tail_info(struct vk_stream *s, lua_State *L)
{
	struct tail_filter *f = (struct tail_filter *)s;

	lua_pushlstring(L, f->tail.buf, f->tail.len);
	lua_setfield(L, -2, "tail");
}

static const struct vk_stream_ops tail_ops = {
	.name = "tail",
	.read = tail_read,
	.info = tail_info,
};

/* Copy the option `name` of the table at idx (a string, if set) into dst. */
static void tail_option(lua_State *L, int idx, const char *name, char *dst,
                        size_t len)
{
	size_t n;
	const char *v;

	if (lua_getfield(L, idx, name) != LUA_TNIL) {
		v = luaL_checklstring(L, -1, &n);
		luaL_argcheck(L, n > 0 && n < len && strlen(v) == n, idx,
		              lua_pushfstring(L, "%s: 1 to %d bytes, no NUL", name,
		                              (int)len - 1));
		memcpy(dst, v, n + 1);
	}
	lua_pop(L, 1);
}

/* lua: stream.tail(up [, { empty = MSG, marker = TEXT, unmarked = MSG }])
 *      -> the same bytes; s:info().tail: the last VK_TAIL (4 KiB) of them.
 *      At the upstream's clean end the stream fails with MSG when nothing
 *      passed (empty), or when TEXT is not in the last 4 KiB (marker: a
 *      dump's completion line), so that a sink never takes it as whole. */
static int l_tail(lua_State *L)
{
	struct tail_filter *f;

	vk_stream_check(L, 1);
	if (!lua_isnoneornil(L, 2))
		luaL_checktype(L, 2, LUA_TTABLE);
	f = (struct tail_filter *)vk_stream_push(L, sizeof *f, &tail_ops);
	if (!lua_isnoneornil(L, 2)) {
		tail_option(L, 2, "empty", f->if_empty, sizeof f->if_empty);
		tail_option(L, 2, "marker", f->marker, sizeof f->marker);
		tail_option(L, 2, "unmarked", f->if_unmarked, sizeof f->if_unmarked);
		luaL_argcheck(L, (f->marker[0] == '\0') == (f->if_unmarked[0] == '\0'),
		              2, "marker and unmarked go together");
	}
	vk_stream_adopt(L, -1, 1);
	vk_open(&f->s);
	return 1;
}

/* ---- methods ---- */

static struct vk_stream *checkreadable(lua_State *L)
{
	return vk_stream_check(L, 1);
}

/* lua: s:read([n]) -> string | fail at the end | fail, message */
static int m_read(lua_State *L)
{
	struct vk_stream *s = checkreadable(L);
	lua_Integer n = luaL_optinteger(L, 2, VK_CHUNK);
	luaL_Buffer b;
	char *p;
	ssize_t r;

	luaL_argcheck(L, n > 0, 2, "must be positive");
	if (n > VK_CHUNK)
		n = VK_CHUNK; /* "up to n": memory stays bounded */
	p = luaL_buffinitsize(L, &b, (size_t)n);
	r = vk_read(s, p, (size_t)n);
	if (r < 0)
		return vk_pushfail(L, "%s", s->err);
	if (r == 0) {
		luaL_pushfail(L);
		return 1;
	}
	luaL_pushresultsize(&b, (size_t)r);
	return 1;
}

/* fail, "output larger than LIMIT bytes" */
static int too_large(lua_State *L, lua_Integer limit)
{
	char msg[64];

	snprintf(msg, sizeof msg, "output larger than %lld bytes", (long long)limit);
	return vk_pushfail(L, "%s", msg);
}

/* lua: s:readall([limit]) -> string | fail, message */
static int m_readall(lua_State *L)
{
	struct vk_stream *s = checkreadable(L);
	lua_Integer limit = luaL_optinteger(L, 2, 16 * 1024 * 1024);
	luaL_Buffer b;
	size_t total = 0;

	luaL_buffinit(L, &b);
	for (;;) {
		char *p = luaL_prepbuffsize(&b, VK_CHUNK);
		ssize_t r = vk_read(s, p, VK_CHUNK);
		if (r < 0)
			return vk_pushfail(L, "%s", s->err);
		if (r == 0)
			break;
		total += (size_t)r;
		if ((lua_Integer)total > limit)
			return too_large(L, limit);
		luaL_addsize(&b, (size_t)r);
	}
	luaL_pushresult(&b);
	return 1;
}

static int discard(void *ctx, const void *buf, size_t n, char *errbuf,
                   size_t errlen)
{
	(void)ctx, (void)buf, (void)n, (void)errbuf, (void)errlen;
	return 0;
}

/* lua: s:drain([progress]) -> bytes | fail, message
 *      bytes: all the stream has produced, including what was read before */
static int m_drain(lua_State *L)
{
	struct vk_stream *s = checkreadable(L);
	char err[512];

	if (vk_pump(L, s, discard, NULL, 2, err, sizeof err) != 0)
		return vk_pushfail(L, "%s", err);
	lua_pushinteger(L, (lua_Integer)s->nbytes);
	return 1;
}

/* lua: s:info() -> { type, state, bytes, error, ... what the type adds } */
static int m_info(lua_State *L)
{
	struct vk_stream *s = tostream(L, 1);

	lua_newtable(L);
	lua_pushstring(L, s->ops->name);
	lua_setfield(L, -2, "type");
	lua_pushstring(L, state_names[s->state]);
	lua_setfield(L, -2, "state");
	lua_pushinteger(L, (lua_Integer)s->nbytes);
	lua_setfield(L, -2, "bytes");
	if (s->err[0] != '\0') {
		lua_pushstring(L, s->err);
		lua_setfield(L, -2, "error");
	}
	if (s->ops->info)
		s->ops->info(s, L);
	return 1;
}

/* lua: s:close() -- also __close; closing twice is harmless, and closing
 *      a stream a filter reads does nothing: the filter closes it */
static int m_close(lua_State *L)
{
	struct vk_stream *s = tostream(L, 1);

	if (!s->adopted)
		vk_close(s);
	return 0;
}

/* __gc: release whatever is still held */
static int m_gc(lua_State *L)
{
	vk_close(tostream(L, 1));
	return 0;
}

static int m_tostring(lua_State *L)
{
	struct vk_stream *s = tostream(L, 1);

	lua_pushfstring(L, "vakap.stream (%s, %s)", s->ops->name,
	                state_names[s->state]);
	return 1;
}

static const luaL_Reg methods[] = {
	{"read", m_read},       {"readall", m_readall}, {"drain", m_drain},
	{"info", m_info},       {"close", m_close},     {NULL, NULL},
};

static const luaL_Reg metamethods[] = {
	{"__index", NULL}, /* set to the methods table */
	{"__gc", m_gc},
	{"__close", m_close},
	{"__tostring", m_tostring},
	{NULL, NULL},
};

static void createmeta(lua_State *L)
{
	vk_class(L, VK_STREAM_MT, metamethods, methods);
}

static const luaL_Reg funcs[] = {
	{"string", l_string},
	{"tail", l_tail},
	{"ahead", vk_l_ahead},
	{NULL, NULL},
};

int luaopen_vakap_stream(lua_State *L)
{
	createmeta(L);
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	lua_pushinteger(L, VK_CHUNK);
	lua_setfield(L, -2, "chunk");
	return 1;
}
