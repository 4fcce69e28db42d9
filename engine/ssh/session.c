/*
 * The session (ssh/ssh.h): who owns it, why its last step failed, the
 * wait on its socket (keepalives, deadlines, interruptions), the SSH
 * connection made on a TCP one, ssh.connect's steps in order, and the
 * release of it all.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base.h"
#include "ssh/ssh.h"
#include "stream.h"

/* What vakap asks of the server, best first: AEAD ciphers (no separate
 * MAC), then CTR with encrypt-then-MAC. */
#define CIPHERS "aes128-gcm@openssh.com,aes256-gcm@openssh.com," \
	"chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr"
#define MACS "hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com," \
	"hmac-sha2-256,hmac-sha2-512,hmac-sha1-etm@openssh.com,hmac-sha1"

void sess_init(struct session *ss, const struct conn_opts *o)
{
	memset(ss, 0, sizeof *ss);
	ss->fd = -1;
	ss->owner = getpid();
	snprintf(ss->label, sizeof ss->label, "%s", o->label);
	if (o->port == 22)
		snprintf(ss->name, sizeof ss->name, "%s", o->host);
	else
		snprintf(ss->name, sizeof ss->name, "[%s]:%d", o->host, o->port);
}

int sess_ours(const struct session *ss)
{
	return ss->owner == getpid();
}

int sess_fail(struct session *ss, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ss->err, sizeof ss->err, fmt, ap);
	va_end(ap);
	ss->code = code;
	return -1;
}

int sess_wrap(struct session *ss, const char *what)
{
	char tmp[sizeof ss->err];

	memcpy(tmp, ss->err, sizeof tmp);
	if (snprintf(ss->err, sizeof ss->err, "%s %s: %s", what, ss->label,
	             tmp) >= (int)sizeof ss->err)
		ss->err[sizeof ss->err - 1] = '\0'; /* cut, as snprintf does */
	return -1;
}

const char *sess_error(struct session *ss)
{
	const char *msg;

	if (ss->ssh == NULL)
		return "no session";
	msg = ssh_get_error(ss->ssh);
	return msg && *msg ? msg : "unknown error";
}

int sess_broken(struct session *ss)
{
	return ss->ssh == NULL || ss->lost[0] != '\0' ||
	       (ssh_get_status(ss->ssh) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0;
}

int sess_lost(struct session *ss)
{
	if (ss->lost[0] == '\0') {
		static const char prefix[] = "Socket error: ";
		const char *why = sess_error(ss);

		if (strncmp(why, prefix, sizeof prefix - 1) == 0)
			why += sizeof prefix - 1;
		if (strcmp(why, "disconnected") == 0)
			why = "closed by the server";
		else if (strcmp(why, strerror(ECONNRESET)) == 0)
			why = "reset by the server";
		else if (strcmp(why, strerror(ETIMEDOUT)) == 0)
			why = "timed out";
		snprintf(ss->lost, sizeof ss->lost, "connection lost (%s)", why);
	}
	return sess_fail(ss, "connection", "%s", ss->lost);
}

/*
 * Wait until the socket is ready for what libssh waits on: always
 * something to read, and room to write when it holds unsent data.
 * Keepalives are sent from here once logged in, and a server that
 * answers none of them is dropped (alive.c).
 */
int sess_wait(struct session *ss, double deadline, int interruptible)
{
	struct pollfd p = {ss->fd, POLLIN, 0};
	int timeout = 1000, alive;
	double now = vk_clock();

	if (interruptible && vk_stopping())
		return sess_fail(ss, "interrupted", "interrupted");
	if (sess_broken(ss))
		return sess_lost(ss); /* nothing more will come */
	alive = alive_check(ss, now, &timeout);
	if (alive != 0)
		return alive > 0 ? 0 : -1; /* libssh has something to read first */
	if (sess_broken(ss))
		return sess_lost(ss); /* sending the keepalive failed */
	if (ssh_get_status(ss->ssh) & SSH_WRITE_PENDING)
		p.events |= POLLOUT;
	if (deadline > 0) {
		double left = deadline - now;

		if (left <= 0)
			return sess_fail(ss, "timeout", "timed out");
		if (left * 1000 < timeout)
			timeout = (int)(left * 1000) + 1;
	}
	if (poll(&p, 1, timeout) < 0 && errno != EINTR)
		return sess_fail(ss, "connection", "poll: %s", strerror(errno));
	if (interruptible && vk_stopping())
		return sess_fail(ss, "interrupted", "interrupted");
	return 0;
}

/*
 * libssh's options for the session, on the TCP connection in ss->fd.
 * libssh's host is only a name for its own use: the numeric address (it
 * refuses some names getaddrinfo takes, my_host).  Its known_hosts files
 * are none, so that it keeps prefs, the order of host key methods, and
 * so is its ~/.ssh, with a user name for scan: none of its defaults from
 * there is used, and with these it needs no home directory or user name
 * of the uid running vakap.  0, or -1 (sess_error says why).
 */
static int configure(struct session *ss, const char *user, const char *prefs)
{
	int nolog = SSH_LOG_NOLOG;
	bool no = false;

	if (ssh_options_set(ss->ssh, SSH_OPTIONS_LOG_VERBOSITY, &nolog) != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_PROCESS_CONFIG, &no) != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_HOST, ss->addr) != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_FD, &ss->fd) != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_USER,
	                    user ? user : "vakap") != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_SSH_DIR, "/dev/null") != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_KNOWNHOSTS, "/dev/null") != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_GLOBAL_KNOWNHOSTS,
	                    "/dev/null") != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_HOSTKEYS, prefs) != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_CIPHERS_C_S, CIPHERS) != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_CIPHERS_S_C, CIPHERS) != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_HMAC_C_S, MACS) != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_HMAC_S_C, MACS) != 0)
		return -1;
	ssh_set_blocking(ss->ssh, 0);
	ssh_set_counters(ss->ssh, NULL, &ss->counted); /* alive.c */
	ssh_session_set_disconnect_message(ss->ssh, "vakap is done");
	return 0;
}

