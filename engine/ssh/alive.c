/*
 * Whether the server is still there (ssh/ssh.h), as OpenSSH's
 * ServerAliveInterval asks it: after each keepalive interval in which
 * the server said nothing, a keepalive that needs an answer (the global
 * request "keepalive@openssh.com" with want-reply: a server that does
 * not know it must still answer, with a failure); a connection whose
 * server has answered nothing, and said nothing else, for three
 * intervals since the first unanswered one is dropped.
 *
 * A kernel that still acknowledges what a stopped sshd does not read
 * keeps TCP quiet (TCP_USER_TIMEOUT, connect.c, notices only a peer that
 * does not even acknowledge): only an answer from sshd itself says it is
 * there.  What the server said is counted by libssh (ssh_set_counters:
 * each packet it has read); whatever it is, it is proof of life.
 *
 * libssh keeps one global request in flight: while the first keepalive
 * is unanswered, a later one only reads what has come, and once an
 * answer is in, the next call only takes it in: then it is called again
 * so that the keepalive goes out (the packets it sent are counted too).
 *
 * A drop is decided only on what has come in: the socket is looked at
 * first, and when it holds anything libssh has not read, the caller
 * lets libssh read it, and the question is asked again.
 */
#define _POSIX_C_SOURCE 200809L

#include <poll.h>
#include <stdio.h>

#include <libssh/server.h> /* ssh_send_keepalive: a client may send it too */

#include "base.h"
#include "ssh/ssh.h"

#define ALIVE_MISSES 3 /* intervals a keepalive may go unanswered */

void alive_start(struct session *ss, int keepalive)
{
	ss->keepalive = keepalive;
	ss->heard_packets = ss->counted.in_packets;
	ss->asked = 0;
	ss->asks = 0;
	ss->next_keepalive = vk_clock() + keepalive;
}

/* Whether the socket holds something libssh has not read. */
static int unread(struct session *ss)
{
	struct pollfd p = {ss->fd, POLLIN, 0};

	return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/* The server said nothing for too long: the connection is given up, and
 * every later use of the session says why (sess_broken, sess_lost). */
static int drop(struct session *ss, double now)
{
	snprintf(ss->lost, sizeof ss->lost, "no answer from the SSH server "
	         "for %d s (%d keepalive%s); connection dropped",
	         (int)(now - ss->asked + 0.5), ss->asks, ss->asks == 1 ? "" : "s");
	return sess_fail(ss, "connection", "%s", ss->lost);
}

/* Send a keepalive: 1 if libssh read something meanwhile. */
static int ask(struct session *ss, double now)
{
	uint64_t heard = ss->counted.in_packets, sent = ss->counted.out_packets;

	ssh_send_keepalive(ss->ssh);
	if (ss->counted.out_packets == sent && ss->counted.in_packets == heard)
		ssh_send_keepalive(ss->ssh); /* it only took the last answer in */
	if (ss->asked == 0)
		ss->asked = now;
	ss->asks++;
	ss->next_keepalive = now + ss->keepalive;
	return ss->counted.in_packets != heard;
}

int alive_check(struct session *ss, double now, int *timeout_ms)
{
	double limit, next;

	if (ss->keepalive <= 0)
		return 0;
	if (ss->counted.in_packets != ss->heard_packets) {
		ss->heard_packets = ss->counted.in_packets; /* it is there */
		ss->asked = 0;
		ss->asks = 0;
		ss->next_keepalive = now + ss->keepalive;
	}
	if (ss->asked > 0 && now >= ss->asked + ALIVE_MISSES * ss->keepalive)
		return unread(ss) ? 1 : drop(ss, now);
	if (now >= ss->next_keepalive && ask(ss, now))
		return 1;
	/* the next keepalive, or the end of the wait for an answer */
	next = ss->next_keepalive;
	limit = ss->asked + ALIVE_MISSES * ss->keepalive;
	if (ss->asked > 0 && limit < next)
		next = limit;
	if ((next - now) * 1000 < *timeout_ms)
		*timeout_ms = (int)((next - now) * 1000) + 1;
	return 0;
}
