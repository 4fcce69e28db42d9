/*
 * vakap.ssh: remote hosts over SSH (libssh).  A session is one
 * connection to one host, authenticated with the SSH agent or a key file
 * and checked against known_hosts; on it, a remote command's standard
 * output is a stream source (sess:exec) and a remote command's standard
 * input is fed from a stream (sess:feed), one channel each, like
 * proc.spawn and proc.feed: standard error is kept, bounded, and shown
 * when the command fails; the exit status (or signal, or a lost
 * connection) is the stream's end.
 *
 * Remote commands are argument lists; ssh.quote is the one place that
 * turns a list into a shell command line.  Each runs as
 *   sh -c 'echo vakap-pid:$$ >&2 && exec "$@"' sh ARGV...
 * so that a command abandoned before its end (a failed input, a closed
 * stream, an interruption) can be stopped with a signal before its input
 * closes, as proc does for local commands.
 *
 * The session is non-blocking: every wait is a poll on its socket that
 * notices vk_interrupted, sends keepalives, and gives up at a deadline
 * while connecting.  libssh keeps what it has read and decrypted in its
 * own buffers, so a wait comes only after a call that found nothing
 * there and let libssh read the socket.  Releasing is bounded too: each
 * step has a deadline, and is not interrupted.
 *
 * libssh's own configuration files, known_hosts checks and logging are
 * off: sshconfig.lua reads ~/.ssh/config, and the known_hosts files are
 * checked here, with libssh's parser for each line.
 */
#define _GNU_SOURCE /* TCP_USER_TIMEOUT, strsignal */

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <openssl/evp.h>

#include "engine.h"
#include "stream.h"

#define SESSION_MT "vakap.ssh.session"
#define CLEANUP_S 3.0     /* the bound on each step of a release */
#define PID_MARK "vakap-pid:"
#define RUN_SCRIPT "echo " PID_MARK "$$ >&2 && exec \"$@\""
#define RUN_SCRIPT_CWD "echo " PID_MARK "$$ >&2 && cd -- \"$1\" && shift && exec \"$@\""

/* What vakap asks of the server, best first: AEAD ciphers (no separate
 * MAC), then CTR with encrypt-then-MAC. */
#define CIPHERS "aes128-gcm@openssh.com,aes256-gcm@openssh.com," \
	"chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr"
#define MACS "hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com," \
	"hmac-sha2-256,hmac-sha2-512,hmac-sha1-etm@openssh.com,hmac-sha1"

struct chan;

struct session {
	ssh_session ssh;
	int fd;              /* ours: libssh does not close it */
	int keepalive;       /* seconds between keepalives, 0: none */
	double next_keepalive;
	ssh_key hostkey;     /* the server's */
	struct chan *chans;  /* channels open on it */
	char addr[64];       /* the numeric address connected to, for libssh */
	char label[300];     /* the host as the user named it, for messages */
	char name[300];      /* the known_hosts name: host or [host]:port */
	char err[1024];      /* why the last step failed */
	char lost[256];      /* why the connection was lost, once it was */
	const char *code;    /* its category */
	/* the server's host key */
	char keytype[40];
	char fingerprint[64];
	char key[2048];      /* base64 of the key blob */
};

static int sess_fail(struct session *ss, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int sess_fail(struct session *ss, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ss->err, sizeof ss->err, fmt, ap);
	va_end(ap);
	ss->code = code;
	return -1;
}

/* Put "what LABEL: " before the message in ss->err. */
static int sess_wrap(struct session *ss, const char *what)
{
	char tmp[sizeof ss->err];

	memcpy(tmp, ss->err, sizeof tmp);
	if (snprintf(ss->err, sizeof ss->err, "%s %s: %s", what, ss->label,
	             tmp) >= (int)sizeof ss->err)
		ss->err[sizeof ss->err - 1] = '\0'; /* cut, as snprintf does */
	return -1;
}

/* libssh's message for the session's last error */
static const char *ssh_error(struct session *ss)
{
	const char *msg;

	if (ss->ssh == NULL)
		return "no session";
	msg = ssh_get_error(ss->ssh);
	return msg && *msg ? msg : "unknown error";
}

