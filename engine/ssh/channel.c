/*
 * A channel of a session (ssh/ssh.h): one remote command started on it,
 * what libssh reports of it as it reads the socket (stderr kept in a
 * bounded tail, the wrapper's pid taken out of it, exit status or
 * signal, close), the wait for its end, the message for a bad end, and
 * its release: a command that has not finished is stopped (TERM, on a
 * channel of its own) before the channel is freed.  exec.c and feed.c
 * read and write its data.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "ssh/ssh.h"
#include "stream.h"

/* Keep the end of what the command wrote on stderr; take the wrapper's
 * pid line out of it. */
static void keep_stderr(struct chan *c, const char *buf, size_t n)
{
	struct vk_tail *t = &c->tail;

	vk_tail_add(t, buf, n);
	if (c->pid == 0) {
		char *mark = strstr(t->buf, PID_MARK), *end;

		if (mark && (end = strchr(mark, '\n')) != NULL) {
			c->pid = strtol(mark + sizeof PID_MARK - 1, NULL, 10);
			if (c->pid <= 0)
				c->pid = -1;
			end++;
			memmove(mark, end, (size_t)(t->buf + t->len - end) + 1);
			t->len -= (size_t)(end - mark);
		}
	}
}

/*
 * What libssh reports of a channel as it reads the socket; nothing here
 * waits or calls libssh.  stderr (and a fed command's stdout) goes to the
 * tail as it comes, so that libssh holds nothing of it: a command's
 * stdout is all a read has to look for before a wait.  on_data returns
 * how much it took: 0 of what stays in libssh for a read.
 */
static int on_data(ssh_session s, ssh_channel ch, void *data, uint32_t len,
                   int is_stderr, void *userdata)
{
	struct chan *c = userdata;

	(void)s;
	(void)ch;
	if (!is_stderr && !c->keep_stdout)
		return 0;
	keep_stderr(c, data, len);
	return (int)len;
}

static void on_exit_status(ssh_session s, ssh_channel ch, int status,
                           void *userdata)
{
	struct chan *c = userdata;

	(void)s;
	(void)ch;
	c->exit_status = status;
	c->finished = 1;
}

static void on_exit_signal(ssh_session s, ssh_channel ch, const char *sig,
                           int core, const char *errmsg, const char *lang,
                           void *userdata)
{
	struct chan *c = userdata;

	(void)s;
	(void)ch;
	(void)core;
	(void)errmsg;
	(void)lang;
	snprintf(c->exit_signal, sizeof c->exit_signal, "%s",
	         sig && *sig ? sig : "?");
	c->finished = 1;
}

static void on_close(ssh_session s, ssh_channel ch, void *userdata)
{
	struct chan *c = userdata;

	(void)s;
	(void)ch;
	c->closed = 1;
}

void chan_init(struct chan *c, const char *name)
{
	memset(c, 0, sizeof *c);
	snprintf(c->name, sizeof c->name, "%s", name);
	ssh_callbacks_init(&c->cb);
	c->cb.userdata = c;
	c->cb.channel_data_function = on_data;
	c->cb.channel_exit_status_function = on_exit_status;
	c->cb.channel_exit_signal_function = on_exit_signal;
	c->cb.channel_close_function = on_close;
}

void chan_link(struct chan *c, struct session *ss)
{
	c->ss = ss;
	c->next = ss->chans;
	if (c->next)
		c->next->pprev = &c->next;
	c->pprev = &ss->chans;
	ss->chans = c;
}

static void chan_unlink(struct chan *c)
{
	if (c->pprev) {
		*c->pprev = c->next;
		if (c->next)
			c->next->pprev = c->pprev;
	}
	c->next = NULL;
	c->pprev = NULL;
}

/* A wait of chan_start failed: say for how long, at its deadline. */
static int start_failed(struct session *ss, const char *what)
{
	if (ss->code && strcmp(ss->code, "timeout") == 0)
		return sess_fail(ss, "timeout", "no answer from the SSH server "
		                 "in %g s %s", ss->timeout, what);
	return -1; /* ss->err says why */
}

/* Each answer awaited, the server's to the channel's opening and to the
 * command, and the wrapper's pid, comes within connect_timeout. */
