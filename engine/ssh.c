/*
 * vakap.ssh: remote hosts over SSH (libssh2).  A session is one
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
 * while connecting.  Releasing is bounded too (blocking, with a timeout).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <libssh2.h>
#include <openssl/evp.h>

#include "engine.h"
#include "stream.h"

#define SESSION_MT "vakap.ssh.session"
#define CLEANUP_MS 3000   /* the bound on each step of a release */
#define PID_MARK "vakap-pid:"
#define RUN_SCRIPT "echo " PID_MARK "$$ >&2 && exec \"$@\""
#define RUN_SCRIPT_CWD "echo " PID_MARK "$$ >&2 && cd -- \"$1\" && shift && exec \"$@\""

struct chan;

struct session {
	LIBSSH2_SESSION *ssh;
	int fd;
	int keepalive;       /* seconds between keepalives, 0: none */
	struct chan *chans;  /* channels open on it */
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

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

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

/* libssh2's message for the session's last error */
static const char *ssh_error(struct session *ss)
{
	char *msg = NULL;

	if (ss->ssh == NULL)
		return "no session";
	libssh2_session_last_error(ss->ssh, &msg, NULL, 0);
	return msg && *msg ? msg : "unknown error";
}

/* The connection failed: remember why, so that later commands say so at
 * once.  Returns -1 with ss->err set. */
static int lost(struct session *ss)
{
	if (ss->lost[0] == '\0') {
		int code = ss->ssh ? libssh2_session_last_errno(ss->ssh) : 0;
		const char *why =
			code == LIBSSH2_ERROR_SOCKET_DISCONNECT ? "closed by the server" :
			code == LIBSSH2_ERROR_SOCKET_RECV ? "reading from the server failed" :
			code == LIBSSH2_ERROR_SOCKET_SEND ? "writing to the server failed" :
			code == LIBSSH2_ERROR_SOCKET_TIMEOUT ||
			code == LIBSSH2_ERROR_TIMEOUT ? "timed out" : ssh_error(ss);
		snprintf(ss->lost, sizeof ss->lost, "connection lost (%s)", why);
	}
	return sess_fail(ss, "connection", "%s", ss->lost);
}

/*
 * Wait until the socket is ready for what libssh2 is blocked on.
 * deadline: on the monotonic clock, or 0 for none.  Keepalives are sent
 * from here once authenticated, and only while nothing waits to go out
 * (libssh2 cannot interleave a keepalive with a partly sent packet).
 * Returns 0 to try again, -1 with the reason in ss->err.
 */
static int wait_socket(struct session *ss, double deadline)
{
	int dirs = libssh2_session_block_directions(ss->ssh);
	struct pollfd p = {ss->fd, 0, 0};
	int timeout = 1000;

	if (vk_interrupted)
		return sess_fail(ss, "interrupted", "interrupted");
	if (dirs & LIBSSH2_SESSION_BLOCK_INBOUND)
		p.events |= POLLIN;
	if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		p.events |= POLLOUT;
	if (p.events == 0)
		p.events = POLLIN;
	if (ss->keepalive > 0 && !(dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)) {
		int next = 0, rc = libssh2_keepalive_send(ss->ssh, &next);

		if (rc != 0 && rc != LIBSSH2_ERROR_EAGAIN)
			return lost(ss);
		if (next > 0 && next * 1000 < timeout)
			timeout = next * 1000;
	}
	if (deadline > 0) {
		double left = deadline - now_seconds();

		if (left <= 0)
			return sess_fail(ss, "timeout", "timed out");
		if (left * 1000 < timeout)
			timeout = (int)(left * 1000) + 1;
	}
	if (poll(&p, 1, timeout) < 0 && errno != EINTR)
		return sess_fail(ss, "connection", "poll: %s", strerror(errno));
	if (vk_interrupted)
		return sess_fail(ss, "interrupted", "interrupted");
	return 0;
}

/* Call a libssh2 function until it stops saying EAGAIN; its result. */
#define RETRY(ss, deadline, rc, call)                                         \
	while (((rc) = (call)) == LIBSSH2_ERROR_EAGAIN &&                     \
	       wait_socket((ss), (deadline)) == 0)

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

/* The fingerprint of a base64 key as known_hosts stores it. */
static void fingerprint_b64(const char *b64, char *out, size_t outlen)
{
	size_t len = strlen(b64);
	unsigned char *blob = malloc(len + 3);
	int n, pad = 0;

	snprintf(out, outlen, "(unreadable key)");
	if (blob == NULL)
		return;
	while (len > 0 && (b64[len - 1] == '\n' || b64[len - 1] == ' '))
		len--;
	if (len % 4 == 0 && len > 0) {
		pad = (b64[len - 1] == '=') + (len > 1 && b64[len - 2] == '=');
		n = EVP_DecodeBlock(blob, (const unsigned char *)b64, (int)len);
		if (n >= pad)
			fingerprint(blob, (size_t)(n - pad), out, outlen);
	}
	free(blob);
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

/* The key types vakap knows, in OpenSSH's order of preference. */
static const struct keytype {
	const char *name;
	int known;           /* LIBSSH2_KNOWNHOST_KEY_* */
	const char *methods; /* libssh2 host key methods using it */
} keytypes[] = {
	{"ssh-ed25519", LIBSSH2_KNOWNHOST_KEY_ED25519, "ssh-ed25519"},
	{"ecdsa-sha2-nistp256", LIBSSH2_KNOWNHOST_KEY_ECDSA_256, "ecdsa-sha2-nistp256"},
	{"ecdsa-sha2-nistp384", LIBSSH2_KNOWNHOST_KEY_ECDSA_384, "ecdsa-sha2-nistp384"},
	{"ecdsa-sha2-nistp521", LIBSSH2_KNOWNHOST_KEY_ECDSA_521, "ecdsa-sha2-nistp521"},
	{"ssh-rsa", LIBSSH2_KNOWNHOST_KEY_SSHRSA, "rsa-sha2-512,rsa-sha2-256,ssh-rsa"},
	{NULL, 0, NULL},
};

static int known_type(const char *name)
{
	const struct keytype *k;

	for (k = keytypes; k->name; k++)
		if (strcmp(k->name, name) == 0)
			return k->known;
	return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
}

/* ---- known_hosts ---- */

enum { HOST_UNKNOWN, HOST_KNOWN, HOST_CHANGED };

struct known {
	int status;
	char file[512];        /* where the key (or the other key) is */
	char old_fingerprint[64];
	char old_type[40];
	char types[256];       /* host key methods to prefer for this host */
};

/* Read one known_hosts file into kh.  Marker lines (@cert-authority,
 * @revoked) and lines libssh2 cannot parse are passed over.  0, or -1
 * when the file exists but cannot be read. */
static int read_known_file(LIBSSH2_KNOWNHOSTS *kh, const char *path,
                           char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	if (f == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		const char *p = line + strspn(line, " \t");

		if (*p == '@' || *p == '#' || *p == '\n' || *p == '\0')
			continue;
		libssh2_knownhost_readline(kh, line, (size_t)len,
		                           LIBSSH2_KNOWNHOST_FILE_OPENSSH);
	}
	free(line);
	fclose(f);
	return 0;
}

/* The paths of the string or list at idx, each passed to fn. */
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
 * Look the server's key (ss->keytype, ss->key) up in the files.  With
 * keytype NULL, only find which key types the files hold for ss->name,
 * for the preference of host key methods.  0, or -1 with ss->err.
 */
static int check_known(struct session *ss, const char *const *files, int nfiles,
                       struct known *k, int probe_only)
{
	int i;

	memset(k, 0, sizeof *k);
	k->status = HOST_UNKNOWN;
	for (i = 0; i < nfiles && k->status != HOST_KNOWN; i++) {
		LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(ss->ssh);
		struct libssh2_knownhost *entry = NULL;
		const struct keytype *t;
		int rc;

		if (kh == NULL)
			return sess_fail(ss, "ssh", "out of memory");
		if (read_known_file(kh, files[i], ss->err, sizeof ss->err) != 0) {
			libssh2_knownhost_free(kh);
			ss->code = "known_hosts";
			return -1;
		}
		if (probe_only) {
			/* a key no entry has: MISMATCH tells the type is known */
			for (t = keytypes; t->name; t++) {
				rc = libssh2_knownhost_checkp(kh, ss->name, -1, "x", 1,
				        LIBSSH2_KNOWNHOST_TYPE_PLAIN |
				        LIBSSH2_KNOWNHOST_KEYENC_BASE64 | t->known, NULL);
				if (rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH &&
				    !strstr(k->types, t->methods)) {
					size_t used = strlen(k->types);
					snprintf(k->types + used, sizeof k->types - used,
					         "%s%s", used ? "," : "", t->methods);
				}
			}
			libssh2_knownhost_free(kh);
			continue;
		}
		rc = libssh2_knownhost_checkp(kh, ss->name, -1, ss->key,
		        strlen(ss->key),
		        LIBSSH2_KNOWNHOST_TYPE_PLAIN |
		        LIBSSH2_KNOWNHOST_KEYENC_BASE64 | known_type(ss->keytype),
		        &entry);
		if (rc == LIBSSH2_KNOWNHOST_CHECK_MATCH) {
			k->status = HOST_KNOWN;
			snprintf(k->file, sizeof k->file, "%s", files[i]);
		} else if (rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH &&
		           k->status == HOST_UNKNOWN) {
			k->status = HOST_CHANGED;
			snprintf(k->file, sizeof k->file, "%s", files[i]);
			snprintf(k->old_type, sizeof k->old_type, "%s", ss->keytype);
			if (entry && entry->key)
				fingerprint_b64(entry->key, k->old_fingerprint,
				                sizeof k->old_fingerprint);
		}
		libssh2_knownhost_free(kh);
	}
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
				double left = deadline - now_seconds();

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

/* Append to out the names of the comma-separated list that libssh2
 * supports (algs) and out has not yet: libssh2 1.10 mishandles names it
 * does not know (overlapping memcpy). */
static void add_methods(char *out, size_t len, const char *list,
                        const char **algs, int nalgs)
{
	const char *p = list;

	while (*p) {
		size_t n = strcspn(p, ","), used = strlen(out);
		const char *w;
		int i, dup = 0;

		for (w = out; *w && !dup; w += strcspn(w, ","), w += *w == ',')
			dup = strncmp(w, p, n) == 0 && (w[n] == ',' || w[n] == '\0');
		for (i = 0; i < nalgs && !dup; i++) {
			if (strlen(algs[i]) == n && strncmp(algs[i], p, n) == 0) {
				snprintf(out + used, len - used, "%s%.*s",
				         used ? "," : "", (int)n, p);
				break;
			}
		}
		p += n;
		p += *p == ',';
	}
}

/* Connect and take the server's host key, preferring the key types
 * known_hosts holds for it.  0, or -1 with ss->err. */
static int establish(struct session *ss, const struct conn_opts *o,
                     double deadline)
{
	struct known probe;
	const struct keytype *t;
	const char *blob;
	size_t len;
	int type, rc, nalgs;
	const char **algs = NULL;
	char prefs[512];

	if (tcp_connect(ss, o, deadline) != 0)
		return -1;
	ss->ssh = libssh2_session_init();
	if (ss->ssh == NULL)
		return sess_fail(ss, "ssh", "cannot start an SSH session: out of memory");
	libssh2_session_set_blocking(ss->ssh, 0);
	if (check_known(ss, o->files, o->nfiles, &probe, 1) != 0)
		return -1;
	nalgs = libssh2_session_supported_algs(ss->ssh, LIBSSH2_METHOD_HOSTKEY,
	                                       &algs);
	prefs[0] = '\0';
	add_methods(prefs, sizeof prefs, probe.types, algs, nalgs);
	for (t = keytypes; t->name; t++)
		add_methods(prefs, sizeof prefs, t->methods, algs, nalgs);
	if (nalgs > 0)
		libssh2_free(ss->ssh, (void *)algs);
	if (prefs[0])
		libssh2_session_method_pref(ss->ssh, LIBSSH2_METHOD_HOSTKEY, prefs);
	RETRY(ss, deadline, rc, libssh2_session_handshake(ss->ssh, ss->fd));
	if (rc == LIBSSH2_ERROR_EAGAIN)
		return sess_wrap(ss, "SSH handshake with");
	if (rc != 0)
		return sess_fail(ss, "ssh", "SSH handshake with %s failed: %s",
		                 ss->label, ssh_error(ss));
	blob = libssh2_session_hostkey(ss->ssh, &len, &type);
	if (blob == NULL || len == 0 || (len + 2) / 3 * 4 >= sizeof ss->key)
		return sess_fail(ss, "ssh", "%s sent no usable host key", ss->label);
	blob_type((const unsigned char *)blob, len, ss->keytype,
	          sizeof ss->keytype);
	fingerprint((const unsigned char *)blob, len, ss->fingerprint,
	            sizeof ss->fingerprint);
	EVP_EncodeBlock((unsigned char *)ss->key, (const unsigned char *)blob,
	                (int)len);
	return 0;
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

/* Try each identity of the agent; 1 if one was accepted, 0 if none,
 * -1 on a failure of the connection. */
static int auth_agent(struct session *ss, const char *user, double deadline,
                      char *notes, size_t nlen)
{
	LIBSSH2_AGENT *agent;
	struct libssh2_agent_publickey *id = NULL;
	int rc = 0, tried = 0, ok = 0;

	if (getenv("SSH_AUTH_SOCK") == NULL) {
		note(notes, nlen, "no ssh-agent (SSH_AUTH_SOCK is not set)");
		return 0;
	}
	agent = libssh2_agent_init(ss->ssh);
	if (agent == NULL)
		return sess_fail(ss, "ssh", "out of memory");
	if (libssh2_agent_connect(agent) != 0) {
		note(notes, nlen, "cannot reach ssh-agent at %s",
		     getenv("SSH_AUTH_SOCK"));
		libssh2_agent_free(agent);
		return 0;
	}
	if (libssh2_agent_list_identities(agent) != 0)
		note(notes, nlen, "ssh-agent lists no keys");
	while (!ok && libssh2_agent_get_identity(agent, &id, id) == 0) {
		tried++;
		RETRY(ss, deadline, rc, libssh2_agent_userauth(agent, user, id));
		if (rc == 0)
			ok = 1;
		else if (rc == LIBSSH2_ERROR_EAGAIN ||
		         libssh2_session_last_errno(ss->ssh) == LIBSSH2_ERROR_SOCKET_DISCONNECT)
			break;
	}
	libssh2_agent_disconnect(agent);
	libssh2_agent_free(agent);
	if (!ok && rc == LIBSSH2_ERROR_EAGAIN && tried)
		return -1; /* ss->err says why */
	if (!ok && tried)
		note(notes, nlen, "ssh-agent: %d key%s refused", tried,
		     tried == 1 ? "" : "s");
	else if (!ok)
		note(notes, nlen, "ssh-agent holds no keys");
	return ok;
}

/* Log in with the agent, then each key file that is not encrypted. */
static int authenticate(struct session *ss, const char *user, lua_State *L,
                        int files_idx, double deadline)
{
	char notes[1024] = "";
	const char *methods;
	lua_Integer i, n;
	int rc;

	do
		methods = libssh2_userauth_list(ss->ssh, user, (unsigned)strlen(user));
	while (methods == NULL &&
	       libssh2_session_last_errno(ss->ssh) == LIBSSH2_ERROR_EAGAIN &&
	       wait_socket(ss, deadline) == 0);
	if (methods == NULL) {
		if (libssh2_userauth_authenticated(ss->ssh))
			return 0; /* "none" was enough */
		if (libssh2_session_last_errno(ss->ssh) == LIBSSH2_ERROR_EAGAIN)
			return sess_wrap(ss, "logging in to");
		return sess_fail(ss, "auth", "logging in to %s: %s", ss->label,
		                 ssh_error(ss));
	}
	if (strstr(methods, "publickey") == NULL)
		return sess_fail(ss, "auth", "cannot log in to %s as %s: the server "
		                 "takes no keys (it offers: %s)", ss->label, user,
		                 methods);
	rc = auth_agent(ss, user, deadline, notes, sizeof notes);
	if (rc != 0)
		return rc > 0 ? 0 : -1;
	n = lua_istable(L, files_idx) ? (lua_Integer)lua_rawlen(L, files_idx) : 0;
	for (i = 1; i <= n; i++) {
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
		RETRY(ss, deadline, rc,
		      libssh2_userauth_publickey_fromfile_ex(ss->ssh, user,
		              (unsigned)strlen(user), NULL, path, NULL));
		if (rc == 0)
			return 0;
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return sess_wrap(ss, "logging in to");
		if (rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED ||
		    rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED)
			note(notes, sizeof notes, "%s: refused by the server", path);
		else
			note(notes, sizeof notes, "%s: %s", path, ssh_error(ss));
		if (rc == LIBSSH2_ERROR_SOCKET_DISCONNECT ||
		    rc == LIBSSH2_ERROR_SOCKET_RECV || rc == LIBSSH2_ERROR_SOCKET_SEND)
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
	deadline = now_seconds() + o.timeout;
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
	/* keepalives from now on: without replies (libssh2 would keep them);
	 * TCP_USER_TIMEOUT notices when they are not even acknowledged */
	ss->keepalive = o.keepalive;
	if (o.keepalive > 0)
		libssh2_keepalive_config(ss->ssh, 0, (unsigned)o.keepalive);
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
	if (establish(ss, &o, now_seconds() + o.timeout) != 0 ||
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
	LIBSSH2_CHANNEL *ch;
	struct chan *next, **pprev;
	long pid;               /* the remote command's, 0 until reported */
	int finished;           /* its exit status is in */
	int exit_status;
	char exit_signal[32];
	char name[64];
	struct vk_tail tail;    /* of its stderr (and a fed command's stdout) */
};

static void chan_init(struct chan *c, const char *name)
{
	memset(c, 0, sizeof *c);
	snprintf(c->name, sizeof c->name, "%s", name);
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

/* Take what waits on stream_id (1: stderr, 0: stdout of a fed command)
 * into the tail.  0, or a libssh2 error other than EAGAIN. */
static int drain(struct chan *c, int stream_id)
{
	char buf[4096];
	ssize_t r;

	while ((r = libssh2_channel_read_ex(c->ch, stream_id, buf, sizeof buf)) > 0)
		keep_stderr(c, buf, (size_t)r);
	return r == LIBSSH2_ERROR_EAGAIN ? 0 : (int)r;
}

/* Open a channel and start the command line cmd on it. */
static int chan_start(struct chan *c, const char *cmd)
{
	struct session *ss = c->ss;
	int rc;

	if (ss->lost[0])
		return sess_fail(ss, "connection", "%s", ss->lost);
	do
		c->ch = libssh2_channel_open_session(ss->ssh);
	while (c->ch == NULL &&
	       libssh2_session_last_errno(ss->ssh) == LIBSSH2_ERROR_EAGAIN &&
	       wait_socket(ss, 0) == 0);
	if (c->ch == NULL) {
		if (libssh2_session_last_errno(ss->ssh) != LIBSSH2_ERROR_EAGAIN)
			sess_fail(ss, "ssh", "%s", ssh_error(ss));
		return -1;
	}
	RETRY(ss, 0, rc, libssh2_channel_exec(c->ch, cmd));
	if (rc != 0) {
		if (rc != LIBSSH2_ERROR_EAGAIN)
			sess_fail(ss, "ssh", "%s", ssh_error(ss));
		return -1;
	}
	/* started when its pid is known: from then on it can be stopped
	 * (or when it has said something else, or ended, without it) */
	while (c->pid == 0 && !libssh2_channel_eof(c->ch) &&
	       !libssh2_poll_channel_read(c->ch, 0)) {
		if (drain(c, 1) != 0)
			return lost(ss);
		if (c->pid == 0 && wait_socket(ss, 0) != 0)
			return -1;
	}
	return 0;
}

/* After the command's end of output: its stderr, the channel's close and
 * its exit status.  0, or -1 with ss->err. */
static int chan_finish(struct chan *c)
{
	struct session *ss = c->ss;
	char *sig = NULL;
	size_t siglen = 0;
	int rc;

	do {
		rc = drain(c, 1);
		if (rc == 0)
			rc = drain(c, 0);
		if (rc != 0)
			return lost(ss);
		if (libssh2_channel_eof(c->ch))
			break;
	} while (wait_socket(ss, 0) == 0);
	if (!libssh2_channel_eof(c->ch))
		return -1;
	RETRY(ss, 0, rc, libssh2_channel_close(c->ch));
	if (rc == 0)
		RETRY(ss, 0, rc, libssh2_channel_wait_closed(c->ch));
	if (rc != 0) {
		if (rc != LIBSSH2_ERROR_EAGAIN)
			lost(ss);
		return -1;
	}
	c->exit_status = libssh2_channel_get_exit_status(c->ch);
	if (libssh2_channel_get_exit_signal(c->ch, &sig, &siglen, NULL, NULL,
	                                    NULL, NULL) == 0 && sig) {
		snprintf(c->exit_signal, sizeof c->exit_signal, "%.*s",
		         (int)siglen, sig);
		libssh2_free(ss->ssh, sig);
	}
	c->finished = 1;
	return 0;
}

/* The message for a command that ended badly, or NULL if it exited 0. */
static const char *exit_problem(struct chan *c, char *buf, size_t len)
{
	const char *tail = c->tail.buf, *host = c->ss ? c->ss->label : "?";
	size_t n = vk_tail_trimmed(&c->tail);

	if (c->exit_signal[0])
		snprintf(buf, len, "%s was killed by signal %s on %s%s%.*s",
		         c->name, c->exit_signal, host, n ? ": " : "", (int)n, tail);
	else if (c->exit_status != 0)
		snprintf(buf, len, "%s exited with status %d on %s%s%.*s", c->name,
		         c->exit_status, host, n ? ": " : "", (int)n, tail);
	else
		return NULL;
	return buf;
}

/* Bounded, uninterruptible steps for releasing: blocking with a timeout. */
static void cleanup_mode(struct session *ss, int on)
{
	libssh2_session_set_timeout(ss->ssh, on ? CLEANUP_MS : 0);
	libssh2_session_set_blocking(ss->ssh, on);
}

/* Stop a command that has not finished: TERM to its process group (or to
 * it alone, if it leads none), on a channel of its own. */
static void stop_remote(struct chan *c)
{
	struct session *ss = c->ss;
	LIBSSH2_CHANNEL *k;
	char cmd[128], buf[256];

	if (c->pid <= 0 || c->finished)
		return;
	snprintf(cmd, sizeof cmd,
	         "kill -TERM -- -%ld 2>/dev/null || kill -TERM %ld 2>/dev/null",
	         c->pid, c->pid);
	k = libssh2_channel_open_session(ss->ssh);
	if (k == NULL)
		return;
	if (libssh2_channel_exec(k, cmd) == 0)
		while (libssh2_channel_read(k, buf, sizeof buf) > 0)
			;
	libssh2_channel_free(k);
}

/* Release a channel: stop its command if it has not finished, free it. */
static void chan_release(struct chan *c)
{
	struct session *ss = c->ss;

	if (ss != NULL && c->ch != NULL) {
		cleanup_mode(ss, 1);
		stop_remote(c);
		libssh2_channel_free(c->ch);
		cleanup_mode(ss, 0);
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

static ssize_t exec_read(struct vk_stream *s, void *buf, size_t n)
{
	struct chan *c = &((struct exec_source *)s)->c;
	struct session *ss = c->ss;
	char msg[VK_TAIL + 512];

	if (ss == NULL || c->ch == NULL)
		return vk_fail(s, "%s: its SSH session was closed", c->name);
	for (;;) {
		ssize_t r;

		if (drain(c, 1) != 0) {
			lost(ss);
			return exec_fail(s, c);
		}
		r = libssh2_channel_read(c->ch, buf, n);
		if (r > 0)
			return r;
		if (r == 0 && libssh2_channel_eof(c->ch))
			break;
		if (r < 0 && r != LIBSSH2_ERROR_EAGAIN) {
			lost(ss);
			return exec_fail(s, c);
		}
		if (wait_socket(ss, 0) != 0)
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

static int feed_write(void *ctx, const void *buf, size_t n, char *errbuf,
                      size_t errlen)
{
	struct feed *f = ctx;
	struct chan *c = &f->c;
	const char *p = buf;

	while (n > 0) {
		struct session *ss = c->ss;
		ssize_t w;

		if (ss == NULL || c->ch == NULL) {
			snprintf(errbuf, errlen, "%s: its SSH session was closed",
			         c->name);
			return -1;
		}
		w = libssh2_channel_write(c->ch, p, n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if ((w < 0 && w != LIBSSH2_ERROR_EAGAIN) || drain(c, 0) != 0 ||
		    drain(c, 1) != 0) {
			f->write_failed = 1;
			lost(ss);
			snprintf(errbuf, errlen, "%s on %s: %s", c->name, ss->label,
			         ss->err);
			return -1;
		}
		if (libssh2_channel_eof(c->ch)) {
			/* it closed its output: has it ended? */
			int rc = libssh2_channel_wait_closed(c->ch);
			if (rc == 0) {
				f->write_failed = 1;
				snprintf(errbuf, errlen, "%s on %s stopped reading its "
				         "input", c->name, ss->label);
				return -1;
			}
		}
		if (wait_socket(ss, 0) != 0) {
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
	int rc;

	RETRY(ss, 0, rc, libssh2_channel_send_eof(c->ch));
	if (rc != 0) {
		if (rc != LIBSSH2_ERROR_EAGAIN)
			lost(ss);
		return -1;
	}
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
		cleanup_mode(ss, 1);
		if (libssh2_channel_wait_closed(f.c.ch) == 0) {
			f.c.exit_status = libssh2_channel_get_exit_status(f.c.ch);
			f.c.finished = 1;
		}
		cleanup_mode(ss, 0);
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
	if (ss->ssh) {
		cleanup_mode(ss, 1);
		libssh2_session_disconnect(ss->ssh, "vakap is done");
		libssh2_session_free(ss->ssh);
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

int luaopen_vakap_ssh(lua_State *L)
{
	libssh2_init(0);
	createmeta(L);
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