/* Whether the connection is gone: closed, or failed. */
static int broken(struct session *ss)
{
	return ss->ssh == NULL ||
	       (ssh_get_status(ss->ssh) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0;
}

/* The connection failed: remember why, so that later commands say so at
 * once.  Returns -1 with ss->err set. */
static int lost(struct session *ss)
{
	if (ss->lost[0] == '\0') {
		static const char prefix[] = "Socket error: ";
		const char *why = ssh_error(ss);

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
 * deadline: on the monotonic clock, or 0 for none.  interruptible: give
 * up when vk_stopping() (not while releasing).  Keepalives (an
 * ignored message: TCP_USER_TIMEOUT notices when it is not even
 * acknowledged) are sent from here once logged in, while nothing else
 * waits to go out.  Returns 0 to try again, -1 with the reason in ss->err.
 */
static int wait_socket(struct session *ss, double deadline, int interruptible)
{
	int pending = ssh_get_status(ss->ssh) & SSH_WRITE_PENDING;
	struct pollfd p = {ss->fd, POLLIN, 0};
	int timeout = 1000;
	double now = vk_clock();

	if (interruptible && vk_stopping())
		return sess_fail(ss, "interrupted", "interrupted");
	if (broken(ss))
		return lost(ss); /* nothing more will come */
	if (pending)
		p.events |= POLLOUT;
	if (ss->keepalive > 0 && !pending) {
		if (now >= ss->next_keepalive) {
			if (ssh_send_ignore(ss->ssh, "") != SSH_OK)
				return lost(ss);
			ss->next_keepalive = now + ss->keepalive;
		}
		if ((ss->next_keepalive - now) * 1000 < timeout)
			timeout = (int)((ss->next_keepalive - now) * 1000) + 1;
	}
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

/* Call a libssh function until it stops answering `again` (SSH_AGAIN, or
 * SSH_AUTH_AGAIN for logging in) or the wait fails; its last answer. */
#define RETRY(ss, deadline, intr, rc, again, call)                            \
	while (((rc) = (call)) == (again) &&                                  \
	       wait_socket((ss), (deadline), (intr)) == 0)

/* ---- quoting ---- */

/* Append arg to b as one word of a POSIX sh command line: single-quoted,
 * each ' written as '\''. */
static void quote_word(luaL_Buffer *b, const char *arg, size_t len)
{
	size_t i;

	luaL_addchar(b, '\'');
	for (i = 0; i < len; i++) {
		if (arg[i] == '\'')
			luaL_addstring(b, "'\\''");
		else
			luaL_addchar(b, arg[i]);
	}
	luaL_addchar(b, '\'');
}

/* Push the command line of the list at idx (raises on misuse). */
static const char *push_quoted(lua_State *L, int idx)
{
	lua_Integer i, n;
	luaL_Buffer b;

	luaL_checktype(L, idx, LUA_TTABLE);
	n = (lua_Integer)lua_rawlen(L, idx);
	luaL_argcheck(L, n > 0, idx, "empty command");
	for (i = 1; i <= n; i++) {
		size_t len;
		const char *s;

		if (lua_rawgeti(L, idx, i) != LUA_TSTRING)
			luaL_error(L, "command argument %d is a %s, not a string",
			           (int)i, luaL_typename(L, -1));
		s = lua_tolstring(L, -1, &len);
		if (memchr(s, '\0', len) != NULL)
			luaL_error(L, "command argument %d contains a NUL byte",
			           (int)i);
		lua_pop(L, 1);
	}
	luaL_buffinit(L, &b);
	for (i = 1; i <= n; i++) {
		size_t len;
		const char *s;

		lua_rawgeti(L, idx, i);
		s = lua_tolstring(L, -1, &len);
		lua_pop(L, 1); /* still in the table */
		if (i > 1)
			luaL_addchar(&b, ' ');
		quote_word(&b, s, len);
	}
	luaL_pushresult(&b);
	return lua_tostring(L, -1);
}

/* lua: ssh.quote(argv) -> the POSIX sh command line running argv */
static int l_quote(lua_State *L)
{
	push_quoted(L, 1);
	return 1;
}

/*
 * Push the list a remote command runs as: the wrapper that reports its
 * pid and changes to cwd, env -u/NAME=value for the env table, then argv
 * (the table at argv_idx).  opts_idx: {cwd=, env=} or nil.
 */
static void push_remote_argv(lua_State *L, int argv_idx, int opts_idx)
{
	const char *cwd = NULL;
	lua_Integer n = 0, i;
	int env = 0;

	luaL_checktype(L, argv_idx, LUA_TTABLE);
	if (!lua_isnoneornil(L, opts_idx)) {
		luaL_checktype(L, opts_idx, LUA_TTABLE);
		if (lua_getfield(L, opts_idx, "cwd") != LUA_TNIL)
			cwd = luaL_checkstring(L, -1);
		lua_pop(L, 1); /* kept alive by the options */
		if (lua_getfield(L, opts_idx, "env") != LUA_TNIL) {
			luaL_checktype(L, -1, LUA_TTABLE);
			env = lua_gettop(L);
		} else {
			lua_pop(L, 1);
		}
	}
	lua_newtable(L);
	lua_pushstring(L, "sh");
	lua_rawseti(L, -2, ++n);
	lua_pushstring(L, "-c");
	lua_rawseti(L, -2, ++n);
	lua_pushstring(L, cwd ? RUN_SCRIPT_CWD : RUN_SCRIPT);
	lua_rawseti(L, -2, ++n);
	lua_pushstring(L, "sh");
	lua_rawseti(L, -2, ++n);
	if (cwd) {
		lua_pushstring(L, cwd);
		lua_rawseti(L, -2, ++n);
	}
	if (env) {
		lua_pushstring(L, "env");
		lua_rawseti(L, -2, ++n);
		lua_pushnil(L);
		while (lua_next(L, env)) {
			if (lua_type(L, -2) != LUA_TSTRING)
				luaL_error(L, "env: names must be strings");
			if (lua_toboolean(L, -1) == 0) {
				lua_pushstring(L, "-u");
				lua_rawseti(L, -4, ++n);
				lua_pushvalue(L, -2);
				lua_rawseti(L, -4, ++n);
			} else if (lua_type(L, -1) == LUA_TSTRING) {
				lua_pushfstring(L, "%s=%s", lua_tostring(L, -2),
				                lua_tostring(L, -1));
				lua_rawseti(L, -4, ++n);
			} else {
				luaL_error(L, "env: %s must be a string or false",
				           lua_tostring(L, -2));
			}
			lua_pop(L, 1);
		}
		lua_remove(L, env);
	}
	for (i = 1; i <= (lua_Integer)lua_rawlen(L, argv_idx); i++) {
		lua_rawgeti(L, argv_idx, i);
		lua_rawseti(L, -2, ++n);
	}
}

/* ---- fingerprints ---- */

/* "SHA256:" and the unpadded base64 of the SHA-256 of blob, as OpenSSH
 * shows it. */
static void fingerprint(const unsigned char *blob, size_t len, char *out,
                        size_t outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	unsigned char b64[64];
	int n;

	EVP_Digest(blob, len, md, &mdlen, EVP_sha256(), NULL);
	n = EVP_EncodeBlock(b64, md, (int)mdlen);
	while (n > 0 && b64[n - 1] == '=')
		n--;
	snprintf(out, outlen, "SHA256:%.*s", n, (const char *)b64);
}

/* The bytes of base64 text (malloc'd, their count in *len), or NULL. */
static unsigned char *unbase64(const char *b64, size_t *len)
{
	size_t n = strlen(b64);
	unsigned char *blob;
	int got, pad;

	if (n == 0 || n % 4 != 0 || (blob = malloc(n)) == NULL)
		return NULL;
	pad = (b64[n - 1] == '=') + (b64[n - 2] == '=');
	got = EVP_DecodeBlock(blob, (const unsigned char *)b64, (int)n);
	if (got < pad) {
		free(blob);
		return NULL;
	}
	*len = (size_t)(got - pad);
	return blob;
}

/* The type name a key blob starts with ("ssh-ed25519"). */
static void blob_type(const unsigned char *blob, size_t len, char *out,
                      size_t outlen)
{
	size_t n;

	snprintf(out, outlen, "unknown");
	if (len < 4)
		return;
	n = (size_t)blob[0] << 24 | (size_t)blob[1] << 16 |
	    (size_t)blob[2] << 8 | blob[3];
	if (n > 0 && n < outlen && n <= len - 4) {
		memcpy(out, blob + 4, n);
		out[n] = '\0';
	}
}

/* The fingerprint of a public key, as above. */
static void key_fingerprint(const ssh_key key, char *out, size_t outlen)
{
	char *b64 = NULL;
	unsigned char *blob;
	size_t len;

	snprintf(out, outlen, "(unreadable key)");
	if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK)
		return;
	if ((blob = unbase64(b64, &len)) != NULL)
		fingerprint(blob, len, out, outlen);
	free(blob);
	ssh_string_free_char(b64);
}

/* The key types vakap knows, in OpenSSH's order of preference. */
static const struct keytype {
	const char *name;
	const char *methods; /* host key methods using it */
} keytypes[] = {
	{"ssh-ed25519", "ssh-ed25519"},
	{"ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"},
	{"ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384"},
	{"ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521"},
	{"ssh-rsa", "rsa-sha2-512,rsa-sha2-256,ssh-rsa"},
	{NULL, NULL},
};

/* Append to out each name of the comma-separated list that out has not
 * yet. */
static void add_methods(char *out, size_t len, const char *list)
{
	const char *p = list;

	while (*p) {
		size_t n = strcspn(p, ","), used = strlen(out);
		const char *w;
		int dup = 0;

		for (w = out; *w && !dup; w += strcspn(w, ","), w += *w == ',')
			dup = strncmp(w, p, n) == 0 && (w[n] == ',' || w[n] == '\0');
		if (!dup)
			snprintf(out + used, len - used, "%s%.*s", used ? "," : "",
			         (int)n, p);
		p += n;
		p += *p == ',';
	}
}

/* ---- known_hosts ---- */

enum { HOST_UNKNOWN, HOST_KNOWN, HOST_CHANGED };

struct known {
	int status;
	char file[512];        /* where the key (or the other key) is */
	char old_fingerprint[64];
	unsigned held;         /* the keytypes the files hold for the host */
	char types[256];       /* host key methods to prefer for it, in order */
};

/*
 * Look the server's key (ss->hostkey, of type ss->keytype) up in one
 * known_hosts file: only entries for ss->name and of the same key type
 * count, the first other key of that type makes the host CHANGED (unless
 * a later file knows it).  probe_only: only note in k->held the key
 * types the file holds for ss->name.  Comments, marker lines
 * (@cert-authority, @revoked) and lines libssh cannot parse are passed
 * over.  0, or -1 when the file exists but cannot be read.
 */
static int check_known_file(struct session *ss, const char *path,
                            struct known *k, int probe_only)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	if (f == NULL) {
		if (errno == ENOENT)
			return 0;
		return sess_fail(ss, "known_hosts", "cannot read %s: %s", path,
		                 strerror(errno));
	}
	while (k->status != HOST_KNOWN && (len = getline(&line, &cap, f)) > 0) {
		struct ssh_knownhosts_entry *e = NULL;
		char *p = line + strspn(line, " \t"), *tab;
		const char *type;
		unsigned i;

		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (*p == '@' || *p == '#' || *p == '\0')
			continue;
		while ((tab = strchr(p, '\t')) != NULL)
			*tab = ' '; /* libssh splits at spaces only */
		if (ssh_known_hosts_parse_line(ss->name, p, &e) != SSH_OK) {
			ssh_knownhosts_entry_free(e);
			continue; /* another host's, or unreadable */
		}
		type = ssh_key_type_to_char(ssh_key_type(e->publickey));
		if (type == NULL) {
			/* not a key type vakap knows */
		} else if (probe_only) {
			for (i = 0; keytypes[i].name; i++)
				if (strcmp(keytypes[i].name, type) == 0)
					k->held |= 1u << i;
		} else if (strcmp(type, ss->keytype) != 0) {
			/* another type: says nothing of this key */
		} else if (ssh_key_cmp(e->publickey, ss->hostkey,
		                       SSH_KEY_CMP_PUBLIC) == 0) {
			k->status = HOST_KNOWN;
			snprintf(k->file, sizeof k->file, "%s", path);
		} else if (k->status == HOST_UNKNOWN) {
			k->status = HOST_CHANGED;
			snprintf(k->file, sizeof k->file, "%s", path);
			key_fingerprint(e->publickey, k->old_fingerprint,
			                sizeof k->old_fingerprint);
		}
		ssh_knownhosts_entry_free(e);
	}
	free(line);
	fclose(f);
	return 0;
}

/* The paths of the string or list at idx (at most MAX_KNOWN_FILES). */
#define MAX_KNOWN_FILES 8
static int known_files(lua_State *L, int idx, const char **paths)
{
	int n = 0;

	if (lua_type(L, idx) == LUA_TSTRING) {
		paths[n++] = lua_tostring(L, idx);
	} else if (lua_istable(L, idx)) {
		lua_Integer i, len = (lua_Integer)lua_rawlen(L, idx);

		for (i = 1; i <= len && n < MAX_KNOWN_FILES; i++) {
			lua_rawgeti(L, idx, i);
			if (lua_type(L, -1) != LUA_TSTRING)
				luaL_error(L, "known_hosts[%d] is not a string", (int)i);
			paths[n++] = lua_tostring(L, -1);
			lua_pop(L, 1); /* kept alive by the table */
		}
	} else if (!lua_isnil(L, idx)) {
		luaL_error(L, "known_hosts must be a path or a list of paths");
	}
	return n;
}

/*
 * Look the server's key up in the files; with probe_only, only find
 * which key types the files hold for ss->name, for the preference of
 * host key methods.  0, or -1 with ss->err.
 */
static int check_known(struct session *ss, const char *const *files, int nfiles,
                       struct known *k, int probe_only)
{
	int i;

	memset(k, 0, sizeof *k);
	k->status = HOST_UNKNOWN;
	for (i = 0; i < nfiles && k->status != HOST_KNOWN; i++)
		if (check_known_file(ss, files[i], k, probe_only) != 0)
			return -1;
	for (i = 0; keytypes[i].name; i++)
		if (k->held & 1u << i)
			add_methods(k->types, sizeof k->types, keytypes[i].methods);
	return 0;
}

/* ---- connecting ---- */

struct conn_opts {
	const char *host;
	int port;
	const char *user;
	const char *label;
	double timeout;
	int keepalive;
	const char *files[MAX_KNOWN_FILES];
	int nfiles;
};

/* A TCP connection to host:port within the deadline; 0, or -1 with ss->err. */
static int tcp_connect(struct session *ss, const struct conn_opts *o,
                       double deadline)
{
	struct addrinfo hints, *res = NULL, *ai;
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
	for (ai = res; ai && ss->fd < 0; ai = ai->ai_next) {
		int fd = socket(ai->ai_family,
		                ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		                ai->ai_protocol);
		int err = 0;
		socklen_t elen = sizeof err;

		if (fd < 0) {
			snprintf(why, sizeof why, "%s", strerror(errno));
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
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
		}
		if (err == 0) {
			ss->fd = fd;
			if (getnameinfo(ai->ai_addr, ai->ai_addrlen, ss->addr,
			                sizeof ss->addr, NULL, 0, NI_NUMERICHOST) != 0)
				snprintf(ss->addr, sizeof ss->addr, "%s", o->host);
		} else {
			snprintf(why, sizeof why, "%s",
			         err == ETIMEDOUT ? "timed out" : strerror(err));
			close(fd);
			if (vk_interrupted)
				break;
		}
	}
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

/* Take the server's host key: its type, fingerprint and base64 text.
 * 0, or -1 with ss->err. */
static int take_hostkey(struct session *ss)
{
	char *b64 = NULL;
	unsigned char *blob = NULL;
	size_t len = 0;
	int ok;

	ok = ssh_get_server_publickey(ss->ssh, &ss->hostkey) == SSH_OK &&
	     ssh_pki_export_pubkey_base64(ss->hostkey, &b64) == SSH_OK &&
	     strlen(b64) < sizeof ss->key && (blob = unbase64(b64, &len)) != NULL;
	if (ok) {
		memcpy(ss->key, b64, strlen(b64) + 1);
		blob_type(blob, len, ss->keytype, sizeof ss->keytype);
		fingerprint(blob, len, ss->fingerprint, sizeof ss->fingerprint);
	}
	free(blob);
	ssh_string_free_char(b64);
	return ok ? 0 : sess_fail(ss, "ssh", "%s sent no usable host key",
	                          ss->label);
}

/* Connect and take the server's host key, preferring the key types
 * known_hosts holds for it.  0, or -1 with ss->err. */
static int establish(struct session *ss, const struct conn_opts *o,
                     double deadline)
{
	struct known probe;
	const struct keytype *t;
	char prefs[512] = "";
	int rc, nolog = SSH_LOG_NOLOG;
	bool no = false;

	if (tcp_connect(ss, o, deadline) != 0)
		return -1;
	ss->ssh = ssh_new();
	if (ss->ssh == NULL)
		return sess_fail(ss, "ssh", "cannot start an SSH session: out of memory");
	if (check_known(ss, o->files, o->nfiles, &probe, 1) != 0)
		return -1;
	add_methods(prefs, sizeof prefs, probe.types);
	for (t = keytypes; t->name; t++)
		add_methods(prefs, sizeof prefs, t->methods);
	/* libssh's host is only a name for its own use: the numeric address
	 * (it refuses some names getaddrinfo takes, my_host).  Its known_hosts
	 * files are none, so that it keeps this order of host key methods, and
	 * so is its ~/.ssh, with a user name for scan: none of its defaults
	 * from there is used, and with these it needs no home directory or
	 * user name of the uid running vakap. */
	if (ssh_options_set(ss->ssh, SSH_OPTIONS_LOG_VERBOSITY, &nolog) != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_PROCESS_CONFIG, &no) != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_HOST, ss->addr) != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_FD, &ss->fd) != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_USER,
	                    o->user ? o->user : "vakap") != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_SSH_DIR, "/dev/null") != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_KNOWNHOSTS, "/dev/null") != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_GLOBAL_KNOWNHOSTS,
	                    "/dev/null") != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_HOSTKEYS, prefs) != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_CIPHERS_C_S, CIPHERS) != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_CIPHERS_S_C, CIPHERS) != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_HMAC_C_S, MACS) != 0 ||
	    ssh_options_set(ss->ssh, SSH_OPTIONS_HMAC_S_C, MACS) != 0)
		return sess_fail(ss, "ssh", "cannot set up an SSH session with %s: %s",
		                 ss->label, ssh_error(ss));
	ssh_set_blocking(ss->ssh, 0);
	ssh_session_set_disconnect_message(ss->ssh, "vakap is done");
	RETRY(ss, deadline, 1, rc, SSH_AGAIN, ssh_connect(ss->ssh));
	if (rc == SSH_AGAIN)
		return sess_wrap(ss, "SSH handshake with");
	if (rc != SSH_OK)
		return sess_fail(ss, "ssh", "SSH handshake with %s failed: %s",
		                 ss->label, ssh_error(ss));
	return take_hostkey(ss);
}

