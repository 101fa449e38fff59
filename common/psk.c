/* The fleet PSK from a file, the environment, a credential or a passphrase. */
#include "psk.h"

#include <errno.h>
#include <fcntl.h>
#include <gcrypt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "keys.h"

#define PSK_PROMPT "postern: passphrase of the fleet PSK: "

bool psk_argon2id(uint8_t *out, size_t out_len,
		  const void *pass, size_t pass_len,
		  const void *salt, size_t salt_len,
		  const void *key, size_t key_len,
		  const void *ad, size_t ad_len,
		  unsigned long t, unsigned long m_kib, unsigned long p)
{
	/* libgcrypt's order: tag length, passes, memory, lanes. */
	const unsigned long param[4] = { out_len, t, m_kib, p };
	gcry_kdf_hd_t hd;
	gcry_error_t e;

	if (!crypto_init())
		return false;
	e = gcry_kdf_open(&hd, GCRY_KDF_ARGON2, GCRY_KDF_ARGON2ID, param, 4,
			  pass, pass_len, salt, salt_len, key, key_len,
			  ad, ad_len);
	if (e)
		return false;
	/* No thread ops: the lanes run one after the other. The handle wipes
	 * its memory blocks when closed. */
	e = gcry_kdf_compute(hd, NULL);
	if (!e)
		e = gcry_kdf_final(hd, out_len, out);
	gcry_kdf_close(hd);
	if (e)
		wipe(out, out_len);
	return !e;
}

bool psk_from_passphrase(uint8_t psk[KEY_LEN], const char *passphrase,
			 size_t len, const char *salt, size_t salt_len)
{
	if (salt_len < PSK_SALT_MIN_LEN)
		return false;
	return psk_argon2id(psk, KEY_LEN, passphrase, len, salt, salt_len,
			    NULL, 0, NULL, 0, PSK_ARGON2_T, PSK_ARGON2_M_KIB,
			    PSK_ARGON2_P);
}

static volatile sig_atomic_t caught;

static void on_signal(int sig)
{
	caught = sig;
}

/*
 * One line from the terminal with echo off, as readpassphrase(3) reads it:
 * a signal that arrives meanwhile restores the terminal before it is
 * delivered again, so that ^C never leaves a shell without echo.
 */
static bool tty_passphrase(char *buf, size_t size, size_t *len,
			   char *err, size_t err_len)
{
	static const int sigs[] = { SIGINT, SIGHUP, SIGQUIT, SIGTERM };
	struct sigaction sa, saved[sizeof(sigs) / sizeof(sigs[0])];
	struct termios old, quiet;
	size_t n = 0, i;
	bool is_tty, ok = false, too_long = false;
	ssize_t r;
	char c;
	int fd;

	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, err_len, "psk_passphrase_salt: no passphrase: "
			 "set " PSK_PASSPHRASE_ENV " or run on a terminal");
		return false;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;	/* no SA_RESTART: read() returns */
	sigemptyset(&sa.sa_mask);
	caught = 0;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, &saved[i]);
	is_tty = tcgetattr(fd, &old) == 0;
	if (is_tty) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
		quiet.c_lflag |= ECHONL;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	if (write(fd, PSK_PROMPT, strlen(PSK_PROMPT)) < 0)
		goto out;
	while (!caught) {
		r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if (r == 0 || c == '\n' || c == '\r') {
			ok = true;
			break;
		}
		if (n + 1 < size)
			buf[n++] = c;
		else
			too_long = true;
	}
out:
	wipe(&c, 1);
	if (is_tty)
		tcsetattr(fd, TCSAFLUSH, &old);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &saved[i], NULL);
	close(fd);
	if (caught)
		raise(caught);
	*len = n;
	if (!ok || caught || too_long) {
		wipe(buf, size);
		if (too_long)
			snprintf(err, err_len, "passphrase longer than %zu "
				 "bytes", size - 1);
		else
			snprintf(err, err_len, "could not read the "
				 "passphrase from the terminal");
		return false;
	}
	return true;
}

