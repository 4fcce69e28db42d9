/*
 * The TCP connection under a session (ssh/ssh.h): each address of the
 * host tried in turn, non-blocking, until the deadline or an
 * interruption; the socket, once connected, is the session's (ss->fd).
 */
#define _GNU_SOURCE /* TCP_USER_TIMEOUT */

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base.h"
#include "ssh/ssh.h"
#include "stream.h"

/* Connect the non-blocking fd to ai's address: 0, or an errno
 * (ETIMEDOUT at the deadline, EINTR once interrupted). */
static int connect_within(int fd, const struct addrinfo *ai, double deadline)
{
	int err = 0;
	socklen_t elen = sizeof err;

	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	err = errno;
	while (err == EINPROGRESS || err == EINTR) {
		struct pollfd p = {fd, POLLOUT, 0};
		double left = deadline - vk_clock();

		if (vk_interrupted || left <= 0) {
			err = vk_interrupted ? EINTR : ETIMEDOUT;
			break;
		}
		if (poll(&p, 1, left > 1 ? 1000 : (int)(left * 1000) + 1) > 0) {
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
			break;
		}
	}
	return err;
}

/* Try the addresses in turn until one connects (ss->fd, ss->addr);
 * why the last one failed in why. */
static void connect_first(struct session *ss, const struct conn_opts *o,
                          struct addrinfo *res, double deadline, char *why,
                          size_t whylen)
{
	struct addrinfo *ai;

	for (ai = res; ai && ss->fd < 0; ai = ai->ai_next) {
		int fd = socket(ai->ai_family,
		                ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		                ai->ai_protocol);
		int err;

		if (fd < 0) {
			snprintf(why, whylen, "%s", strerror(errno));
			continue;
		}
		err = connect_within(fd, ai, deadline);
		if (err == 0) {
			ss->fd = fd;
			if (getnameinfo(ai->ai_addr, ai->ai_addrlen, ss->addr,
			                sizeof ss->addr, NULL, 0, NI_NUMERICHOST) != 0)
				snprintf(ss->addr, sizeof ss->addr, "%s", o->host);
		} else {
			snprintf(why, whylen, "%s",
			         err == ETIMEDOUT ? "timed out" : strerror(err));
			close(fd);
			if (vk_interrupted)
				break;
		}
	}
}

int connect_tcp(struct session *ss, const struct conn_opts *o,
                double deadline)
{
	struct addrinfo hints, *res = NULL;
	char port[16], why[256] = "no address";
	int rc;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof port, "%d", o->port);
	rc = getaddrinfo(o->host, port, &hints, &res);
	if (rc != 0)
		return sess_fail(ss, "connect", "cannot connect to %s: %s",
		                 ss->label, gai_strerror(rc));
	connect_first(ss, o, res, deadline, why, sizeof why);
	freeaddrinfo(res);
	if (ss->fd < 0)
		return sess_fail(ss, vk_interrupted ? "interrupted" : "connect",
		                 "cannot connect to %s (port %d): %s", ss->label,
		                 o->port, vk_interrupted ? "interrupted" : why);
	if (o->keepalive > 0) {
		/* unacknowledged data (a keepalive) for this long: a dead peer */
		unsigned int ms = (unsigned int)o->keepalive * 3000;
		int one = 1;

		setsockopt(ss->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
		setsockopt(ss->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	return 0;
}