/* ---- authentication ---- */

/* Whether the private key file at path is encrypted (so needs the agent);
 * -1 when it cannot be read (errno set). */
static int key_encrypted(const char *path)
{
	static const char openssh[] = "-----BEGIN OPENSSH PRIVATE KEY-----";
	char text[8192], b64[200];
	unsigned char raw[160];
	size_t n = 0, m = 0;
	const char *p;
	FILE *f = fopen(path, "r");
	int dec;

	if (f == NULL)
		return -1;
	n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	if (strstr(text, "Proc-Type: 4,ENCRYPTED") ||
	    strstr(text, "-----BEGIN ENCRYPTED PRIVATE KEY-----"))
		return 1; /* PEM, legacy or PKCS#8 */
	p = strstr(text, openssh);
	if (p == NULL)
		return 0;
	/* openssh-key-v1\0, then the cipher's name: "none" when clear */
	for (p += sizeof openssh - 1; *p && m < sizeof b64 - 1 && *p != '-'; p++)
		if (*p != '\n' && *p != '\r')
			b64[m++] = *p;
	m -= m % 4;
	b64[m] = '\0';
	dec = EVP_DecodeBlock(raw, (unsigned char *)b64, (int)m);
	if (dec < 19 || memcmp(raw, "openssh-key-v1", 15) != 0)
		return 0;
	n = (size_t)raw[15] << 24 | (size_t)raw[16] << 16 | (size_t)raw[17] << 8 |
	    raw[18];
	return !(n == 4 && dec >= 23 && memcmp(raw + 19, "none", 4) == 0);
}