int chan_start(struct chan *c, const char *cmd)
{
	struct session *ss = c->ss;
	double deadline = vk_clock() + ss->timeout;
	int rc;

	if (ss->lost[0])
		return sess_fail(ss, "connection", "%s", ss->lost);
	c->ch = ssh_channel_new(ss->ssh);
	if (c->ch == NULL)
		return sess_fail(ss, "ssh", "%s", sess_error(ss));
	ssh_set_channel_callbacks(c->ch, &c->cb);
	RETRY(ss, deadline, 1, rc, SSH_AGAIN, ssh_channel_open_session(c->ch));
	if (rc == SSH_OK)
		RETRY(ss, deadline, 1, rc, SSH_AGAIN,
		      ssh_channel_request_exec(c->ch, cmd));
	if (rc == SSH_AGAIN)
		return start_failed(ss, "to open a channel and start a command");
	if (rc != SSH_OK)
		return sess_broken(ss) ? sess_lost(ss) : sess_fail(ss, "ssh", "%s", sess_error(ss));
	/* started when its pid is known: from then on it can be stopped
	 * (or when it has said something else, or ended, without it) */
	while (c->pid == 0 && !c->closed) {
		rc = ssh_channel_poll(c->ch, 0);
		if (rc == SSH_ERROR)
			return sess_lost(ss);
		if (rc != 0 || c->pid != 0 || c->closed)
			break; /* output, or its end, or what came with the poll */
		if (sess_wait(ss, deadline, 1) != 0)
			return start_failed(ss, "for the command to start");
	}
	return 0;
}

/* ssh_channel_get_exit_status reads the socket while neither the exit
 * status nor the close is in, and does not wait: the session is
 * non-blocking. */
int chan_wait_end(struct chan *c, double deadline, int interruptible)
{
	struct session *ss = c->ss;

	for (;;) {
		if (c->finished || c->closed)
			return 0;
		ssh_channel_get_exit_status(c->ch);
		if (c->finished || c->closed)
			return 0;
		if (sess_wait(ss, deadline, interruptible) != 0)
			return -1;
	}
}

int chan_finish(struct chan *c)
{
	return chan_wait_end(c, 0, 1);
}

const char *chan_problem(struct chan *c, char *buf, size_t len)
{
	const char *tail = c->tail.buf, *host = c->ss ? c->ss->label : "?";
	size_t n = vk_tail_trimmed(&c->tail);

	if (!c->finished)
		snprintf(buf, len, "%s ended without an exit status on %s%s%.*s",
		         c->name, host, n ? ": " : "", (int)n, tail);
	else if (c->exit_signal[0])
		snprintf(buf, len, "%s was killed by signal %s on %s%s%.*s",
		         c->name, c->exit_signal, host, n ? ": " : "", (int)n, tail);
	else if (c->exit_status != 0)
		snprintf(buf, len, "%s exited with status %d on %s%s%.*s", c->name,
		         c->exit_status, host, n ? ": " : "", (int)n, tail);
	else
		return NULL;
	return buf;
}

/* Stop a command that has not finished: TERM to its process group (or to
 * it alone, if it leads none), on a channel of its own.  Bounded, and
 * not interrupted. */
static void stop_remote(struct chan *c)
{
	struct session *ss = c->ss;
	double deadline = vk_clock() + CLEANUP_S;
	ssh_channel k;
	char cmd[128], buf[256];
	int rc;

	if (c->pid <= 0 || c->finished || c->closed || sess_broken(ss))
		return;
	snprintf(cmd, sizeof cmd,
	         "kill -TERM -- -%ld 2>/dev/null || kill -TERM %ld 2>/dev/null",
	         c->pid, c->pid);
	k = ssh_channel_new(ss->ssh);
	if (k == NULL)
		return;
	RETRY(ss, deadline, 0, rc, SSH_AGAIN, ssh_channel_open_session(k));
	if (rc == SSH_OK)
		RETRY(ss, deadline, 0, rc, SSH_AGAIN, ssh_channel_request_exec(k, cmd));
	if (rc == SSH_OK) { /* until kill has ended */
		while ((rc = ssh_channel_read_nonblocking(k, buf, sizeof buf, 0)) > 0 ||
		       (rc == 0 && sess_wait(ss, deadline, 0) == 0))
			;
	}
	ssh_channel_free(k);
}

/* Freeing the channel, libssh sends the close, and forgets the channel
 * once the server has closed it too, or with the session.  In a process
 * that did not open the session nothing is said: libssh frees the
 * channel with the session. */
void chan_release(struct chan *c)
{
	struct session *ss = c->ss;

	if (ss != NULL && c->ch != NULL) {
		int ours = sess_ours(ss);

		if (ours)
			stop_remote(c);
		ssh_remove_channel_callbacks(c->ch, &c->cb);
		if (ours)
			ssh_channel_free(c->ch);
	}
	c->ch = NULL;
	chan_unlink(c);
	c->ss = NULL;
}

void chan_info(struct chan *c, lua_State *L)
{
	lua_pushstring(L, c->name);
	lua_setfield(L, -2, "command");
	lua_pushlstring(L, c->tail.buf, c->tail.len);
	lua_setfield(L, -2, "stderr");
	if (c->ss) {
		lua_pushstring(L, c->ss->label);
		lua_setfield(L, -2, "host");
	}
	if (c->finished && c->exit_signal[0]) {
		lua_pushstring(L, c->exit_signal);
		lua_setfield(L, -2, "signal");
	} else if (c->finished) {
		lua_pushinteger(L, c->exit_status);
		lua_setfield(L, -2, "exit_status");
	}
}

