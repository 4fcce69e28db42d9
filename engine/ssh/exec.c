/*
 * sess:exec's source (ssh/ssh.h): a stream of a remote command's
 * standard output, on a channel of its own.  It ends cleanly only when
 * the command exited 0; a bad exit, a signal, a lost connection or a
 * session closed under it fails the stream, with the command's stderr.
 * The stream keeps the session's userdata alive.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>

#include "ssh/ssh.h"
#include "stream.h"

struct exec_source {
	struct vk_stream s;
	struct chan c;
};

static ssize_t exec_fail(struct vk_stream *s, struct chan *c)
{
	const struct session *ss = c->ss;

	return vk_fail(s, "%s on %s: %s", c->name, ss->label, ss->err);
}

/* Read what libssh holds of the command's output, and what the socket
 * has besides, up to n bytes: a wait only when there is none. */
static ssize_t exec_read(struct vk_stream *s, void *buf, size_t n)
{
	struct chan *c = &((struct exec_source *)s)->c;
	struct session *ss = c->ss;
	char msg[VK_TAIL + 512];

	if (ss == NULL || c->ch == NULL)
		return vk_fail(s, "%s: its SSH session was closed", c->name);
	if (!sess_ours(ss))
		return vk_fail(s, "%s on %s: " NOT_OURS, c->name, ss->label);
	if (n > UINT32_MAX)
		n = UINT32_MAX;
	for (;;) {
		size_t got = 0;
		int r;

		do {
			r = ssh_channel_read_nonblocking(c->ch, (char *)buf + got,
			                                 (uint32_t)(n - got), 0);
			if (r > 0)
				got += (size_t)r;
		} while (r > 0 && got < n);
		if (got > 0)
			return (ssize_t)got;
		if (r == SSH_ERROR) {
			sess_lost(ss);
			return exec_fail(s, c);
		}
		if (r == SSH_EOF || c->closed)
			break;
		if (sess_wait(ss, 0, 1) != 0)
			return exec_fail(s, c);
	}
	if (chan_finish(c) != 0)
		return exec_fail(s, c);
	if (chan_problem(c, msg, sizeof msg))
		return vk_fail(s, "%s", msg);
	return 0;
}

static void exec_release(struct vk_stream *s)
{
	chan_release(&((struct exec_source *)s)->c);
}

static void exec_info(struct vk_stream *s, lua_State *L)
{
	chan_info(&((struct exec_source *)s)->c, L);
}

static const struct vk_stream_ops exec_ops = {
	.name = "ssh",
	.read = exec_read,
	.release = exec_release,
	.info = exec_info,
};

int exec_push(lua_State *L, struct session *ss, int sess_idx,
              const char *name, const char *cmd)
{
	struct exec_source *es;

	es = (struct exec_source *)vk_stream_push(L, sizeof *es, &exec_ops);
	chan_init(&es->c, name);
	lua_pushvalue(L, sess_idx);
	lua_setiuservalue(L, -2, 1); /* the session outlives the stream */
	chan_link(&es->c, ss);
	if (chan_start(&es->c, cmd) != 0) {
		char err[sizeof ss->err + 512];

		snprintf(err, sizeof err, "cannot run %s on %s: %s", name,
		         ss->label, ss->err);
		vk_close(&es->s);
		return vk_pushfail(L, "%s", err);
	}
	vk_open(&es->s);
	return 1;
}
