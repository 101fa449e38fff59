/*
 * Every 25519_ChaChaPoly_BLAKE2s vector of the cacophony project (59, see
 * vectors/SOURCE.md): each handshake message, the handshake hash and each
 * transport message, written by one side and read by the other.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "json.h"
#include "noise.h"
#include "test_util.h"

#define EXPECTED_VECTORS 59

static uint8_t *field(const struct json *v, const char *name, size_t *len)
{
	const struct json *f = json_get(v, name);

	if (!f)
		return NULL;
	if (f->type == JSON_ARRAY) {	/* psk lists: one psk per pattern */
		assert_int_equal(json_count(f), 1);
		f = f->child;
	}
	return hex_decode(f->text, len);
}

static uint8_t *key_field(const struct json *v, const char *name)
{
	size_t len = 0;
	uint8_t *k = field(v, name, &len);

	if (k)
		assert_int_equal(len, KEY_LEN);
	return k;
}

static void start(struct noise_handshake *hs, const struct json *v,
		  enum noise_role role)
{
	const char *side = role == NOISE_INITIATOR ? "init" : "resp";
	char name[32];
	uint8_t *prologue, *s, *rs, *psk, *e;
	struct noise_keypair kp;
	size_t plen;

	snprintf(name, sizeof(name), "%s_prologue", side);
	prologue = field(v, name, &plen);
	snprintf(name, sizeof(name), "%s_static", side);
	s = key_field(v, name);
	snprintf(name, sizeof(name), "%s_remote_static", side);
	rs = key_field(v, name);
	snprintf(name, sizeof(name), "%s_psks", side);
	psk = key_field(v, name);
	snprintf(name, sizeof(name), "%s_ephemeral", side);
	e = key_field(v, name);

	if (s)
		assert_true(noise_keypair_init(&kp, s));
	assert_int_equal(noise_handshake_init(hs, json_get(v, "protocol_name")->text,
					      role, prologue, plen, s ? &kp : NULL,
					      rs, psk),
			 NOISE_OK);
	if (e)
		noise_handshake_set_ephemeral(hs, e);
	free(prologue);
	free(s);
	free(rs);
	free(psk);
	free(e);
}

static void run_vector(const struct json *v)
{
	struct noise_handshake ini, res;
	struct noise_cipher send[2], recv[2];
	uint8_t hash[2][HASH_LEN], *expected_hash, buf[NOISE_MAX_MSG], out[NOISE_MAX_MSG];
	const struct json *m;
	bool one_way;
	size_t i = 0, hlen;

	start(&ini, v, NOISE_INITIATOR);
	start(&res, v, NOISE_RESPONDER);
	one_way = ini.pattern.one_way;

	for (m = json_get(v, "messages")->child; m; m = m->next, i++) {
		size_t plen, clen, n = sizeof(buf), got = sizeof(out);
		uint8_t *payload = field(m, "payload", &plen);
		uint8_t *ct = field(m, "ciphertext", &clen);
		int from = one_way ? 0 : (int)(i % 2);	/* 0: initiator */
		struct noise_handshake *w = from ? &res : &ini;
		struct noise_handshake *r = from ? &ini : &res;

		if (!noise_handshake_done(&ini)) {
			assert_true(noise_handshake_my_turn(w));
			assert_int_equal(noise_handshake_write(w, buf, &n, payload, plen), NOISE_OK);
			assert_int_equal(n, clen);
			assert_memory_equal(buf, ct, clen);
			assert_int_equal(noise_handshake_read(r, out, &got, ct, clen), NOISE_OK);
			assert_int_equal(got, plen);
			assert_memory_equal(out, payload, plen);
			if (noise_handshake_done(&ini)) {
				assert_true(noise_handshake_done(&res));
				assert_int_equal(noise_handshake_split(&ini, &send[0], &recv[0], hash[0]), NOISE_OK);
				assert_int_equal(noise_handshake_split(&res, &send[1], &recv[1], hash[1]), NOISE_OK);
				expected_hash = hex_decode(json_get(v, "handshake_hash")->text, &hlen);
				assert_int_equal(hlen, HASH_LEN);
				assert_memory_equal(hash[0], expected_hash, HASH_LEN);
				assert_memory_equal(hash[1], expected_hash, HASH_LEN);
				free(expected_hash);
			}
		} else {
			assert_int_equal(clen, plen + TAG_LEN);
			assert_int_equal(noise_encrypt(&send[from], buf, NULL, 0, payload, plen), NOISE_OK);
			assert_memory_equal(buf, ct, clen);
			assert_int_equal(noise_decrypt(&recv[!from], out, NULL, 0, ct, clen), NOISE_OK);
			assert_memory_equal(out, payload, plen);
		}
		free(payload);
		free(ct);
	}
	/* Every vector ends with transport messages: the handshake finished. */
	assert_true(noise_handshake_done(&ini));
}

static void all_vectors(void **state)
{
	struct json *root = json_load(VECTORS_FILE);
	const struct json *v;
	int checked = 0;

	(void)state;
	assert_non_null(root);
	for (v = json_get(root, "vectors")->child; v; v = v->next) {
		print_message("%s\n", json_get(v, "protocol_name")->text);
		run_vector(v);
		checked++;
	}
	json_free(root);
	print_message("checked %d vectors\n", checked);
	assert_int_equal(checked, EXPECTED_VECTORS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(all_vectors),
	};

	if (!crypto_init())
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