int sess_establish(struct session *ss, const struct conn_opts *o,
                   double deadline)
{
	char prefs[512] = "";
	int rc;

	if (connect_tcp(ss, o, deadline) != 0)
		return -1;
	ss->ssh = ssh_new();
	if (ss->ssh == NULL)
		return sess_fail(ss, "ssh", "cannot start an SSH session: out of memory");
	if (known_prefs(ss, o, prefs, sizeof prefs) != 0)
		return -1;
	if (configure(ss, o->user, prefs) != 0)
		return sess_fail(ss, "ssh", "cannot set up an SSH session with %s: %s",
		                 ss->label, sess_error(ss));
	ss->handed = 1;
	RETRY(ss, deadline, 1, rc, SSH_AGAIN, ssh_connect(ss->ssh));
	if (rc == SSH_AGAIN)
		return sess_wrap(ss, "SSH handshake with");
	if (rc != SSH_OK && hostkey_refused(ss) == 0)
		return sess_fail(ss, "ssh", "SSH handshake with %s failed: %s",
		                 ss->label, sess_error(ss));
	if (rc != SSH_OK)
		return -1; /* hostkey_refused says why */
	return hostkey_take(ss);
}

int sess_open(struct session *ss, const struct conn_opts *o, lua_State *L,
              int files_idx)
{
	double deadline = vk_clock() + o->timeout;
	struct known k;

	if (sess_establish(ss, o, deadline) != 0 ||
	    known_check(ss, o, &k) != 0 || known_verdict(ss, o, &k) != 0 ||
	    login_keys(ss, o->user, L, files_idx, deadline) != 0)
		return -1;
	ss->timeout = o->timeout;
	alive_start(ss, o->keepalive); /* keepalives from now on (sess_wait) */
	return 0;
}

/*
 * The TCP socket is ours until ssh_connect takes it (ss->handed; it takes
 * it at once, unless it cannot even apply its options: out of memory).
 * From then on libssh 0.10 closes it itself when the connection fails
 * and in ssh_free, but not in ssh_disconnect, which only lets go of it:
 * so it is closed here only when libssh has not closed it and will not.
 * In a process that did not open the session nothing is said on it:
 * ssh_free sends nothing, and closes this process's copy of the socket.
 */
void sess_release(struct session *ss)
{
	while (ss->chans)
		chan_release(ss->chans);
	ssh_key_free(ss->hostkey);
	ss->hostkey = NULL;
	if (ss->ssh) {
		int held = ss->handed && ssh_get_fd(ss->ssh) == ss->fd;

		if (ss->handed && !held)
			ss->fd = -1; /* libssh closed it when the connection failed */
		if (sess_ours(ss))
			ssh_disconnect(ss->ssh); /* says goodbye if it can, at once */
		else if (held)
			ss->fd = -1; /* ssh_free closes it */
		ssh_free(ss->ssh);
		ss->ssh = NULL;
	}
	if (ss->fd >= 0)
		close(ss->fd);
	ss->fd = -1;
}