static void note(char *notes, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void note(char *notes, size_t len, const char *fmt, ...)
{
	size_t used = strlen(notes);
	va_list ap;

	if (used + 3 >= len)
		return;
	if (used) {
		memcpy(notes + used, "; ", 3);
		used += 2;
	}
	va_start(ap, fmt);
	vsnprintf(notes + used, len - used, fmt, ap);
	va_end(ap);
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* How many keys the ssh-agent at path holds (asked as OpenSSH's agent
 * protocol asks: REQUEST_IDENTITIES, then the count of the answer), or
 * -1 when it cannot be reached or does not answer in time. */
static int agent_key_count(const char *path)
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

/* Try the keys of the agent; 1 if one was accepted, 0 if none, -1 on a
 * failure of the connection. */
static int auth_agent(struct session *ss, double deadline, char *notes,
                      size_t nlen)
{
	const char *sock = getenv("SSH_AUTH_SOCK");
	int n, rc;

	if (sock == NULL) {
		note(notes, nlen, "no ssh-agent (SSH_AUTH_SOCK is not set)");
		return 0;
	}
	n = agent_key_count(sock);
	if (n < 0) {
		note(notes, nlen, "cannot reach ssh-agent at %s", sock);
		return 0;
	}
	if (n == 0) {
		note(notes, nlen, "ssh-agent holds no keys");
		return 0;
	}
	RETRY(ss, deadline, 1, rc, SSH_AUTH_AGAIN,
	      ssh_userauth_agent(ss->ssh, NULL));
	if (rc == SSH_AUTH_SUCCESS)
		return 1;
	if (rc == SSH_AUTH_AGAIN)
		return -1; /* ss->err says why */
	if (rc == SSH_AUTH_ERROR && broken(ss))
		return sess_fail(ss, "auth", "logging in to %s: %s", ss->label,
		                 ssh_error(ss));
	if (rc == SSH_AUTH_ERROR)
		note(notes, nlen, "ssh-agent: %s", ssh_error(ss));
	else
		note(notes, nlen, "ssh-agent: %d key%s refused", n,
		     n == 1 ? "" : "s");
	return 0;
}

/* The names of the login methods in the mask, as the server lists them. */
static const char *method_names(int mask, char *buf, size_t len)
{
	static const struct {
		int bit;
		const char *name;
	} names[] = {
		{SSH_AUTH_METHOD_PASSWORD, "password"},
		{SSH_AUTH_METHOD_INTERACTIVE, "keyboard-interactive"},
		{SSH_AUTH_METHOD_HOSTBASED, "hostbased"},
		{SSH_AUTH_METHOD_GSSAPI_MIC, "gssapi-with-mic"},
	};
	size_t i, used = 0;

	buf[0] = '\0';
	for (i = 0; i < sizeof names / sizeof names[0] && used < len; i++)
		if (mask & names[i].bit)
			used += (size_t)snprintf(buf + used, len - used, "%s%s",
			                         used ? "," : "", names[i].name);
	return buf[0] ? buf : "nothing";
}

/* Log in with the agent, then each key file that is not encrypted. */
static int authenticate(struct session *ss, const char *user, lua_State *L,
                        int files_idx, double deadline)
{
	char notes[1024] = "", offered[128];
	lua_Integer i, n;
	int rc, methods;

	RETRY(ss, deadline, 1, rc, SSH_AUTH_AGAIN,
	      ssh_userauth_none(ss->ssh, NULL));
	if (rc == SSH_AUTH_SUCCESS)
		return 0; /* "none" was enough */
	if (rc == SSH_AUTH_AGAIN)
		return sess_wrap(ss, "logging in to");
	if (rc == SSH_AUTH_ERROR)
		return sess_fail(ss, "auth", "logging in to %s: %s", ss->label,
		                 ssh_error(ss));
	methods = ssh_userauth_list(ss->ssh, NULL);
	if (!(methods & SSH_AUTH_METHOD_PUBLICKEY))
		return sess_fail(ss, "auth", "cannot log in to %s as %s: the server "
		                 "takes no keys (it offers: %s)", ss->label, user,
		                 method_names(methods, offered, sizeof offered));
	rc = auth_agent(ss, deadline, notes, sizeof notes);
	if (rc != 0)
		return rc > 0 ? 0 : -1;
	n = lua_istable(L, files_idx) ? (lua_Integer)lua_rawlen(L, files_idx) : 0;
	for (i = 1; i <= n; i++) {
		ssh_key key = NULL;
		const char *path;
		int enc;

		lua_rawgeti(L, files_idx, i);
		path = lua_tostring(L, -1);
		lua_pop(L, 1); /* kept alive by the table */
		if (path == NULL)
			continue;
		enc = key_encrypted(path);
		if (enc < 0) {
			note(notes, sizeof notes, "%s: %s", path, strerror(errno));
			continue;
		}
		if (enc) {
			note(notes, sizeof notes, "%s is encrypted: vakap uses an "
			     "encrypted key only through ssh-agent (ssh-add %s)",
			     path, path);
			continue;
		}
		if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, &key) !=
		    SSH_OK) {
			note(notes, sizeof notes, "%s: not a private key vakap can "
			     "read", path);
			continue;
		}
		RETRY(ss, deadline, 1, rc, SSH_AUTH_AGAIN,
		      ssh_userauth_publickey(ss->ssh, NULL, key));
		ssh_key_free(key);
		if (rc == SSH_AUTH_SUCCESS)
			return 0;
		if (rc == SSH_AUTH_AGAIN)
			return sess_wrap(ss, "logging in to");
		if (rc == SSH_AUTH_DENIED || rc == SSH_AUTH_PARTIAL) {
			note(notes, sizeof notes, "%s: refused by the server", path);
			continue;
		}
		note(notes, sizeof notes, "%s: %s", path, ssh_error(ss));
		if (broken(ss))
			break;
	}
	if (n == 0)
		note(notes, sizeof notes, "no key file");
	return sess_fail(ss, "auth", "cannot log in to %s as %s: %s", ss->label,
	                 user, notes);
}