/*
 * A secret from the environment, taken out of it: copied into buf (when
 * it fits: *len < size), then its bytes wiped where getenv found them,
 * which is what /proc/PID/environ shows, and the variable unset, so that
 * neither a reader of that file nor a child ever sees it. False when it
 * is not set.
 */
static bool take_env(const char *name, char *buf, size_t size, size_t *len)
{
	char *v = getenv(name);

	if (!v)
		return false;
	*len = strlen(v);
	if (*len < size)
		memcpy(buf, v, *len + 1);
	wipe(v, *len);
	unsetenv(name);
	return true;
}

static bool load_passphrase(uint8_t psk[KEY_LEN], const char *salt,
			    char *err, size_t err_len)
{
	char buf[PSK_PASSPHRASE_MAX];
	size_t len = 0, salt_len = strlen(salt);
	bool ok;

	if (salt_len < PSK_SALT_MIN_LEN) {
		snprintf(err, err_len, "psk_passphrase_salt: must be at least "
			 "%d bytes long", PSK_SALT_MIN_LEN);
		return false;
	}
	if (take_env(PSK_PASSPHRASE_ENV, buf, sizeof(buf), &len)) {
		if (len >= sizeof(buf)) {
			snprintf(err, err_len, PSK_PASSPHRASE_ENV ": longer "
				 "than %zu bytes", sizeof(buf) - 1);
			return false;
		}
	} else if (!tty_passphrase(buf, sizeof(buf), &len, err, err_len)) {
		return false;
	}
	if (len == 0) {
		snprintf(err, err_len, "psk_passphrase_salt: the passphrase is "
			 "empty");
		return false;
	}
	ok = psk_from_passphrase(psk, buf, len, salt, salt_len);
	wipe(buf, sizeof(buf));
	if (!ok)
		snprintf(err, err_len, "psk_passphrase_salt: Argon2id failed "
			 "(it needs %d MiB of memory)", PSK_ARGON2_M_KIB / 1024);
	return ok;
}

static bool load_env(uint8_t psk[KEY_LEN], const char *name,
		     char *err, size_t err_len)
{
	char buf[KEY_B64_LEN + 8];
	size_t len;
	bool ok;

	if (!take_env(name, buf, sizeof(buf), &len)) {
		snprintf(err, err_len, "psk_env: environment variable %s is "
			 "not set", name);
		return false;
	}
	ok = len < sizeof(buf) && key_from_text(psk, buf, len);
	wipe(buf, sizeof(buf));
	/* The value is a secret: say what is wrong, never what it is. */
	if (!ok)
		snprintf(err, err_len, "psk_env: environment variable %s does "
			 "not hold a key (expected 44 characters of base64, as "
			 "written by postern genpsk)", name);
	return ok;
}

static bool under_systemd_credentials(void)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");

	return dir && *dir;
}

bool psk_load(uint8_t psk[KEY_LEN], const struct psk_source *src,
	      char *err, size_t err_len)
{
	bool ok = false;

	if (err_len)
		err[0] = '\0';
	switch (src->kind) {
	case PSK_FILE:
		ok = key_load_secret_file(psk, src->value, err, err_len);
		break;
	case PSK_ENV:
		ok = load_env(psk, src->value, err, err_len);
		break;
	case PSK_CREDENTIAL:
		if (src->file && !under_systemd_credentials())
			ok = key_load_secret_file(psk, src->file, err, err_len);
		else
			ok = key_load_credential(psk, src->value,
						 "psk_credential", err, err_len);
		break;
	case PSK_PASSPHRASE:
		ok = load_passphrase(psk, src->value, err, err_len);
		break;
	default:
		snprintf(err, err_len, "unknown PSK source");
	}
	if (!ok)
		wipe(psk, KEY_LEN);
	return ok;
}
