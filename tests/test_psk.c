/*
 * The PSK loader: each source, its errors, and Argon2id against RFC 9106
 * and against a PSK derived once by the reference implementation
 * (Debian's argon2 tool) with postern's parameters.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "keys.h"
#include "psk.h"
#include "test_util.h"

#define PSK_B64 "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM="
/* bytes 100..131 */
static const uint8_t psk_bytes[KEY_LEN] = {
	100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113,
	114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127,
	128, 129, 130, 131,
};

#define PASSPHRASE "correct horse battery staple"
/* echo -n PASSPHRASE | argon2 SALT -id -t 3 -m 16 -p 1 -l 32 -r */
#define SALT1 "fleet-salt-2026"
#define PSK1 "fe6b72c15d35404a000abb30e91919ad8602f34bebb7504e57a67d94b8b19f81"
#define SALT2 "fleet-salt-2027"
#define PSK2 "a7b3a14910e46cc46f4edc31f748d9a9c34a5928a61fbf93fe3cd381d0ba098c"

static void assert_hex(const uint8_t *got, const char *hex)
{
	size_t len;
	uint8_t *want = hex_decode(hex, &len);

	assert_non_null(want);
	assert_int_equal(len, KEY_LEN);
	assert_memory_equal(got, want, KEY_LEN);
	free(want);
}

static void expect_error(const char *err, const char *what)
{
	if (!strstr(err, what))
		fail_msg("error \"%s\" lacks \"%s\"", err, what);
}

/* RFC 9106, 5.3: Argon2id with a secret and associated data. */
static void rfc9106_argon2id(void **state)
{
	uint8_t pass[32], salt[16], secret[8], ad[12], tag[32];

	(void)state;
	memset(pass, 0x01, sizeof(pass));
	memset(salt, 0x02, sizeof(salt));
	memset(secret, 0x03, sizeof(secret));
	memset(ad, 0x04, sizeof(ad));
	assert_true(psk_argon2id(tag, sizeof(tag), pass, sizeof(pass),
				 salt, sizeof(salt), secret, sizeof(secret),
				 ad, sizeof(ad), 3, 32, 4));
	assert_hex(tag, "0d640df58d78766c08c037a34a8b53c9"
			"d01ef0452d75b65eb52520e96b01e659");
}

/* Pins t = 3, m = 64 MiB, p = 1: a change of any would change every
 * fleet's PSK. */
static void passphrase_parameters(void **state)
{
	uint8_t a[KEY_LEN], b[KEY_LEN], c[KEY_LEN];

	(void)state;
	assert_true(psk_from_passphrase(a, PASSPHRASE, strlen(PASSPHRASE),
					SALT1, strlen(SALT1)));
	assert_hex(a, PSK1);
	assert_true(psk_argon2id(b, KEY_LEN, PASSPHRASE, strlen(PASSPHRASE),
				 SALT1, strlen(SALT1), NULL, 0, NULL, 0,
				 3, 65536, 1));
	assert_memory_equal(a, b, KEY_LEN);
	assert_true(psk_from_passphrase(c, PASSPHRASE, strlen(PASSPHRASE),
					SALT2, strlen(SALT2)));
	assert_hex(c, PSK2);
	assert_memory_not_equal(a, c, KEY_LEN);
	/* A salt shorter than 8 bytes is refused. */
	assert_false(psk_from_passphrase(c, PASSPHRASE, strlen(PASSPHRASE),
					 "1234567", 7));
}

static void from_file(void **state)
{
	struct psk_source src = { .kind = PSK_FILE };
	uint8_t psk[KEY_LEN];
	char err[512];

	(void)state;
	src.value = strdup(write_temp_file("psk", PSK_B64 "\n", 0600));
	assert_true(psk_load(psk, &src, err, sizeof(err)));
	assert_memory_equal(psk, psk_bytes, KEY_LEN);
	free(src.value);

	src.value = strdup(write_temp_file("psk", PSK_B64 "\n", 0640));
	assert_false(psk_load(psk, &src, err, sizeof(err)));
	expect_error(err, "chmod 600");
	expect_error(err, src.value);
	assert_null(strstr(err, PSK_B64));
	free(src.value);

	src.value = strdup(write_temp_file("psk", "not a key\n", 0600));
	assert_false(psk_load(psk, &src, err, sizeof(err)));
	expect_error(err, "not a key");
	free(src.value);
}

/* Whether a variable's value, at v (getenv's memory), is gone: wiped in
 * place and unset. glibc keeps the bytes of a setenv value allocated. */
static bool taken(const char *name, const char *v, size_t len)
{
	return !getenv(name) && is_zero_ct(v, len);
}