/* ---- the session handle ---- */

static struct session *tosession(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, SESSION_MT);
}

static struct session *checksession(lua_State *L, int idx)
{
	struct session *ss = tosession(L, idx);

	if (ss->ssh == NULL)
		luaL_error(L, "attempt to use a closed SSH session");
	return ss;
}

static void createmeta(lua_State *L);

static struct session *push_session(lua_State *L)
{
	struct session *ss = lua_newuserdatauv(L, sizeof *ss, 0);

	memset(ss, 0, sizeof *ss);
	ss->fd = -1;
	createmeta(L);
	lua_setmetatable(L, -2);
	return ss;
}

/* Options of connect and scan, from the table at idx. */
static void check_conn_opts(lua_State *L, int idx, struct conn_opts *o)
{
	luaL_checktype(L, idx, LUA_TTABLE);
	lua_getfield(L, idx, "host");
	o->host = luaL_checkstring(L, -1);
	lua_getfield(L, idx, "port");
	o->port = (int)luaL_optinteger(L, -1, 22);
	luaL_argcheck(L, o->port > 0 && o->port < 65536, idx, "port out of range");
	lua_getfield(L, idx, "user");
	o->user = luaL_optstring(L, -1, NULL);
	lua_getfield(L, idx, "label");
	o->label = luaL_optstring(L, -1, o->host);
	lua_getfield(L, idx, "connect_timeout");
	o->timeout = luaL_optnumber(L, -1, 10);
	lua_getfield(L, idx, "keepalive");
	o->keepalive = (int)luaL_optinteger(L, -1, 30);
	lua_pop(L, 6); /* the strings stay alive in the table */
	lua_getfield(L, idx, "known_hosts");
	o->nfiles = known_files(L, lua_gettop(L), o->files);
	lua_pop(L, 1);
}

