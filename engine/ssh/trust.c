/*
 * Host keys (ssh/ssh.h): the server's key taken from the handshake, its
 * OpenSSH fingerprint, the known_hosts files looked up for it (libssh
 * parses each line, hashed names and [host]:port included), the host key
 * methods asked for, those known_hosts holds for the host first, and the
 * verdict: an unknown or changed key stops the connection, with what an
 * operator needs to check it.  Recording a key is sshconfig's (Lua).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ssh/ssh.h"

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
	{"ssh-rsa", "rsa-sha2-512,rsa-sha2-256"}, /* never SHA-1: ssh-rsa */
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

/* The key of a known_hosts line for ss->name (e), or NULL: another
 * host's, or unreadable (libssh parses it: hashed names, patterns and
 * [host]:port).  line is changed: tabs become spaces. */
static struct ssh_knownhosts_entry *known_entry(struct session *ss,
                                               char *line)
{
	struct ssh_knownhosts_entry *e = NULL;
	char *tab;

	while ((tab = strchr(line, '\t')) != NULL)
		*tab = ' '; /* libssh splits at spaces only */
	if (ssh_known_hosts_parse_line(ss->name, line, &e) != SSH_OK) {
		ssh_knownhosts_entry_free(e);
		return NULL;
	}
	return e;
}

/* What the entry e of the file path says of the server's key, into k. */
static void known_note(struct session *ss, const char *path,
                       const struct ssh_knownhosts_entry *e, struct known *k)
{
	const char *type = ssh_key_type_to_char(ssh_key_type(e->publickey));

	if (type == NULL || strcmp(type, ss->keytype) != 0) {
		/* another type, or one vakap does not know: says nothing */
	} else if (ssh_key_cmp(e->publickey, ss->hostkey,
	                       SSH_KEY_CMP_PUBLIC) == 0) {
		if (k->status != HOST_KNOWN)
			snprintf(k->file, sizeof k->file, "%s", path);
		k->status = HOST_KNOWN;
	} else if (k->status == HOST_UNKNOWN) {
		k->status = HOST_CHANGED;
		snprintf(k->file, sizeof k->file, "%s", path);
		key_fingerprint(e->publickey, k->old_fingerprint,
		                sizeof k->old_fingerprint);
	}
}

/* The key types of the entry e, noted in k->held. */
static void known_hold(const struct ssh_knownhosts_entry *e, struct known *k)
{
	const char *type = ssh_key_type_to_char(ssh_key_type(e->publickey));
	unsigned i;

	for (i = 0; type && keytypes[i].name; i++)
		if (strcmp(keytypes[i].name, type) == 0)
			k->held |= 1u << i;
}

/* An "@revoked" line (its text after the marker in rest) that names the
 * server's key for ss->name: noted in k. */
static void known_revoked(struct session *ss, const char *path, char *rest,
                          struct known *k)
{
	struct ssh_knownhosts_entry *e = known_entry(ss, rest);

	if (e && ssh_key_cmp(e->publickey, ss->hostkey,
	                     SSH_KEY_CMP_PUBLIC) == 0 && !k->revoked) {
		k->revoked = 1;
		snprintf(k->revoked_file, sizeof k->revoked_file, "%s", path);
	}
	ssh_knownhosts_entry_free(e);
}

/*
 * Look the server's key (ss->hostkey, of type ss->keytype) up in one
 * known_hosts file: only entries for ss->name and of the same key type
 * count, the first other key of that type makes the host CHANGED (unless
 * a line or a later file knows it), and an "@revoked" line with the key
 * revokes it whatever the other lines say.  probe_only: only note in
 * k->held the key types the file holds for ss->name.  Comments, other
 * marker lines (@cert-authority: vakap does not take host certificates)
 * and lines libssh cannot parse are passed over.  0, or -1 when the file
 * exists but cannot be read.
 */
static int check_known_file(struct session *ss, const char *path,
                            struct known *k, int probe_only)
{
	static const char revoked[] = "@revoked";
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
	while ((len = getline(&line, &cap, f)) > 0) {
		struct ssh_knownhosts_entry *e;
		char *p = line + strspn(line, " \t");

		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (!probe_only && strncmp(p, revoked, sizeof revoked - 1) == 0 &&
		    (p[sizeof revoked - 1] == ' ' || p[sizeof revoked - 1] == '\t'))
			known_revoked(ss, path, p + sizeof revoked, k);
		if (*p == '@' || *p == '#' || *p == '\0' ||
		    (e = known_entry(ss, p)) == NULL)
			continue;
		if (probe_only)
			known_hold(e, k);
		else
			known_note(ss, path, e, k);
		ssh_knownhosts_entry_free(e);
	}
	free(line);
	fclose(f);
	return 0;
}

