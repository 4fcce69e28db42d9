/*
 * vakap.gpg: OpenPGP.  An encrypt filter (to one or more recipients,
 * optionally signed), a decrypt filter that reports the signatures it
 * found, and key lookups (through gpgme) that let vakap refuse a key
 * before any data moves.
 *
 * Encrypting runs gpg itself as a filter process (proc.filter): the
 * stream goes to its stdin through a wide pipe, the message comes from
 * its stdout, and its status lines (--status-fd 2) say at its end what
 * went wrong.  gpgme is not in that path: gpgme 1.18 formats every byte it
 * moves between pipes into a debug line, even with tracing off, which cost
 * a third of the backup chain's CPU.
 *
 * Decrypting goes through gpgme, for its reading of the signatures and
 * recipients: a read of the filter polls gpg's pipes and runs gpgme's
 * handlers for the ready ones -- handing gpg the upstream's bytes when it
 * wants input, collecting what it writes -- until there is output for the
 * reader or the operation is done.  So no thread, and no more than one
 * round's output is held at a time.  gpgme writes to gpg's pipes in pieces
 * of at most 4 KiB (its default, kept on purpose): a pipe that polls
 * writable takes that much without blocking, so a write can never wait on
 * gpg while gpg waits on us to read.
 *
 * Recipients are resolved here, each to exactly one key usable for
 * encryption; a name that matches no key, or several, or a key that is
 * expired, revoked or disabled, fails the stream before gpg starts.  With
 * the keys resolved explicitly, gpg is told to trust them as given.
 *
 * A manifest is signed as a cleartext-signed message (gpg.clearsign) and
 * checked with gpg.verify, which names each signature's key and state:
 * whether that key is trusted is the caller's decision, as for encrypt's.
 * Manifests are small, so both use gpgme's synchronous operations on
 * memory, their input bounded (SIGNED_MAX).  What a cleartext signature
 * covers, and so what round-trips byte for byte: cleartext.c.
 *
 * The files of engine/gpg/, and what this header shares between them:
 *   keys.c        gpg's home directory and program, gpgme contexts, key
 *                 lookup and its cache
 *   passphrase.c  a signing key's passphrase: its file, the loopback
 *                 callback, the message when it is refused
 *   filter.c      the filter handle encrypt and decrypt share: made, set
 *                 up, released
 *   encrypt.c     the encrypt filter: gpg's command line, its status lines
 *   decrypt.c     the decrypt filter: gpgme's event loop, the signatures
 *   cleartext.c   cleartext-signed messages: clearsign and verify
 *   lua.c         the binding: luaopen_vakap_gpg and its functions
 * Only luaopen_vakap_gpg is seen outside engine/gpg/; what the files
 * share is named vk_gpg_*.
 */
#ifndef VAKAP_GPG_GPG_H
#define VAKAP_GPG_GPG_H

#include <stddef.h>
#include <sys/types.h>

#include <gpgme.h>
#include <lua.h>

#include "buf.h"
#include "stream.h"

#define MAX_FDS 8          /* gpg's pipes: data in, data out, status, command */
#define MAX_KEYS 32        /* recipients of one stream */
#define MAX_SIGS 8         /* signatures reported by decrypt and verify */
#define PASS_MAX 1024
#define PASS_BUF (PASS_MAX + 2) /* and a newline, and its end */

/* ---- keys.c ---- */

enum key_use { USE_ENCRYPT, USE_SIGN };

/* What a lookup found: the one key a name names, and whether it can be
 * used. */
struct key_check {
	char fpr[64];
	char uid[256];
	long expires;         /* when it stops being usable; 0: never */
	const char *problem;  /* why it cannot be used, or NULL */
};

/* Make homedir (NULL: gpg's default) the home of the contexts made from
 * now on.  0, or -1 with a message. */
int vk_gpg_use_homedir(const char *homedir, char *err, size_t errlen);
/* gpgme's engine info for gpg (after vk_gpg_use_homedir), or NULL. */
gpgme_engine_info_t vk_gpg_engine(void);
/* A context for homedir (NULL: gpg's default), or NULL with a message. */
gpgme_ctx_t vk_gpg_new_ctx(const char *homedir, char *err, size_t errlen);
/* The one key `name` (a fingerprint or a user id) names in homedir's
 * keyring, for `use`, or its answer of the last minute.  0 with kc filled
 * (kc->problem set when the key is unusable), or -1 with a message when
 * there is no such key or more than one. */
int vk_gpg_look_up(const char *homedir, const char *name, enum key_use use,
                   struct key_check *kc, char *err, size_t errlen);
/* The describing message of an unusable key. */
void vk_gpg_key_problem(const struct key_check *kc, const char *name,
                        enum key_use use, char *err, size_t errlen);

/* ---- passphrase.c ---- */

/* Read the passphrase file's first line into a PASS_BUF buffer of its
 * own.  0, or -1 with a message. */
int vk_gpg_read_passphrase(const char *path, char **out, char *err,
                           size_t errlen);
/* Wipe and free *pass; NULL after. */
void vk_gpg_forget(char **pass);
/* Where ctx gets a passphrase: the given one (alive as long as ctx),
 * handed over in loopback mode; with NULL, gpg-agent's cache, or an
 * error -- never a prompt. */
