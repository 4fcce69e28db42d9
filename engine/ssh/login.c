/*
 * Logging in (ssh/ssh.h): "none" when the server takes it, else the keys
 * of ssh-agent, then each key file given that is not encrypted (vakap
 * asks for no passphrase: an encrypted key is used through the agent).
 * What each way said is noted, and the notes are the message when none
 * let vakap in.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ssh/ssh.h"

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

/* Add to notes (why each way of logging in did not let vakap in), after
 * a "; ": what does not fit is left out. */
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

/* Try the keys of the agent (agent.c counts them, for the note); 1 if
 * one was accepted, 0 if none, -1 on a failure of the connection. */
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
	if (rc == SSH_AUTH_ERROR && sess_broken(ss))
		return sess_fail(ss, "auth", "logging in to %s: %s", ss->label,
		                 sess_error(ss));
	if (rc == SSH_AUTH_ERROR)
		note(notes, nlen, "ssh-agent: %s", sess_error(ss));
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

/* Log in with "none": 1 if that was enough, 0 if the server takes keys,
 * -1 with ss->err (it takes none, or the wait failed). */
static int login_none(struct session *ss, const char *user, double deadline)
{
	char offered[128];
	int rc, methods;

	RETRY(ss, deadline, 1, rc, SSH_AUTH_AGAIN,
	      ssh_userauth_none(ss->ssh, NULL));
	if (rc == SSH_AUTH_SUCCESS)
		return 1;
	if (rc == SSH_AUTH_AGAIN)
		return sess_wrap(ss, "logging in to");
	if (rc == SSH_AUTH_ERROR)
		return sess_fail(ss, "auth", "logging in to %s: %s", ss->label,
		                 sess_error(ss));
	methods = ssh_userauth_list(ss->ssh, NULL);
	if (!(methods & SSH_AUTH_METHOD_PUBLICKEY))
		return sess_fail(ss, "auth", "cannot log in to %s as %s: the server "
		                 "takes no keys (it offers: %s)", ss->label, user,
		                 method_names(methods, offered, sizeof offered));
	return 0;
}

/* What trying a key file came to. */
enum { KEY_NEXT, KEY_IN, KEY_FAILED, KEY_BROKEN };

/* Try the key file at path: KEY_IN if it let vakap in, KEY_NEXT if not
 * (noted), KEY_BROKEN when the connection broke (noted), KEY_FAILED when
 * the wait failed (ss->err). */
static int login_key_file(struct session *ss, const char *path,
                          double deadline, char *notes, size_t nlen)
{
	ssh_key key = NULL;
	int enc, rc;

	enc = key_encrypted(path);
	if (enc < 0) {
		note(notes, nlen, "%s: %s", path, strerror(errno));
		return KEY_NEXT;
	}
	if (enc) {
		note(notes, nlen, "%s is encrypted: vakap uses an encrypted key "
		     "only through ssh-agent (ssh-add %s)", path, path);
		return KEY_NEXT;
	}
	if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, &key) != SSH_OK) {
		note(notes, nlen, "%s: not a private key vakap can read", path);
		return KEY_NEXT;
	}
	RETRY(ss, deadline, 1, rc, SSH_AUTH_AGAIN,
	      ssh_userauth_publickey(ss->ssh, NULL, key));
	ssh_key_free(key);
	if (rc == SSH_AUTH_SUCCESS)
		return KEY_IN;
	if (rc == SSH_AUTH_AGAIN)
		return KEY_FAILED;
	if (rc == SSH_AUTH_DENIED || rc == SSH_AUTH_PARTIAL) {
		note(notes, nlen, "%s: refused by the server", path);
		return KEY_NEXT;
	}
	note(notes, nlen, "%s: %s", path, sess_error(ss));
	return sess_broken(ss) ? KEY_BROKEN : KEY_NEXT;
}

int login_keys(struct session *ss, const char *user, lua_State *L,
               int files_idx, double deadline)
{
	char notes[1024] = "";
	lua_Integer i, n;
	int rc;

	rc = login_none(ss, user, deadline);
	if (rc != 0)
		return rc > 0 ? 0 : -1;
	rc = auth_agent(ss, deadline, notes, sizeof notes);
	if (rc != 0)
		return rc > 0 ? 0 : -1;
	n = lua_istable(L, files_idx) ? (lua_Integer)lua_rawlen(L, files_idx) : 0;
	for (i = 1, rc = KEY_NEXT; i <= n && rc == KEY_NEXT; i++) {
		const char *path;

		lua_rawgeti(L, files_idx, i);
		path = lua_tostring(L, -1);
		lua_pop(L, 1); /* kept alive by the table */
		if (path != NULL)
			rc = login_key_file(ss, path, deadline, notes, sizeof notes);
	}
	if (rc == KEY_IN)
		return 0;
	if (rc == KEY_FAILED)
		return sess_wrap(ss, "logging in to");
	if (n == 0)
		note(notes, sizeof notes, "no key file");
	return sess_fail(ss, "auth", "cannot log in to %s as %s: %s", ss->label,
	                 user, notes);
}