static void set_names(struct session *ss, const struct conn_opts *o)
{
	snprintf(ss->label, sizeof ss->label, "%s", o->label);
	if (o->port == 22)
		snprintf(ss->name, sizeof ss->name, "%s", o->host);
	else
		snprintf(ss->name, sizeof ss->name, "[%s]:%d", o->host, o->port);
}

static void release_session(struct session *ss);

/* Pop the session on top and push fail, message, category. */
static int connect_failed(lua_State *L, struct session *ss)
{
	luaL_pushfail(L);
	lua_pushstring(L, ss->err);
	lua_pushstring(L, ss->code ? ss->code : "ssh");
	release_session(ss);
	lua_remove(L, -4);
	return 3;
}

static const char *known_files_text(const struct conn_opts *o, char *buf,
                                    size_t len)
{
	int i;

	buf[0] = '\0';
	for (i = 0; i < o->nfiles; i++) {
		size_t used = strlen(buf);
		snprintf(buf + used, len - used, "%s%s", i ? ", " : "", o->files[i]);
	}
	return o->nfiles ? buf : "(no known_hosts file)";
}

/*
 * lua: ssh.connect{ host=, port=22, user=, identity_files={...},
 *                   known_hosts=path|{paths}, connect_timeout=10,
 *                   keepalive=30, label= } -> session | fail, message, code
 * code: "connect", "timeout", "interrupted", "hostkey_unknown",
 * "hostkey_changed", "known_hosts", "auth", "ssh".
 */
static int l_connect(lua_State *L)
{
	struct conn_opts o;
	struct session *ss;
	struct known k;
	double deadline;
	char files[1024];

	check_conn_opts(L, 1, &o);
	luaL_argcheck(L, o.user != NULL, 1, "user is required");
	lua_getfield(L, 1, "identity_files");
	luaL_argexpected(L, lua_isnil(L, -1) || lua_istable(L, -1), 1,
	                 "identity_files as a list");
	ss = push_session(L); /* closed until connected */
	set_names(ss, &o);
	deadline = vk_clock() + o.timeout;
	if (establish(ss, &o, deadline) != 0 ||
	    check_known(ss, o.files, o.nfiles, &k, 0) != 0)
		return connect_failed(L, ss);
	if (k.status == HOST_UNKNOWN) {
		sess_fail(ss, "hostkey_unknown", "the host key of %s is not known: "
		          "%s offers %s %s, which is not in %s", ss->name, ss->label,
		          ss->keytype, ss->fingerprint,
		          known_files_text(&o, files, sizeof files));
		return connect_failed(L, ss);
	}
	if (k.status == HOST_CHANGED) {
		sess_fail(ss, "hostkey_changed", "THE HOST KEY OF %s HAS CHANGED: "
		          "%s offers %s %s, but %s has %s for it. Someone may be "
		          "intercepting the connection, or the host was "
		          "reinstalled: check with its administrator, then remove "
		          "the old key (ssh-keygen -R '%s' -f %s)", ss->name,
		          ss->label, ss->keytype, ss->fingerprint, k.file,
		          k.old_fingerprint, ss->name, k.file);
		return connect_failed(L, ss);
	}
	if (authenticate(ss, o.user, L, lua_gettop(L) - 1, deadline) != 0)
		return connect_failed(L, ss);
	/* keepalives from now on (wait_socket) */
	ss->keepalive = o.keepalive;
	ss->next_keepalive = vk_clock() + o.keepalive;
	return 1;
}

