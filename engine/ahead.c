/*
 * stream.ahead: a filter that reads its upstream on a thread of its own.
 *
 * ahead(up, bytes) passes up's bytes through unchanged.  A thread reads
 * up -- and so runs the whole chain below it -- into a ring of `bytes`,
 * while the reader's thread takes from the ring.  The chain's own waits
 * (on a host, on compression workers, on gpg) then go on while the reader
 * does its slow work with what it took (an upload, say), instead of the
 * two taking turns.
 *
 * Only the thread reads up, and nothing below up may touch Lua in its
 * read() (the engine's sources and filters keep to C).  A failure below
 * reaches the reader once the bytes before it are read, as through any
 * filter.  Closing stops the thread before the chain is released: it is
 * cancelled (vk_cancelled), which its read notices within a second, as
 * it would an interrupted run, and at once when the run was interrupted.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include "engine.h"
#include "stream.h"

#define AHEAD_DEFAULT (4 * 1024 * 1024)
#define AHEAD_MIN (64 * 1024)
#define AHEAD_MAX (256 * 1024 * 1024)

struct ahead {
	struct vk_stream s;
	pthread_mutex_t mu;
	pthread_cond_t cv;     /* something changed: either side may go on */
	int have_mu, have_cv;  /* initialised: destroy them */
	pthread_t thread;
	int started;           /* the thread was started: join it */
	atomic_int *cancel;    /* the thread's vk_cancelled, once it runs */
	unsigned char *ring;
	size_t cap;
	size_t want;           /* the room the thread waits for */
	size_t head, len;      /* ring[head..head+len) (wrapping) is unread */
	int end;               /* the thread is done: 1 up ended, -1 failed */
	int stop;              /* the reader wants no more */
};

/* Where the thread may read to next: the free room after the unread bytes,
 * up to the ring's end and a chunk.  Called with mu held, len < cap. */
static size_t free_room(const struct ahead *a, size_t *at)
{
	size_t room = a->cap - a->len;

	*at = (a->head + a->len) % a->cap;
	if (room > a->cap - *at)
		room = a->cap - *at;
	return room < VK_CHUNK ? room : VK_CHUNK;
}

/* The thread: read up into the ring until up ends or fails, or the reader
 * stops it. */
