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
 * Remote commands are argument lists; quote.c is the one place that
 * turns a list into a shell command line.  Each runs as
 *   sh -c 'echo vakap-pid:$$ >&2 && exec "$@"' sh ARGV...
 * so that a command abandoned before its end (a failed input, a closed
 * stream, an interruption) can be stopped with a signal before its input
 * closes, as proc does for local commands.
 *
 * The session is non-blocking: every wait is a poll on its socket that
 * notices vk_interrupted, and is bounded: connecting, the handshake and
 * logging in by connect_timeout, opening a channel and starting a
 * command on it by connect_timeout again, and every wait once logged in
 * by the keepalives (alive.c): a server that answers none for three
 * intervals is dropped.  libssh keeps what it has read and decrypted in
 * its own buffers, so a wait comes only after a call that found nothing
 * there and let libssh read the socket.  Releasing is bounded too: each
 * step has a deadline, and is not interrupted.
 *
 * A session belongs to the process that opened it: a forked child that
 * inherits it must not write to its connection (the server would see
 * two clients' packets on one stream, and the parent's session would be
 * lost), so there its methods raise and its streams fail, and closing it
 * only frees the child's copy.
 *
 * libssh's own configuration files, known_hosts checks and logging are
 * off: sshconfig.lua reads ~/.ssh/config, and the known_hosts files are
 * checked here, with libssh's parser for each line.
 *
 * The files of engine/ssh/, and what this header shares between them:
 *   session.c  the session: its failures, the wait on its socket,
 *              establishing, opening and releasing it
 *   connect.c  the TCP connection, within the deadline
 *   alive.c    keepalives that need an answer, and the drop of a silent
 *              server
 *   trust.c    host keys: fingerprints, known_hosts, the verdict
 *   login.c    logging in: the agent, then each clear key file
 *   agent.c    the one question vakap asks ssh-agent itself
 *   channel.c  a channel: a command started on it, its end, its release
 *   quote.c    the command line of an argument list
 *   exec.c     sess:exec's source: a remote command's stdout
 *   feed.c     sess:feed's sink: a remote command's stdin
 *   lua.c      the binding: luaopen_vakap_ssh and the session handle
 * Nothing outside engine/ssh/ includes this header: the primitive's one
 * entry point is luaopen_vakap_ssh (engine.h).
 */
#ifndef VAKAP_SSH_SSH_H
#define VAKAP_SSH_SSH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <lua.h>

#include "stream.h"

#define SESSION_MT "vakap.ssh.session"
#define CLEANUP_S 3.0     /* the bound on each step of a release */
#define PID_MARK "vakap-pid:" /* how a command's wrapper reports its pid */
#define MAX_KNOWN_FILES 8
#define NOT_OURS "this SSH session was opened by another process"

struct chan;

