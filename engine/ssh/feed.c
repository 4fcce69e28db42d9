/*
 * sess:feed's sink (ssh/ssh.h): a stream drained into a remote command's
 * standard input, on a channel of its own, within bounded memory.  The
 * command's output is kept like its errors and shown on failure; a
 * stream that fails stops the command (TERM) before it sees the end of
 * its input, so that it never takes a cut input for a whole one.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>

#include "base.h"
#include "ssh/ssh.h"
#include "stream.h"

struct feed {
	struct chan c;
	int write_failed; /* the command or the connection stopped taking input */
};

/* Between writes, which need no wait while the server's window and the
 * socket take them (and the input may come slowly): let libssh read what
 * has come, the answer to a keepalive among it, and ask whether the
 * server is still there (alive.c).  0, or -1 with ss->err. */
static int still_there(struct chan *c)
{
	struct session *ss = c->ss;
	int no_wait = 0;

	if (ssh_channel_poll(c->ch, 0) == SSH_ERROR || sess_broken(ss))
		return sess_lost(ss);
	return alive_check(ss, vk_clock(), &no_wait) < 0 ? -1 : 0;
}

/* Write to the command's stdin: libssh takes as much as the channel's
 * window allows, and sends what the socket takes.  What it could not
 * send yet goes out before more is given to it, so that it holds at most
 * one chunk whatever the window; a wait only when nothing can move. */
static int feed_write(void *ctx, const void *buf, size_t n, char *errbuf,
                      size_t errlen)
{
	struct feed *f = ctx;
	struct chan *c = &f->c;
	const char *p = buf;

	while (n > 0) {
		struct session *ss = c->ss;
		int w;

		if (ss == NULL || c->ch == NULL) {
			snprintf(errbuf, errlen, "%s: its SSH session was closed",
			         c->name);
			return -1;
		}
		if (still_there(c) != 0) {
			f->write_failed = 1;
			snprintf(errbuf, errlen, "%s on %s: %s", c->name, ss->label,
			         ss->err);
			return -1;
		}
		if (ssh_get_status(ss->ssh) & SSH_WRITE_PENDING) {
			int rc = ssh_blocking_flush(ss->ssh, 0);

			if (rc == SSH_OK)
				continue; /* all sent: more can go */
			w = rc == SSH_ERROR ? SSH_ERROR : 0;
		} else if (c->closed)
			w = SSH_ERROR;
		else
			w = ssh_channel_write(c->ch, p,
			                      n > VK_CHUNK ? VK_CHUNK : (uint32_t)n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0) {
			f->write_failed = 1;
			if (sess_broken(ss)) {
				sess_lost(ss);
				snprintf(errbuf, errlen, "%s on %s: %s", c->name,
				         ss->label, ss->err);
			} else { /* the channel is closed: has it ended? */
				snprintf(errbuf, errlen, "%s on %s stopped reading its "
				         "input", c->name, ss->label);
			}
			return -1;
		}
		if (c->closed)
			continue; /* it came with the last call: say so above */
		if (sess_wait(ss, 0, 1) != 0) {
			snprintf(errbuf, errlen, "%s on %s: %s", c->name, ss->label,
			         ss->err);
			return -1;
		}
	}
	return 0;
}

/* After the whole input: end of file, then the command's end. */
static int feed_end(struct chan *c)
{
	struct session *ss = c->ss;

	/* SSH_AGAIN: queued, and sent as the socket takes it */
	if (ssh_channel_send_eof(c->ch) == SSH_ERROR)
		return sess_broken(ss) ? sess_lost(ss) :
		       sess_fail(ss, "ssh", "%s", sess_error(ss));
	return chan_finish(c);
}

int feed_run(lua_State *L, struct session *ss, const char *name,
             const char *cmd, struct vk_stream *s, int progress)
{
	struct feed f;
	char err[VK_TAIL + 1024];
	int rc;

	chan_init(&f.c, name);
	f.c.keep_stdout = 1;
	f.write_failed = 0;
	chan_link(&f.c, ss);
	if (chan_start(&f.c, cmd) != 0) {
		snprintf(err, sizeof err, "cannot run %s on %s: %s", f.c.name,
		         ss->label, ss->err);
		chan_release(&f.c);
		return vk_pushfail(L, "%s", err);
	}
	rc = vk_pump(L, s, feed_write, &f, progress, err, sizeof err);
	if (rc != 0 && !f.write_failed) {
		/* the stream failed: stopped before it sees an end of input */
		chan_release(&f.c);
		return vk_pushfail(L, "%s", err);
	}
	if (rc == 0 && f.c.ss && feed_end(&f.c) != 0) {
		snprintf(err, sizeof err, "%s on %s: %s", f.c.name, ss->label,
		         ss->err);
		rc = -1;
	} else if (rc != 0 && f.c.ss && f.c.ch) {
		/* it stopped taking input: has it said why? */
		chan_wait_end(&f.c, vk_clock() + CLEANUP_S, 0);
	}
	if (f.c.finished && chan_problem(&f.c, err, sizeof err))
		rc = -1;
	chan_release(&f.c);
	if (rc != 0)
		return vk_pushfail(L, "%s", err);
	lua_pushinteger(L, (lua_Integer)s->nbytes);
	return 1;
}