static void from_env(void **state)
{
	struct psk_source src = { .kind = PSK_ENV, .value = "POSTERN_TEST_PSK" };
	uint8_t psk[KEY_LEN];
	char err[512];
	const char *v;

	(void)state;
	setenv("POSTERN_TEST_PSK", PSK_B64, 1);
	v = getenv("POSTERN_TEST_PSK");
	assert_true(psk_load(psk, &src, err, sizeof(err)));
	assert_memory_equal(psk, psk_bytes, KEY_LEN);
	assert_true(taken("POSTERN_TEST_PSK", v, strlen(PSK_B64)));

	unsetenv("POSTERN_TEST_PSK");
	assert_false(psk_load(psk, &src, err, sizeof(err)));
	expect_error(err, "psk_env: environment variable POSTERN_TEST_PSK is "
		     "not set");
	assert_true(is_zero_ct(psk, KEY_LEN));

	/* One character short: refused, and never echoed. */
	setenv("POSTERN_TEST_PSK", "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgo=", 1);
	v = getenv("POSTERN_TEST_PSK");
	assert_false(psk_load(psk, &src, err, sizeof(err)));
	expect_error(err, "psk_env: environment variable POSTERN_TEST_PSK does "
		     "not hold a key");
	assert_null(strstr(err, "ZGVmZ2hp"));
	/* A mistyped secret is still a secret. */
	assert_true(taken("POSTERN_TEST_PSK", v, KEY_B64_LEN - 1));

	/* Far too long for a key: refused, and taken all the same. */
	setenv("POSTERN_TEST_PSK", PSK_B64 PSK_B64, 1);
	v = getenv("POSTERN_TEST_PSK");
	assert_false(psk_load(psk, &src, err, sizeof(err)));
	expect_error(err, "does not hold a key");
	assert_true(taken("POSTERN_TEST_PSK", v, 2 * KEY_B64_LEN));
}

static void from_credential(void **state)
{
	struct psk_source src = { .kind = PSK_CREDENTIAL, .value = "fleet-psk" };
	uint8_t psk[KEY_LEN];
	char err[512], dir[512], *slash;

	(void)state;
	snprintf(dir, sizeof(dir), "%s",
		 write_temp_file("fleet-psk", PSK_B64 "\n", 0400));
	slash = strrchr(dir, '/');
	*slash = '\0';

	unsetenv("CREDENTIALS_DIRECTORY");
	assert_false(psk_load(psk, &src, err, sizeof(err)));
	expect_error(err, "CREDENTIALS_DIRECTORY is not set");
	expect_error(err, "LoadCredential=fleet-psk:");

	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	assert_true(psk_load(psk, &src, err, sizeof(err)));
	assert_memory_equal(psk, psk_bytes, KEY_LEN);

	src.value = "absent";
	assert_false(psk_load(psk, &src, err, sizeof(err)));
	expect_error(err, "/absent: No such file or directory");
	unsetenv("CREDENTIALS_DIRECTORY");
}

static void from_passphrase(void **state)
{
	struct psk_source src = { .kind = PSK_PASSPHRASE, .value = SALT1 };
	uint8_t psk[KEY_LEN];
	char err[512];
	const char *v;
	pid_t pid;
	int status;

	(void)state;
	setenv(PSK_PASSPHRASE_ENV, PASSPHRASE, 1);
	v = getenv(PSK_PASSPHRASE_ENV);
	assert_true(psk_load(psk, &src, err, sizeof(err)));
	assert_hex(psk, PSK1);
	assert_true(taken(PSK_PASSPHRASE_ENV, v, strlen(PASSPHRASE)));

	src.value = "short";
	assert_false(psk_load(psk, &src, err, sizeof(err)));
	expect_error(err, "psk_passphrase_salt: must be at least 8 bytes");

	src.value = SALT1;
	setenv(PSK_PASSPHRASE_ENV, "", 1);
	assert_false(psk_load(psk, &src, err, sizeof(err)));
	expect_error(err, "the passphrase is empty");
	unsetenv(PSK_PASSPHRASE_ENV);

	/* No variable and no terminal: a new session has no /dev/tty. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		bool ok;

		setsid();
		ok = psk_load(psk, &src, err, sizeof(err));
		_exit(!ok && strstr(err, "no passphrase: set "
				    PSK_PASSPHRASE_ENV) ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc9106_argon2id),
		cmocka_unit_test(passphrase_parameters),
		cmocka_unit_test(from_file),
		cmocka_unit_test(from_env),
		cmocka_unit_test(from_credential),
		cmocka_unit_test(from_passphrase),
	};

	if (!crypto_init())
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