static void *produce(void *arg)
{
	struct ahead *a = arg;

	pthread_mutex_lock(&a->mu);
	a->cancel = &vk_cancelled;
	pthread_cond_broadcast(&a->cv);
	while (!a->stop) {
		size_t at, room;
		ssize_t r;

		/* reads of a good size: wait for a chunk's room (or half the
		 * ring's), not for each byte the reader takes */
		if (a->cap - a->len < a->want) {
			pthread_cond_wait(&a->cv, &a->mu);
			continue;
		}
		room = free_room(a, &at);
		/* the reader takes only from ring[head..head+len): the room past
		 * it is this thread's until len grows over it */
		pthread_mutex_unlock(&a->mu);
		r = vk_read(a->s.up, a->ring + at, room);
		pthread_mutex_lock(&a->mu);
		if (r <= 0) {
			a->end = r < 0 ? -1 : 1;
			pthread_cond_broadcast(&a->cv);
			break;
		}
		a->len += (size_t)r;
		pthread_cond_broadcast(&a->cv);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* The thread keeps the signal mask of the reader's, so what it starts
 * (gpg, say) can be stopped; a signal that lands on it marks the run
 * interrupted as well, and both sides see the mark. */
static int start(struct ahead *a)
{
	int rc = pthread_create(&a->thread, NULL, produce, a);

	if (rc != 0)
		return vk_fail(&a->s, "cannot start a thread to read ahead: %s",
		               strerror(rc));
	a->started = 1;
	return 0;
}

/* Wait for the thread, at most a tenth of a second: a signal does not
 * wake a condition wait, and the reader watches for an interrupted run. */
static void wait_briefly(struct ahead *a)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_nsec += 100 * 1000 * 1000;
	if (t.tv_nsec >= 1000 * 1000 * 1000) {
		t.tv_sec++;
		t.tv_nsec -= 1000 * 1000 * 1000;
	}
	pthread_cond_timedwait(&a->cv, &a->mu, &t);
}

static ssize_t ahead_read(struct vk_stream *s, void *buf, size_t n)
{
	struct ahead *a = (struct ahead *)s;
	size_t take;

	if (!a->started && start(a) < 0)
		return -1;
	pthread_mutex_lock(&a->mu);
	while (a->len == 0 && a->end == 0 && !vk_interrupted)
		wait_briefly(a);
	if (a->len == 0) {
		int end = a->end;

		pthread_mutex_unlock(&a->mu);
		if (end > 0)
			return 0;
		return end < 0 ? vk_fail_up(s) : vk_fail(s, "interrupted");
	}
	take = a->len < n ? a->len : n;
	if (take > a->cap - a->head)
		take = a->cap - a->head;
	pthread_mutex_unlock(&a->mu);
	/* the thread writes only past head+len: these bytes stay put */
	memcpy(buf, a->ring + a->head, take);
	pthread_mutex_lock(&a->mu);
	a->head = (a->head + take) % a->cap;
	a->len -= take;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	return (ssize_t)take;
}

static void ahead_release(struct vk_stream *s)
{
	struct ahead *a = (struct ahead *)s;

	if (a->started) {
		pthread_mutex_lock(&a->mu);
		a->stop = 1;
		while (a->cancel == NULL)
			pthread_cond_wait(&a->cv, &a->mu);
		atomic_store(a->cancel, 1);
		pthread_cond_broadcast(&a->cv);
		pthread_mutex_unlock(&a->mu);
		/* an interrupted run ends now: the signal went to this thread,
		 * and one more (to the same handler) breaks the thread's wait */
		if (vk_interrupted)
			pthread_kill(a->thread, SIGINT);
		pthread_join(a->thread, NULL);
		a->started = 0;
	}
	if (a->have_cv)
		pthread_cond_destroy(&a->cv);
	if (a->have_mu)
		pthread_mutex_destroy(&a->mu);
	a->have_cv = a->have_mu = 0;
	free(a->ring);
	a->ring = NULL;
}

static void ahead_info(struct vk_stream *s, lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)((struct ahead *)s)->cap);
	lua_setfield(L, -2, "ahead");
}

static const struct vk_stream_ops ahead_ops = {
	.name = "ahead",
	.read = ahead_read,
	.release = ahead_release,
	.info = ahead_info,
};

/* lua: stream.ahead(up [, bytes = 4 MiB]) -> up's bytes, up read on a
 * thread of its own, up to `bytes` ahead of the reader */
int vk_l_ahead(lua_State *L)
{
	lua_Integer bytes = luaL_optinteger(L, 2, AHEAD_DEFAULT);
	struct ahead *a;

	vk_stream_check(L, 1);
	luaL_argcheck(L, bytes >= AHEAD_MIN && bytes <= AHEAD_MAX, 2,
	              "bytes out of range");
	a = (struct ahead *)vk_stream_push(L, sizeof *a, &ahead_ops);
	vk_stream_adopt(L, -1, 1);
	vk_open(&a->s);
	a->cap = (size_t)bytes;
	a->want = a->cap / 2 < VK_CHUNK ? a->cap / 2 : VK_CHUNK;
	a->ring = malloc(a->cap);
	a->have_mu = pthread_mutex_init(&a->mu, NULL) == 0;
	a->have_cv = pthread_cond_init(&a->cv, NULL) == 0;
	if (a->ring == NULL)
		vk_fail(&a->s, "ahead: out of memory");
	else if (!a->have_mu || !a->have_cv)
		vk_fail(&a->s, "ahead: cannot make its lock");
	return 1;
}
