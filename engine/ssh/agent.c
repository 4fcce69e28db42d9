/*
 * The one question vakap asks ssh-agent itself (ssh/ssh.h): how many keys
 * it holds.  libssh logs in with the agent's keys (login.c calls
 * ssh_userauth_agent); this is only for the note that says why that
 * failed.
 *
 * Why by hand: libssh's ssh_userauth_agent answers SSH_AUTH_DENIED alike
 * when the agent cannot be reached, when it holds no keys, and when the
 * server refused every key it holds, and libssh 0.10 offers no call that
 * tells these apart or counts the agent's keys (its ssh_agent_* functions
 * are internal, not exported).  ssh_userauth_publickey_auto is no better:
 * it adds libssh's default key files and passphrase prompts, where vakap
 * tries only the files it was given and refuses an encrypted one with a
 * note.  So, to keep saying "cannot reach ssh-agent at PATH", "ssh-agent
 * holds no keys" or "ssh-agent: N keys refused", the count is asked here:
 * one REQUEST_IDENTITIES of OpenSSH's agent protocol, bounded by a
 * timeout (git log -S agent_key_count: written when vakap moved from
 * libssh2, whose agent API listed the keys).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "ssh/ssh.h"

/* The big-endian 32-bit number at p. */
static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Asked as OpenSSH's agent protocol asks: REQUEST_IDENTITIES (11), then
 * the count of the IDENTITIES_ANSWER (12); 3 seconds at most for each
 * send and receive. */
int agent_key_count(const char *path)
{
	static const unsigned char ask[5] = {0, 0, 0, 1, 11};
	struct timeval tv = {3, 0};
	struct sockaddr_un a;
	unsigned char ans[9];
	size_t got = 0, want = 4;
	int fd, n = -1;

	if (strlen(path) >= sizeof a.sun_path)
		return -1;
	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	memcpy(a.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    send(fd, ask, sizeof ask, MSG_NOSIGNAL) == (ssize_t)sizeof ask) {
		/* the length, then the type and the count it covers */
		while (got < want) {
			ssize_t r = recv(fd, ans + got, want - got, 0);

			if (r <= 0)
				break;
			got += (size_t)r;
			if (got == 4 && be32(ans) >= 5)
				want = sizeof ans;
		}
		if (got == sizeof ans && ans[4] == 12)
			n = be32(ans + 5) > 9999 ? 9999 : (int)be32(ans + 5);
	}
	close(fd);
	return n;
}