static void push_hostkey(lua_State *L, struct session *ss)
{
	lua_createtable(L, 0, 4);
	lua_pushstring(L, ss->keytype);
	lua_setfield(L, -2, "type");
	lua_pushstring(L, ss->fingerprint);
	lua_setfield(L, -2, "fingerprint");
	lua_pushstring(L, ss->key);
	lua_setfield(L, -2, "key");
	lua_pushstring(L, ss->name);
	lua_setfield(L, -2, "name");
}

/*
 * lua: ssh.scan{ host=, port=22, known_hosts=, connect_timeout= } ->
 *      { name, type, fingerprint, key, status = "known"|"unknown"|"changed",
 *        file, known_fingerprint } | fail, message, code
 * Connects and takes the host key; does not log in.
 */
static int l_scan(lua_State *L)
{
	static const char *const statuses[] = {"unknown", "known", "changed"};
	struct conn_opts o;
	struct session *ss;
	struct known k;

	check_conn_opts(L, 1, &o);
	o.keepalive = 0;
	ss = push_session(L);
	set_names(ss, &o);
	if (establish(ss, &o, vk_clock() + o.timeout) != 0 ||
	    check_known(ss, o.files, o.nfiles, &k, 0) != 0)
		return connect_failed(L, ss);
	push_hostkey(L, ss);
	lua_pushstring(L, statuses[k.status]);
	lua_setfield(L, -2, "status");
	if (k.file[0]) {
		lua_pushstring(L, k.file);
		lua_setfield(L, -2, "file");
	}
	if (k.status == HOST_CHANGED) {
		lua_pushstring(L, k.old_fingerprint);
		lua_setfield(L, -2, "known_fingerprint");
	}
	release_session(ss);
	return 1;
}

/* ---- channels ---- */

struct chan {
	struct session *ss;     /* NULL once the session is closed */
	ssh_channel ch;
	struct ssh_channel_callbacks_struct cb; /* registered while ch is */
	struct chan *next, **pprev;
	long pid;               /* the remote command's, 0 until reported */
	int finished;           /* its exit status (or signal) is in */
	int closed;             /* the server closed the channel */
	int keep_stdout;        /* its stdout goes to the tail (a fed command) */
	int exit_status;
	char exit_signal[32];
	char name[64];
	struct vk_tail tail;    /* of its stderr (and a fed command's stdout) */
};

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

static void chan_init(struct chan *c, const char *name)
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

static void chan_link(struct chan *c, struct session *ss)
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

/* Open a channel and start the command line cmd on it. */
static int chan_start(struct chan *c, const char *cmd)
{
	struct session *ss = c->ss;
	int rc;

	if (ss->lost[0])
		return sess_fail(ss, "connection", "%s", ss->lost);
	c->ch = ssh_channel_new(ss->ssh);
	if (c->ch == NULL)
		return sess_fail(ss, "ssh", "%s", ssh_error(ss));
	ssh_set_channel_callbacks(c->ch, &c->cb);
	RETRY(ss, 0, 1, rc, SSH_AGAIN, ssh_channel_open_session(c->ch));
	if (rc == SSH_OK)
		RETRY(ss, 0, 1, rc, SSH_AGAIN, ssh_channel_request_exec(c->ch, cmd));
	if (rc != SSH_OK) {
		if (rc == SSH_AGAIN)
			return -1; /* ss->err says why */
		return broken(ss) ? lost(ss) : sess_fail(ss, "ssh", "%s", ssh_error(ss));
	}
	/* started when its pid is known: from then on it can be stopped
	 * (or when it has said something else, or ended, without it) */
	while (c->pid == 0 && !c->closed) {
		rc = ssh_channel_poll(c->ch, 0);
		if (rc == SSH_ERROR)
			return lost(ss);
		if (rc != 0 || c->pid != 0 || c->closed)
			break; /* output, or its end, or what came with the poll */
		if (wait_socket(ss, 0, 1) != 0)
			return -1;
	}
	return 0;
}

/*
 * Wait for a command's exit status (or signal), or for the server to
 * close its channel.  ssh_channel_get_exit_status reads the socket while
 * neither is in, and does not wait: the session is non-blocking.
 * deadline and interruptible as for wait_socket.  0, or -1 with ss->err.
 */
static int chan_wait_end(struct chan *c, double deadline, int interruptible)
{
	struct session *ss = c->ss;

	for (;;) {
		if (c->finished || c->closed)
			return 0;
		ssh_channel_get_exit_status(c->ch);
		if (c->finished || c->closed)
			return 0;
		if (wait_socket(ss, deadline, interruptible) != 0)
			return -1;
	}
}

/* After the command's end of output: its exit status.  0, or -1 with
 * ss->err. */
static int chan_finish(struct chan *c)
{
	return chan_wait_end(c, 0, 1);
}

/* The message for a command that ended badly, or NULL if it exited 0. */
static const char *exit_problem(struct chan *c, char *buf, size_t len)
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

	if (c->pid <= 0 || c->finished || c->closed || broken(ss))
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
		       (rc == 0 && wait_socket(ss, deadline, 0) == 0))
			;
	}
	ssh_channel_free(k);
}

/* Release a channel: stop its command if it has not finished, free it
 * (libssh sends the close, and forgets the channel once the server has
 * closed it too, or with the session). */
static void chan_release(struct chan *c)
{
	struct session *ss = c->ss;

	if (ss != NULL && c->ch != NULL) {
		stop_remote(c);
		ssh_remove_channel_callbacks(c->ch, &c->cb);
		ssh_channel_free(c->ch);
	}
	c->ch = NULL;
	chan_unlink(c);
	c->ss = NULL;
}

/* ---- the source: a remote command's standard output ---- */

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
			lost(ss);
			return exec_fail(s, c);
		}
		if (r == SSH_EOF || c->closed)
			break;
		if (wait_socket(ss, 0, 1) != 0)
			return exec_fail(s, c);
	}
	if (chan_finish(c) != 0)
		return exec_fail(s, c);
	if (exit_problem(c, msg, sizeof msg))
		return vk_fail(s, "%s", msg);
	return 0;
}