struct session {
	ssh_session ssh;
	int fd;              /* the TCP socket: see sess_release for its close */
	int handed;          /* ssh_connect was given fd: libssh's socket has it */
	pid_t owner;         /* the process that opened it: only it talks on it */
	double timeout;      /* connect_timeout: the bound on an answer */
	/* liveness (alive.c) */
	int keepalive;       /* seconds between keepalives, 0: none */
	struct ssh_counter_struct counted; /* packets libssh read and sent */
	uint64_t heard_packets; /* counted.in_packets when last looked at */
	double next_keepalive;
	double asked;        /* when the first unanswered keepalive went, or 0 */
	int asks;            /* keepalives sent since the server last spoke */
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

/* Options of ssh.connect and ssh.scan. */
struct conn_opts {
	const char *host;
	int port;
	const char *user;
	const char *label;
	double timeout;
	int keepalive;
	const char *files[MAX_KNOWN_FILES]; /* the known_hosts files */
	int nfiles;
};

/* ---- session.c ---- */

/* Empty and closed, owned by this process, named after o. */
void sess_init(struct session *ss, const struct conn_opts *o);
/* Whether this process opened the session (and so may talk on it). */
int sess_ours(const struct session *ss);
/* Record why a step failed, and its category; returns -1. */
int sess_fail(struct session *ss, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Put "what LABEL: " before the message in ss->err; returns -1. */
int sess_wrap(struct session *ss, const char *what);
/* libssh's message for the session's last error */
const char *sess_error(struct session *ss);
/* Whether the connection is gone: closed, failed, or dropped. */
int sess_broken(struct session *ss);
/* The connection failed: remember why, so that later commands say so
 * at once.  Returns -1 with ss->err set. */
int sess_lost(struct session *ss);
/* Wait on the socket for what libssh waits on.  deadline: on the
 * monotonic clock, or 0 for none; interruptible: give up when
 * vk_stopping() (not while releasing).  0 to try again, -1 with ss->err. */
int sess_wait(struct session *ss, double deadline, int interruptible);
/* Connect and take the server's host key, preferring the key types
 * known_hosts holds for it.  0, or -1 with ss->err. */
int sess_establish(struct session *ss, const struct conn_opts *o,
                   double deadline);
/* ssh.connect's work: establish, check the host key, log in with the key
 * files listed at files_idx, then keep the connection alive.  0, or -1
 * with ss->err. */
int sess_open(struct session *ss, const struct conn_opts *o, lua_State *L,
              int files_idx);
/* Stop and release its channels, say goodbye (when ours), free it all.
 * Releasing twice is harmless. */
void sess_release(struct session *ss);

/* Call a libssh function until it stops answering `again` (SSH_AGAIN, or
 * SSH_AUTH_AGAIN for logging in) or the wait fails; its last answer. */
#define RETRY(ss, deadline, intr, rc, again, call)                            \
	while (((rc) = (call)) == (again) &&                                  \
	       sess_wait((ss), (deadline), (intr)) == 0)

/* ---- connect.c ---- */

/* A TCP connection to o->host:o->port within the deadline, in ss->fd,
 * its numeric address in ss->addr.  0, or -1 with ss->err. */
int connect_tcp(struct session *ss, const struct conn_opts *o,
                double deadline);

/* ---- alive.c ---- */

/* Keepalives every keepalive seconds (0: none) from now on. */
void alive_start(struct session *ss, int keepalive);
/* Before a wait on the socket: note whether the server said anything,
 * send a keepalive when one is due, and lower *timeout_ms to when the
 * next is.  0 to wait; 1 when libssh has something to read first (wait
 * no longer: try again); -1 when the server answered none of the last
 * keepalives for three intervals: the connection is dropped (ss->lost). */
int alive_check(struct session *ss, double now, int *timeout_ms);

/* ---- trust.c ---- */

enum { HOST_UNKNOWN, HOST_KNOWN, HOST_CHANGED };

/* What the known_hosts files say of the server's key. */
struct known {
	int status;
	char file[512];        /* where the key (or the other key) is */
	char old_fingerprint[64];
	int revoked;           /* an @revoked line names the key */
	char revoked_file[512];
	unsigned held;         /* the keytypes the files hold for the host */
	char types[256];       /* host key methods to prefer for it, in order */
};

/* The host key methods to ask for, those of the key types the files hold
 * for ss->name first.  0, or -1 with ss->err. */
int known_prefs(struct session *ss, const struct conn_opts *o, char *prefs,
                size_t len);
/* Look the server's key up in the files.  0, or -1 with ss->err: a
 * file that cannot be read, or one that revokes the key (whatever the
 * others say, and for ssh.scan too: a revoked key is never recorded). */
int known_check(struct session *ss, const struct conn_opts *o,
                struct known *k);
/* 0 if k says the key is known; else -1, with why it is refused. */
int known_verdict(struct session *ss, const struct conn_opts *o,
                  const struct known *k);
/* After a failed handshake: when the server offered its host key only
 * with signatures vakap does not take (ssh-rsa: RSA with SHA-1), -1 with
 * ss->err saying so; else 0. */
int hostkey_refused(struct session *ss);
/* Take the server's host key: its type, fingerprint and base64 text.
 * 0, or -1 with ss->err. */
int hostkey_take(struct session *ss);

/* ---- login.c, agent.c ---- */

/* Log in as user with the agent, then each key file of the list at
 * files_idx that is not encrypted.  0, or -1 with ss->err. */
int login_keys(struct session *ss, const char *user, lua_State *L,
               int files_idx, double deadline);
/* How many keys the ssh-agent at path holds, or -1 when it cannot be
 * reached or does not answer in time. */
int agent_key_count(const char *path);

/* ---- channel.c ---- */

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

/* Empty, named (for messages), with its callbacks ready. */
void chan_init(struct chan *c, const char *name);
/* Count it among the session's channels, released with it. */
void chan_link(struct chan *c, struct session *ss);
/* Open a channel and start the command line cmd on it.  0, or -1 with
 * ss->err. */
int chan_start(struct chan *c, const char *cmd);
/* Wait for the command's exit status (or signal), or for the server to
 * close the channel; deadline and interruptible as for sess_wait.
 * 0, or -1 with ss->err. */
int chan_wait_end(struct chan *c, double deadline, int interruptible);
/* After the command's end of output: its exit status.  0, or -1 with
 * ss->err. */
int chan_finish(struct chan *c);
/* The message for a command that ended badly, or NULL if it exited 0. */
const char *chan_problem(struct chan *c, char *buf, size_t len);
/* Set the command, its stderr, host and end in the table on top. */
void chan_info(struct chan *c, lua_State *L);
/* Stop its command if it has not finished, free the channel, leave the
 * session.  Releasing twice is harmless. */
void chan_release(struct chan *c);

/* ---- quote.c ---- */

/* Push the command line of the list at idx (raises on misuse). */
const char *quote_push(lua_State *L, int idx);
/* Push the command line running argv (the list at argv_idx) with opts
 * (the table {cwd=, env=} or nil at opts_idx) in the wrapper. */
const char *quote_push_command(lua_State *L, int argv_idx, int opts_idx);

/* ---- exec.c, feed.c ---- */

/* Push a stream of the stdout of cmd (named name in messages), run on
 * ss, whose userdata is at sess_idx; returns 1, or 2 with fail, message. */
int exec_push(lua_State *L, struct session *ss, int sess_idx,
              const char *name, const char *cmd);
/* Run cmd with the stream s as its stdin (progress: see vk_pump);
 * pushes the bytes fed (1) or fail, message (2). */
int feed_run(lua_State *L, struct session *ss, const char *name,
             const char *cmd, struct vk_stream *s, int progress);

#endif