void vk_gpg_ctx_passphrase(gpgme_ctx_t ctx, const char *passphrase);
/* 1 with a message when code says signing with signer failed for want of
 * its passphrase (passfile: the file it came from, or NULL); else 0. */
int vk_gpg_passphrase_refused(gpgme_err_code_t code, const char *signer,
                              const char *passfile, char *err,
                              size_t errlen);

/* ---- the filters: filter.c, encrypt.c, decrypt.c ---- */

enum gpg_mode { GPG_ENCRYPT, GPG_DECRYPT };

struct gpg_filter;

/* A pipe gpgme asked to watch: dir 1, gpg writes and we read; 0, the
 * other way. */
struct gpg_io {
	struct gpg_filter *f;
	int used;
	int fd, dir;
	gpgme_io_cb_t fnc;
	void *fnc_data;
};

struct gpg_sig {
	char fpr[64];         /* the key that made it: a subkey's, maybe */
	char primary[64];     /* its primary key's fingerprint, "" unknown */
	char status[64];      /* "good", or what is wrong with it */
};

struct gpg_filter {
	struct vk_stream s;
	enum gpg_mode mode;
	gpgme_ctx_t ctx;
	gpgme_data_t in, out;      /* what gpg reads, and what it writes */
	int compress;              /* let gpg compress (encrypt) */
	struct gpg_io io[MAX_FDS];
	int started, done;
	gpgme_error_t err;         /* the operation's, once done */
	int up_failed;             /* the upstream failed: its message wins */
	char *passphrase;          /* from a file; NULL: gpg-agent's */
	char passfile[256];
	struct vk_buf buf;         /* gpg's output, read up to off */
	size_t off;
	/* what info() reports, kept for after the keys and context are gone */
	char key_fpr[MAX_KEYS][64];  /* encrypt: the recipients' fingerprints */
	int nkeys;
	char signer_fpr[64];
	struct gpg_sig sigs[MAX_SIGS];
	int nsigs;
	char enc_to[MAX_KEYS][24]; /* decrypt: the key ids it was encrypted to */
	int nenc_to;
	/* decrypt: fail unless one of these signed (nwant 0: any, or none) */
	char want_signer[MAX_KEYS][64];
	int nwant;
};

/* filter.c */

/* Push an open filter over the stream at 1, which it does not read yet. */
struct gpg_filter *vk_gpg_push_filter(lua_State *L, enum gpg_mode mode);
/* Set up a filter's passphrase, and what its mode needs before it is
 * read.  0, or -1 with a message. */
int vk_gpg_filter_setup(struct gpg_filter *f, const char *homedir,
                        const char *passfile, char *err, size_t errlen);
/* The filters' release(): what they hold, the passphrase wiped. */
void vk_gpg_release(struct vk_stream *s);
/* Set t[field] = {strings}, n strings `stride` bytes apart from first,
 * in the table on top of the stack. */
void vk_gpg_push_list(lua_State *L, const char *field, const char *first,
                      size_t stride, int n);

/* encrypt.c */

#define ENCRYPT_ARGS (24 + 2 * MAX_KEYS)

extern const struct vk_stream_ops vk_gpg_encrypt_ops;
/* gpg's command line (ENCRYPT_ARGS at most, and its NULL) to encrypt (and
 * sign) as f says; its strings are f's and the caller's, alive while the
 * filter is made.  0, or -1 with a message. */
int vk_gpg_encrypt_argv(struct gpg_filter *f, const char *homedir,
                        char **argv, char *err, size_t errlen);

/* decrypt.c */

extern const struct vk_stream_ops vk_gpg_decrypt_ops;
/* The decrypt filter's context and the data objects gpgme moves the
 * bytes through, after its passphrase was read.  0, or -1 with a
 * message. */
int vk_gpg_decrypt_setup(struct gpg_filter *f, const char *homedir,
                         char *err, size_t errlen);

/* ---- cleartext.c ---- */

#define SIGNED_MAX (1024 * 1024) /* the largest text or message signed */

struct sign_opts {
	const char *signer;        /* a fingerprint or user id */
	const char *homedir;       /* NULL: gpg's default */
	const char *passfile;      /* NULL: gpg-agent's cached passphrase */
};

struct verified_sig {
	char fpr[64];              /* the primary key's, when it is known */
	const char *status;        /* "good", "bad", "no-key", ... */
};

struct verified {
	struct vk_buf text;        /* the signed text; the caller frees it */
	int nsigs;
	struct verified_sig sigs[MAX_SIGS];
};

/* Append to out the cleartext-signed message of text (len bytes) signed
 * by o->signer.  0, or -1 with a message. */
int vk_gpg_clearsign(const char *text, size_t len, const struct sign_opts *o,
                     struct vk_buf *out, char *err, size_t errlen);
/* Verify msg (len bytes), one cleartext-signed message: v gets the text
 * and its signatures.  0, or -1 with a message. */
int vk_gpg_verify(const char *msg, size_t len, const char *homedir,
                  struct verified *v, char *err, size_t errlen);

#endif