static void exec_release(struct vk_stream *s)
{
	chan_release(&((struct exec_source *)s)->c);
}

static void chan_info(struct chan *c, lua_State *L)
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

/* The command line for argv (idx) with opts (opts_idx), pushed. */
static const char *push_command(lua_State *L, int argv_idx, int opts_idx)
{
	push_remote_argv(L, argv_idx, opts_idx);
	push_quoted(L, lua_gettop(L));
	lua_remove(L, -2);
	return lua_tostring(L, -1);
}

/* lua: sess:exec(argv [, {cwd=, env={NAME=value|false}}]) -> stream |
 *      fail, message.  The stream is the remote command's stdout. */
static int m_exec(lua_State *L)
{
	struct session *ss = checksession(L, 1);
	struct exec_source *es;
	const char *cmd, *name;

	lua_settop(L, 3);
	push_quoted(L, 2); /* checks argv */
	lua_pop(L, 1);
	lua_rawgeti(L, 2, 1);
	name = lua_tostring(L, -1);
	cmd = push_command(L, 2, 3);
	es = (struct exec_source *)vk_stream_push(L, sizeof *es, &exec_ops);
	chan_init(&es->c, name);
	lua_pushvalue(L, 1);
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

/* ---- the sink: a remote command's standard input ---- */

struct feed {
	struct chan c;
	int write_failed; /* the command or the connection stopped taking input */
};

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
			if (broken(ss)) {
				lost(ss);
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
		if (wait_socket(ss, 0, 1) != 0) {
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
		return broken(ss) ? lost(ss) :
		       sess_fail(ss, "ssh", "%s", ssh_error(ss));
	return chan_finish(c);
}

/* lua: sess:feed(argv, stream [, {cwd=, env=, progress=fn}]) ->
 *      bytes | fail, message.  The stream is the remote command's
 *      standard input; its output is kept like its errors and shown on
 *      failure.  A stream that fails stops the command (TERM) before it
 *      sees the end of its input. */
static int m_feed(lua_State *L)
{
	struct session *ss = checksession(L, 1);
	struct vk_stream *s = vk_stream_check(L, 3);
	struct feed f;
	char err[VK_TAIL + 1024];
	const char *cmd;
	int progress = 0, rc;

	lua_settop(L, 4);
	push_quoted(L, 2);
	lua_pop(L, 1);
	lua_rawgeti(L, 2, 1);
	chan_init(&f.c, lua_tostring(L, -1));
	f.c.keep_stdout = 1;
	f.write_failed = 0;
	if (lua_istable(L, 4)) {
		lua_getfield(L, 4, "progress");
		progress = lua_gettop(L);
	}
	cmd = push_command(L, 2, 4);
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
	if (f.c.finished && exit_problem(&f.c, err, sizeof err))
		rc = -1;
	chan_release(&f.c);
	if (rc != 0)
		return vk_pushfail(L, "%s", err);
	lua_pushinteger(L, (lua_Integer)s->nbytes);
	return 1;
}

/* ---- the rest of the session ---- */

/* lua: sess:hostkey() -> { type, fingerprint = "SHA256:...", key, name } */
static int m_hostkey(lua_State *L)
{
	push_hostkey(L, checksession(L, 1));
	return 1;
}

static void release_session(struct session *ss)
{
	while (ss->chans)
		chan_release(ss->chans);
	ssh_key_free(ss->hostkey);
	ss->hostkey = NULL;
	if (ss->ssh) {
		ssh_disconnect(ss->ssh); /* says goodbye if it can, at once */
		ssh_free(ss->ssh);
		ss->ssh = NULL;
	}
	if (ss->fd >= 0)
		close(ss->fd);
	ss->fd = -1;
}

/* lua: sess:close() -- also __close and __gc; closing twice is harmless.
 *      Streams still open on it fail from then on. */
static int m_close(lua_State *L)
{
	release_session(tosession(L, 1));
	return 0;
}

static int m_tostring(lua_State *L)
{
	struct session *ss = tosession(L, 1);

	lua_pushfstring(L, "vakap.ssh.session (%s, %s)", ss->label,
	                ss->ssh ? "open" : "closed");
	return 1;
}

static const luaL_Reg methods[] = {
	{"exec", m_exec},       {"feed", m_feed},   {"hostkey", m_hostkey},
	{"close", m_close},     {NULL, NULL},
};

static const luaL_Reg metamethods[] = {
	{"__index", NULL}, /* set to the methods table */
	{"__gc", m_close},
	{"__close", m_close},
	{"__tostring", m_tostring},
	{NULL, NULL},
};

static void createmeta(lua_State *L)
{
	if (luaL_newmetatable(L, SESSION_MT) == 0)
		return;
	luaL_setfuncs(L, metamethods, 0);
	luaL_newlibtable(L, methods);
	luaL_setfuncs(L, methods, 0);
	lua_setfield(L, -2, "__index");
}

/* lua: ssh.user() -> the name of the user running vakap */
static int l_user(lua_State *L)
{
	struct passwd *pw = getpwuid(getuid());

	if (pw == NULL)
		return vk_pushfail(L, "no user name for uid %d", (int)getuid());
	lua_pushstring(L, pw->pw_name);
	return 1;
}

static const luaL_Reg funcs[] = {
	{"connect", l_connect}, {"scan", l_scan}, {"quote", l_quote},
	{"user", l_user},       {NULL, NULL},
};

/* libssh's log goes nowhere: vakap says what failed itself. */
static void no_log(int priority, const char *function, const char *buffer,
                   void *userdata)
{
	(void)priority;
	(void)function;
	(void)buffer;
	(void)userdata;
}

int luaopen_vakap_ssh(lua_State *L)
{
	static int initialized;

	if (!initialized) {
		/* once: libssh's own destructor finalizes it at exit */
		ssh_init();
		ssh_set_log_level(SSH_LOG_NOLOG);
		ssh_set_log_callback(no_log);
		initialized = 1;
	}
	createmeta(L);
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
