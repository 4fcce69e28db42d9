/*
 * vakap.gpg's passphrases (gpg.h): a signing key's passphrase comes from
 * gpg-agent's cache or from the first line of a file -- never a command
 * line, never a prompt -- and is wiped once handed over.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* explicit_bzero */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpg/gpg.h"

int vk_gpg_read_passphrase(const char *path, char **out, char *err,
                           size_t errlen)
{
	char *buf;
	ssize_t n;
	size_t len = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "gpg: passphrase file %s: %s", path,
		         strerror(errno));
		return -1;
	}
	buf = malloc(PASS_BUF);
	if (buf == NULL) {
		close(fd);
		snprintf(err, errlen, "gpg: out of memory");
		return -1;
	}
	while (len < PASS_MAX && (n = read(fd, buf + len, PASS_MAX - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "gpg: passphrase file %s: %s", path,
			         strerror(errno));
			close(fd);
			explicit_bzero(buf, PASS_BUF);
			free(buf);
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	*out = buf;
	return 0;
}

void vk_gpg_forget(char **pass)
{
	if (*pass) {
		explicit_bzero(*pass, PASS_BUF);
		free(*pass);
	}
	*pass = NULL;
}

/* gpgme's question in loopback mode; hook is the passphrase. */
static gpgme_error_t passphrase_cb(void *hook, const char *uid_hint,
                                   const char *info, int prev_was_bad, int fd)
{
	const char *passphrase = hook;

	(void)uid_hint;
	(void)info;
	if (prev_was_bad) /* the file's is wrong: no second try */
		return gpg_error(GPG_ERR_CANCELED);
	if (gpgme_io_writen(fd, passphrase, strlen(passphrase)) != 0 ||
	    gpgme_io_writen(fd, "\n", 1) != 0)
		return gpg_error_from_syserror();
	return 0;
}

void vk_gpg_ctx_passphrase(gpgme_ctx_t ctx, const char *passphrase)
{
	if (passphrase) {
		gpgme_set_pinentry_mode(ctx, GPGME_PINENTRY_MODE_LOOPBACK);
		gpgme_set_passphrase_cb(ctx, passphrase_cb, (void *)passphrase);
	} else {
		/* the agent's cached passphrase, or an error: never a prompt */
		gpgme_set_pinentry_mode(ctx, GPGME_PINENTRY_MODE_CANCEL);
	}
}

int vk_gpg_passphrase_refused(gpgme_err_code_t code, const char *signer,
                              const char *passfile, char *err, size_t errlen)
{
	if (passfile && code == GPG_ERR_BAD_PASSPHRASE) {
		snprintf(err, errlen, "gpg: signing key %s: the passphrase in %s is "
		         "wrong", signer, passfile);
		return 1;
	}
	if (!passfile && code == GPG_ERR_CANCELED) {
		snprintf(err, errlen, "gpg: signing key %s needs a passphrase and "
		         "gpg-agent has none cached: preset it in the agent or name "
		         "a passphrase_file", signer);
		return 1;
	}
	return 0;
}