/*
 * Look the server's key up in the files of o; with probe_only, only find
 * which key types the files hold for ss->name, for the preference of
 * host key methods.  0, or -1 with ss->err.
 */
static int check_known(struct session *ss, const struct conn_opts *o,
                       struct known *k, int probe_only)
{
	int i;

	memset(k, 0, sizeof *k);
	k->status = HOST_UNKNOWN;
	for (i = 0; i < o->nfiles; i++)
		if (check_known_file(ss, o->files[i], k, probe_only) != 0)
			return -1;
	for (i = 0; keytypes[i].name; i++)
		if (k->held & 1u << i)
			add_methods(k->types, sizeof k->types, keytypes[i].methods);
	return 0;
}


int known_prefs(struct session *ss, const struct conn_opts *o, char *prefs,
                size_t len)
{
	struct known probe;
	const struct keytype *t;

	if (check_known(ss, o, &probe, 1) != 0)
		return -1;
	add_methods(prefs, len, probe.types);
	for (t = keytypes; t->name; t++)
		add_methods(prefs, len, t->methods);
	return 0;
}

int known_check(struct session *ss, const struct conn_opts *o,
                struct known *k)
{
	if (check_known(ss, o, k, 0) != 0)
		return -1;
	if (k->revoked)
		return sess_fail(ss, "hostkey_revoked", "THE HOST KEY OF %s IS "
		                 "REVOKED: %s offers %s %s, which %s marks "
		                 "@revoked. vakap neither connects with a revoked "
		                 "key nor records it: the host needs a new key "
		                 "(check with its administrator)", ss->name,
		                 ss->label, ss->keytype, ss->fingerprint,
		                 k->revoked_file);
	return 0;
}

/* The known_hosts files of o, for a message. */
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

int known_verdict(struct session *ss, const struct conn_opts *o,
                  const struct known *k)
{
	char files[1024];

	if (k->status == HOST_UNKNOWN)
		return sess_fail(ss, "hostkey_unknown", "the host key of %s is not "
		                 "known: %s offers %s %s, which is not in %s",
		                 ss->name, ss->label, ss->keytype, ss->fingerprint,
		                 known_files_text(o, files, sizeof files));
	if (k->status == HOST_CHANGED)
		return sess_fail(ss, "hostkey_changed", "THE HOST KEY OF %s HAS "
		                 "CHANGED: %s offers %s %s, but %s has %s for it. "
		                 "Someone may be intercepting the connection, or the "
		                 "host was reinstalled: check with its administrator, "
		                 "then remove the old key (ssh-keygen -R '%s' -f %s)",
		                 ss->name, ss->label, ss->keytype, ss->fingerprint,
		                 k->file, k->old_fingerprint, ss->name, k->file);
	return 0;
}

/* Whether the comma-separated list holds name. */
static int listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	for (p = list; *p; p += strcspn(p, ","), p += *p == ',')
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return 1;
	return 0;
}

int hostkey_refused(struct session *ss)
{
	static const char said[] = "server host key algo: server [";
	const char *why = sess_error(ss), *p = strstr(why, said);
	char offered[256];
	size_t n;

	if (p == NULL)
		return 0; /* not that: libssh's message says what */
	p += sizeof said - 1;
	n = strcspn(p, "]");
	snprintf(offered, sizeof offered, "%.*s", (int)n, p);
	if (listed(offered, "ssh-rsa"))
		return sess_fail(ss, "hostkey_algorithm", "SSH handshake with %s "
		                 "failed: the server signs with its host key only as "
		                 "%s; ssh-rsa is RSA with SHA-1 signatures, which "
		                 "vakap refuses, as OpenSSH does since 8.8: it takes "
		                 "an RSA host key with rsa-sha2-512 or rsa-sha2-256 "
		                 "signatures (OpenSSH 7.2 and later), so check "
		                 "HostKeyAlgorithms in the server's sshd_config",
		                 ss->label, offered);
	return sess_fail(ss, "hostkey_algorithm", "SSH handshake with %s failed: "
	                 "the server offers its host key only as %s, none of "
	                 "which vakap takes", ss->label, offered);
}

int hostkey_take(struct session *ss)
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
