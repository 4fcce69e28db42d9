/*
 * The stream core: source -> filters -> sink.
 *
 * A stream is pulled: its read() fills the caller's buffer with up to n
 * bytes and returns how many, 0 at a clean end, or -1 after vk_fail() has
 * recorded why.  A filter reads from the stream below it (`up`) and, when
 * that fails, fails with the same message (vk_fail_up), so an error at the
 * source reaches the sink instead of a clean end-of-file.  A sink drains a
 * stream (vk_pump) and discards what it wrote when the stream fails.
 *
 * Streams live in Lua userdata (metatable "vakap.stream"): a primitive
 * allocates one with vk_stream_push, which pushes it closed; the primitive
 * then acquires its resources and marks it open.  A filter owns the stream
 * below it (vk_stream_adopt): closing the filter closes the whole chain.
 * Every stage holds at most a fixed buffer, so memory does not grow with
 * the size of the data.
 *
 * The error contract, the same for every primitive:
 *  - a source or a sink that cannot start returns nil, message (a missing
 *    directory, a refused connection, an object that is not there);
 *  - a filter never fails when it is made: what goes wrong later, and
 *    anything its upstream reports, fails the stream in-band, so the
 *    error reaches the sink with the data;
 *  - a sink returns nil, message when the stream failed or the write did,
 *    after discarding what it wrote;
 *  - misuse (a wrong argument type, an unknown option, a closed handle)
 *    raises: it is a bug in the calling Lua, not a fault to report.
 */
#ifndef VAKAP_STREAM_H
#define VAKAP_STREAM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <lauxlib.h>
#include <lua.h>

#include "base.h"

#define VK_STREAM_MT "vakap.stream"
#define VK_CHUNK (128 * 1024) /* the buffer each stage moves bytes in */
/* User values of a stream: 1 the upstream (filters) or the data a source
 * keeps alive; 2 free for a primitive's own use (a callback, say). */
#define VK_UVALUES 2

enum vk_state { VK_CLOSED, VK_OPEN, VK_EOF, VK_FAILED };

struct vk_stream;

struct vk_stream_ops {
	const char *name;
	/* Fill buf with up to n (> 0) bytes: >0 read, 0 clean end, -1 failed. */
	ssize_t (*read)(struct vk_stream *s, void *buf, size_t n);
	/* Release what the stream holds; called once, also after a failure. */
	void (*release)(struct vk_stream *s);
	/* Optional: set fields of the table on top of the stack (s:info()). */
	void (*info)(struct vk_stream *s, lua_State *L);
};

struct vk_stream {
	const struct vk_stream_ops *ops;
	struct vk_stream *up; /* the stream this one reads from, or NULL */
	enum vk_state state;
	int adopted;          /* read only by the filter that owns it */
	int released;         /* release() has run */
	uint64_t nbytes;      /* bytes this stream has produced */
	char err[512];        /* why it failed, when state == VK_FAILED */
};

/* Push a new stream userdata of `size` bytes (>= sizeof(struct vk_stream)),
 * zeroed and closed; the caller sets its fields to their empty values
 * (fds to -1) before anything can raise, acquires, then vk_open().
 * A stream that fails to acquire is best opened and then failed with
 * vk_fail: its first read returns the message down the chain (vk_fail on
 * a stream never opened records the message but leaves it closed).
 * release() runs exactly once, at the first close or collection. */
struct vk_stream *vk_stream_push(lua_State *L, size_t size,
                                 const struct vk_stream_ops *ops);
void vk_open(struct vk_stream *s);

/* The stream at index idx; raises if it is not a stream, or is closed. */
struct vk_stream *vk_stream_check(lua_State *L, int idx);

/* Make the stream at up_idx the upstream of the filter at filter_idx: the
 * filter keeps it alive, reads from it, and closes it when it closes. */
void vk_stream_adopt(lua_State *L, int filter_idx, int up_idx);

/* Read through the state machine: counts bytes, keeps errors sticky. */
ssize_t vk_read(struct vk_stream *s, void *buf, size_t n);

/* Read until buf holds n bytes or the stream ends: returns the count,
 * or -1 when the stream failed. */
ssize_t vk_read_full(struct vk_stream *s, void *buf, size_t n);

/* Record a failure; returns -1 so a read can `return vk_fail(...)`. */
int vk_fail(struct vk_stream *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Fail with the message of the upstream that failed. */
int vk_fail_up(struct vk_stream *s);

/* Close the stream and everything below it; closing twice is harmless. */
void vk_close(struct vk_stream *s);

/*
 * Drain s into write(ctx, buf, n) (which returns 0, or -1 with errno set
 * and a message in errbuf).  If the Lua value at progress_idx is a
 * function, it is called now and then with the number of bytes so far.
 * Returns 0 when the whole stream was written; -1 with a message in
 * errbuf otherwise (the stream's error, or the write's).
 */
typedef int (*vk_write_fn)(void *ctx, const void *buf, size_t n,
                           char *errbuf, size_t errlen);
int vk_pump(lua_State *L, struct vk_stream *s, vk_write_fn write, void *ctx,
            int progress_idx, char *errbuf, size_t errlen);

/* The end of what a command wrote on stderr, kept for its error message:
 * the last VK_TAIL bytes, NUL-terminated. */
#define VK_TAIL 4096
struct vk_tail {
	size_t len;
	char buf[VK_TAIL + 1];
};
/* Keep n more bytes, dropping the oldest beyond VK_TAIL. */
void vk_tail_add(struct vk_tail *t, const char *data, size_t n);
/* The length of the tail without its trailing newlines and spaces. */
size_t vk_tail_trimmed(const struct vk_tail *t);

/* Set by the signal handlers in the engine: a run was interrupted. */
extern volatile int vk_interrupted;
/* Set for a thread reading ahead (stream.ahead) once its reader wants no
 * more: its reads give up as if the run were interrupted. */
extern _Thread_local atomic_int vk_cancelled;
/* A read should give up now: the run was interrupted, or this thread's
 * reading was cancelled.  Blocking waits in reads wake at least once a
 * second to ask. */
#define vk_stopping() \
	(vk_interrupted || atomic_load_explicit(&vk_cancelled, memory_order_relaxed))




/* stream.ahead (ahead.c): a filter whose upstream is read on a thread. */
int vk_l_ahead(lua_State *L);

int luaopen_vakap_stream(lua_State *L);

#endif
