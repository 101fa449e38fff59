/* Key text form and secret files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "keys.h"
#include "test_util.h"

/* RFC 7748 §6.1: Alice's private and public key. */
static const char *alice_priv_hex =
	"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
static const char *alice_pub_hex =
	"8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";

static void base64_known_answer(void **state)
{
	uint8_t *priv, back[KEY_LEN];
	char text[KEY_B64_LEN + 1];
	size_t len;

	(void)state;
	priv = hex_decode(alice_priv_hex, &len);
	key_to_base64(text, priv);
	/* python3 -c 'import base64;print(base64.b64encode(bytes.fromhex(...)))' */
	assert_string_equal(text, "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=");
	assert_true(key_from_base64(back, text));
	assert_memory_equal(back, priv, KEY_LEN);
	free(priv);
}

static void base64_every_byte_value(void **state)
{
	uint8_t key[KEY_LEN], back[KEY_LEN];
	char text[KEY_B64_LEN + 1];

	(void)state;
	for (int v = 0; v < 256; v++) {
		for (int i = 0; i < KEY_LEN; i++)
			key[i] = (uint8_t)(v + 37 * i);
		key_to_base64(text, key);
		assert_int_equal(strlen(text), KEY_B64_LEN);
		assert_true(key_from_base64(back, text));
		assert_memory_equal(back, key, KEY_LEN);
	}
}

static void base64_rejects(void **state)
{
	const char *good = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
	char bad[KEY_B64_LEN + 2];
	uint8_t key[KEY_LEN];

	(void)state;
	assert_false(key_from_base64(key, ""));
	assert_false(key_from_base64(key, "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo"));
	assert_false(key_from_base64(key, "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=="));
	for (size_t i = 0; i < KEY_B64_LEN - 1; i++) {
		const char *invalid = "=*-_. \n\x80";

		for (const char *c = invalid; *c; c++) {
			strcpy(bad, good);
			bad[i] = *c;
			assert_false(key_from_base64(key, bad));
		}
	}
	/* 'p' instead of 'o' sets bits past the 256th: not canonical */
	strcpy(bad, good);
	bad[KEY_B64_LEN - 2] = 'p';
	assert_false(key_from_base64(key, bad));
}

static void text_allows_trailing_space(void **state)
{
	uint8_t key[KEY_LEN];
	const char *line = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n";

	(void)state;
	assert_true(key_from_text(key, line, strlen(line)));
	assert_false(key_from_text(key, line, strlen(line) - 2));
	assert_false(key_from_text(key, " dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=", 45));
}

static void x25519_rfc7748(void **state)
{
	uint8_t *priv, *pub, out[KEY_LEN];
	size_t len;

	(void)state;
	priv = hex_decode(alice_priv_hex, &len);
	pub = hex_decode(alice_pub_hex, &len);
	assert_true(x25519_public(out, priv));
	assert_memory_equal(out, pub, KEY_LEN);
	free(priv);
	free(pub);
}

static void secret_file_modes(void **state)
{
	const char *text = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n";
	uint8_t key[KEY_LEN];
	char err[512];
	const char *path;

	(void)state;
	path = write_temp_file("good.key", text, 0600);
	assert_true(key_load_secret_file(key, path, err, sizeof(err)));
	path = write_temp_file("readonly.key", text, 0400);
	assert_true(key_load_secret_file(key, path, err, sizeof(err)));

	path = write_temp_file("group.key", text, 0640);
	assert_false(key_load_secret_file(key, path, err, sizeof(err)));
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "0640"));
	assert_non_null(strstr(err, "chmod 600 "));
	assert_null(strstr(err, "dwdt"));	/* never the key itself */

	path = write_temp_file("world.key", text, 0604);
	assert_false(key_load_secret_file(key, path, err, sizeof(err)));
	assert_non_null(strstr(err, "chmod 600"));

	path = write_temp_file("garbage.key", "not a key\n", 0600);
	assert_false(key_load_secret_file(key, path, err, sizeof(err)));
	assert_non_null(strstr(err, "not a key"));

	assert_false(key_load_secret_file(key, "/nonexistent/postern.key", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/postern.key: No such file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(base64_known_answer),
		cmocka_unit_test(base64_every_byte_value),
		cmocka_unit_test(base64_rejects),
		cmocka_unit_test(text_allows_trailing_space),
		cmocka_unit_test(x25519_rfc7748),
		cmocka_unit_test(secret_file_modes),
	};

	if (!crypto_init())
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
