/*
 * Adversarial tests of the Noise core with the two patterns postern uses:
 * a flipped bit anywhere, a truncated message, a wrong PSK or remote static
 * key, low-order points, nonce handling after a failed decrypt, exhaustion,
 * rekey and turn order. Each asserts the exact error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "noise.h"

#define IK "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
#define XPSK1 "Noise_Xpsk1_25519_ChaChaPoly_BLAKE2s"
#define PROLOGUE "postern/test"

static struct noise_keypair alice, server, mallory;
static uint8_t psk[KEY_LEN], other_psk[KEY_LEN];

static void make_party(struct noise_keypair *p)
{
	uint8_t priv[KEY_LEN];

	assert_true(random_bytes(priv, KEY_LEN));
	x25519_clamp(priv);
	assert_true(noise_keypair_init(p, priv));
}

static int setup(void **state)
{
	(void)state;
	make_party(&alice);
	make_party(&server);
	make_party(&mallory);
	assert_true(random_bytes(psk, KEY_LEN));
	memcpy(other_psk, psk, KEY_LEN);
	other_psk[7] ^= 0x20;
	return 0;
}

static void init_pair(struct noise_handshake *i, struct noise_handshake *r,
		      const char *proto, const uint8_t *i_rs, const uint8_t *r_psk)
{
	assert_int_equal(noise_handshake_init(i, proto, NOISE_INITIATOR, PROLOGUE,
					      strlen(PROLOGUE), &alice, i_rs, psk),
			 NOISE_OK);
	assert_int_equal(noise_handshake_init(r, proto, NOISE_RESPONDER, PROLOGUE,
					      strlen(PROLOGUE), &server, NULL, r_psk),
			 NOISE_OK);
}

/* Message 1 of proto from alice to server, with a 32-byte payload. */
static size_t first_message(const char *proto, uint8_t *msg, size_t cap,
			    struct noise_handshake *i)
{
	struct noise_handshake r;
	uint8_t payload[32] = "a knock or a client hello";
	size_t n = cap;

	init_pair(i, &r, proto, server.pub, psk);
	assert_int_equal(noise_handshake_write(i, msg, &n, payload, sizeof(payload)),
			 NOISE_OK);
	noise_handshake_wipe(&r);
	return n;
}

static enum noise_error respond(const char *proto, const uint8_t *msg,
				size_t len, const uint8_t *r_psk)
{
	struct noise_handshake r;
	uint8_t out[256];
	size_t n = sizeof(out);
	enum noise_error e;

	assert_int_equal(noise_handshake_init(&r, proto, NOISE_RESPONDER, PROLOGUE,
					      strlen(PROLOGUE), &server, NULL, r_psk),
			 NOISE_OK);
	e = noise_handshake_read(&r, out, &n, msg, len);
	noise_handshake_wipe(&r);
	return e;
}

static void check_every_bit_flip(const char *proto)
{
	struct noise_handshake i;
	uint8_t msg[256];
	size_t len = first_message(proto, msg, sizeof(msg), &i);

	assert_int_equal(respond(proto, msg, len, psk), NOISE_OK);
	for (size_t byte = 0; byte < len; byte++) {
		for (int bit = 0; bit < 8; bit += 3) {
			enum noise_error e;

			msg[byte] ^= (uint8_t)(1 << bit);
			e = respond(proto, msg, len, psk);
			msg[byte] ^= (uint8_t)(1 << bit);
			/* A flipped ephemeral may land on a low-order point. */
			if (e != NOISE_E_DH)
				assert_int_equal(e, NOISE_E_DECRYPT);
		}
	}
	noise_handshake_wipe(&i);
}

static void bit_flips_ik(void **state)
{
	(void)state;
	check_every_bit_flip(IK);
}

static void bit_flips_xpsk1(void **state)
{
	(void)state;
	check_every_bit_flip(XPSK1);
}

static void truncated_and_extended(void **state)
{
	const char *protos[] = { IK, XPSK1 };

	(void)state;
	for (size_t p = 0; p < 2; p++) {
		struct noise_handshake i;
		uint8_t msg[256];
		size_t len = first_message(protos[p], msg, sizeof(msg), &i);

		for (size_t cut = 0; cut < len; cut++) {
			enum noise_error e = respond(protos[p], msg, cut, psk);

			assert_true(e == NOISE_E_SHORT || e == NOISE_E_DECRYPT);
		}
		/* One byte more shifts the tag: the payload fails to verify. */
		msg[len] = 0;
		assert_int_equal(respond(protos[p], msg, len + 1, psk), NOISE_E_DECRYPT);
		noise_handshake_wipe(&i);
	}
}

/* Xpsk1 mixes the psk into message 1: the responder refuses it at once. */
static void wrong_psk_xpsk1(void **state)
{
	struct noise_handshake i;
	uint8_t msg[256];
	size_t len = first_message(XPSK1, msg, sizeof(msg), &i);

	(void)state;
	assert_int_equal(respond(XPSK1, msg, len, other_psk), NOISE_E_DECRYPT);
	assert_int_equal(respond(XPSK1, msg, len, psk), NOISE_OK);
	noise_handshake_wipe(&i);
}

/* IKpsk2 mixes it at the end of message 2: the initiator refuses the reply. */
static void wrong_psk_ikpsk2(void **state)
{
	struct noise_handshake i, r;
	uint8_t msg[256], out[256];
	size_t n = sizeof(msg), got = sizeof(out);

	(void)state;
	init_pair(&i, &r, IK, server.pub, other_psk);
	assert_int_equal(noise_handshake_write(&i, msg, &n, NULL, 0), NOISE_OK);
	assert_int_equal(noise_handshake_read(&r, out, &got, msg, n), NOISE_OK);
	n = sizeof(msg);
	got = sizeof(out);
	assert_int_equal(noise_handshake_write(&r, msg, &n, NULL, 0), NOISE_OK);
	assert_int_equal(noise_handshake_read(&i, out, &got, msg, n), NOISE_E_DECRYPT);
	assert_false(noise_handshake_done(&i));
	noise_handshake_wipe(&i);
	noise_handshake_wipe(&r);
}

/* A message made for another server's key fails at that server. */
static void wrong_remote_static(void **state)
{
	const char *protos[] = { IK, XPSK1 };

	(void)state;
	for (size_t p = 0; p < 2; p++) {
		struct noise_handshake i, r;
		uint8_t msg[256], payload[4] = { 1 }, out[256];
		size_t n = sizeof(msg), got = sizeof(out);

		init_pair(&i, &r, protos[p], mallory.pub, psk);
		assert_int_equal(noise_handshake_write(&i, msg, &n, payload, 4), NOISE_OK);
		assert_int_equal(noise_handshake_read(&r, out, &got, msg, n), NOISE_E_DECRYPT);
		/* The failed handshake refuses to go on. */
		got = sizeof(out);
		assert_int_equal(noise_handshake_read(&r, out, &got, msg, n), NOISE_E_STATE);
		noise_handshake_wipe(&i);
		noise_handshake_wipe(&r);
	}
}

static void low_order_ephemeral(void **state)
{
	struct noise_handshake i;
	uint8_t msg[256];
	size_t len = first_message(IK, msg, sizeof(msg), &i);

	(void)state;
	memset(msg, 0, KEY_LEN);		/* e = 0, a low-order point */
	assert_int_equal(respond(IK, msg, len, psk), NOISE_E_DH);
	memset(msg, 0, KEY_LEN);
	msg[0] = 1;				/* e = 1, another */
	assert_int_equal(respond(IK, msg, len, psk), NOISE_E_DH);
	noise_handshake_wipe(&i);
}

static void low_order_static_key(void **state)
{
	static const uint8_t zero[KEY_LEN];
	struct noise_handshake i;
	uint8_t msg[256], payload[1] = { 0 };
	size_t n = sizeof(msg);

	(void)state;
	assert_int_equal(noise_handshake_init(&i, IK, NOISE_INITIATOR, NULL, 0,
					      &alice, zero, psk), NOISE_OK);
	assert_int_equal(noise_handshake_write(&i, msg, &n, payload, 1), NOISE_E_DH);
	noise_handshake_wipe(&i);
}

/* Complete an IKpsk2 handshake; return the transport ciphers. */
static void handshake(struct noise_cipher *i_send, struct noise_cipher *i_recv,
		      struct noise_cipher *r_send, struct noise_cipher *r_recv)
{
	struct noise_handshake i, r;
	uint8_t msg[256], out[256], h1[HASH_LEN], h2[HASH_LEN];
	size_t n = sizeof(msg), got = sizeof(out);

	init_pair(&i, &r, IK, server.pub, psk);
	assert_int_equal(noise_handshake_write(&i, msg, &n, NULL, 0), NOISE_OK);
	assert_int_equal(noise_handshake_read(&r, out, &got, msg, n), NOISE_OK);
	assert_memory_equal(r.rs, alice.pub, KEY_LEN);
	n = sizeof(msg);
	got = sizeof(out);
	assert_int_equal(noise_handshake_write(&r, msg, &n, NULL, 0), NOISE_OK);
	assert_int_equal(noise_handshake_read(&i, out, &got, msg, n), NOISE_OK);
	assert_true(noise_handshake_done(&i) && noise_handshake_done(&r));
	assert_int_equal(noise_handshake_split(&i, i_send, i_recv, h1), NOISE_OK);
	assert_int_equal(noise_handshake_split(&r, r_send, r_recv, h2), NOISE_OK);
	assert_memory_equal(h1, h2, HASH_LEN);
	/* split wiped the handshake secrets */
	assert_true(is_zero_ct(i.e_priv, KEY_LEN) && is_zero_ct(i.s_priv, KEY_LEN));
	assert_true(is_zero_ct(r.ss.ck, HASH_LEN) && is_zero_ct(r.psk, KEY_LEN));
}

static void failed_decrypt_keeps_nonce(void **state)
{
	struct noise_cipher is, ir, rs, rr;
	uint8_t a[64] = "first", b[64] = "second", ca[80], cb[80], out[64];

	(void)state;
	handshake(&is, &ir, &rs, &rr);
	assert_int_equal(noise_encrypt(&is, ca, NULL, 0, a, sizeof(a)), NOISE_OK);
	assert_int_equal(noise_encrypt(&is, cb, NULL, 0, b, sizeof(b)), NOISE_OK);

	ca[5] ^= 1;
	assert_int_equal(noise_decrypt(&rr, out, NULL, 0, ca, sizeof(ca)), NOISE_E_DECRYPT);
	assert_int_equal(rr.n, 0);
	assert_true(is_zero_ct(out, sizeof(out)));	/* nothing unverified leaks */
	assert_int_equal(noise_decrypt(&rr, out, NULL, 0, ca, 8), NOISE_E_SHORT);
	ca[5] ^= 1;
	assert_int_equal(noise_decrypt(&rr, out, NULL, 0, ca, sizeof(ca)), NOISE_OK);
	assert_memory_equal(out, a, sizeof(a));
	/* replaying the first message now fails: the nonce moved on */
	assert_int_equal(noise_decrypt(&rr, out, NULL, 0, ca, sizeof(ca)), NOISE_E_DECRYPT);
	assert_int_equal(noise_decrypt(&rr, out, NULL, 0, cb, sizeof(cb)), NOISE_OK);
	assert_memory_equal(out, b, sizeof(b));

	/* the other direction uses the other key */
	assert_int_equal(noise_encrypt(&rs, ca, NULL, 0, a, sizeof(a)), NOISE_OK);
	assert_int_equal(noise_decrypt(&rr, out, NULL, 0, ca, sizeof(ca)), NOISE_E_DECRYPT);
	assert_int_equal(noise_decrypt(&ir, out, NULL, 0, ca, sizeof(ca)), NOISE_OK);
}

static void nonce_exhaustion(void **state)
{
	struct noise_cipher is, ir, rs, rr;
	uint8_t a[8] = { 0 }, c[8 + TAG_LEN], out[8];

	(void)state;
	handshake(&is, &ir, &rs, &rr);
	is.n = rr.n = UINT64_MAX - 1;
	assert_int_equal(noise_encrypt(&is, c, NULL, 0, a, sizeof(a)), NOISE_OK);
	assert_int_equal(noise_decrypt(&rr, out, NULL, 0, c, sizeof(c)), NOISE_OK);
	/* 2^64 − 1 is reserved: neither side may use it */
	assert_int_equal(noise_encrypt(&is, c, NULL, 0, a, sizeof(a)), NOISE_E_NONCE);
	assert_int_equal(noise_decrypt(&rr, out, NULL, 0, c, sizeof(c)), NOISE_E_NONCE);
}

static void rekey(void **state)
{
	struct noise_cipher is, ir, rs, rr;
	uint8_t a[16] = "rekeyed", c[16 + TAG_LEN], out[16], old[KEY_LEN];

	(void)state;
	handshake(&is, &ir, &rs, &rr);
	memcpy(old, is.k, KEY_LEN);
	noise_rekey(&is);
	assert_memory_not_equal(old, is.k, KEY_LEN);
	assert_int_equal(is.n, 0);	/* rekey keeps the nonce */
	assert_int_equal(noise_encrypt(&is, c, NULL, 0, a, sizeof(a)), NOISE_OK);
	assert_int_equal(noise_decrypt(&rr, out, NULL, 0, c, sizeof(c)), NOISE_E_DECRYPT);
	noise_rekey(&rr);
	assert_memory_equal(is.k, rr.k, KEY_LEN);
	assert_int_equal(noise_decrypt(&rr, out, NULL, 0, c, sizeof(c)), NOISE_OK);
	assert_memory_equal(out, a, sizeof(a));
}

static void turn_order_and_keys(void **state)
{
	struct noise_handshake i, r;
	uint8_t msg[256], out[256];
	size_t n = sizeof(msg), got = sizeof(out);

	(void)state;
	init_pair(&i, &r, IK, server.pub, psk);
	assert_int_equal(noise_handshake_write(&r, msg, &n, NULL, 0), NOISE_E_STATE);
	assert_int_equal(noise_handshake_read(&i, out, &got, msg, 96), NOISE_E_STATE);
	n = 10;
	assert_int_equal(noise_handshake_write(&i, msg, &n, NULL, 0), NOISE_E_SPACE);
	noise_handshake_wipe(&i);
	noise_handshake_wipe(&r);

	/* IK needs the responder's key, and every psk pattern a psk */
	assert_int_equal(noise_handshake_init(&i, IK, NOISE_INITIATOR, NULL, 0,
					      &alice, NULL, psk), NOISE_E_KEYS);
	assert_int_equal(noise_handshake_init(&i, IK, NOISE_INITIATOR, NULL, 0,
					      &alice, server.pub, NULL), NOISE_E_KEYS);
	assert_int_equal(noise_handshake_init(&i, "Noise_IKpsk2_448_AESGCM_SHA512",
					      NOISE_INITIATOR, NULL, 0, &alice,
					      server.pub, psk), NOISE_E_PROTOCOL);
	assert_int_equal(noise_handshake_init(&i, "Noise_QQ_25519_ChaChaPoly_BLAKE2s",
					      NOISE_INITIATOR, NULL, 0, NULL, NULL, NULL),
			 NOISE_E_PROTOCOL);
	assert_int_equal(noise_handshake_init(&i, "Noise_NNpsk9_25519_ChaChaPoly_BLAKE2s",
					      NOISE_INITIATOR, NULL, 0, NULL, NULL, psk),
			 NOISE_E_PROTOCOL);
}

static void payload_too_large_for_buffer(void **state)
{
	struct noise_handshake i, r;
	uint8_t msg[256], out[8];
	uint8_t payload[32] = { 0 };
	size_t n = sizeof(msg), got = sizeof(out);

	(void)state;
	init_pair(&i, &r, IK, server.pub, psk);
	assert_int_equal(noise_handshake_write(&i, msg, &n, payload, sizeof(payload)), NOISE_OK);
	assert_int_equal(noise_handshake_read(&r, out, &got, msg, n), NOISE_E_SPACE);
	noise_handshake_wipe(&i);
	noise_handshake_wipe(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bit_flips_ik),
		cmocka_unit_test(bit_flips_xpsk1),
		cmocka_unit_test(truncated_and_extended),
		cmocka_unit_test(wrong_psk_xpsk1),
		cmocka_unit_test(wrong_psk_ikpsk2),
		cmocka_unit_test(wrong_remote_static),
		cmocka_unit_test(low_order_ephemeral),
		cmocka_unit_test(low_order_static_key),
		cmocka_unit_test(failed_decrypt_keeps_nonce),
		cmocka_unit_test(nonce_exhaustion),
		cmocka_unit_test(rekey),
		cmocka_unit_test(turn_order_and_keys),
		cmocka_unit_test(payload_too_large_for_buffer),
	};

	if (!crypto_init())
		return 1;
	return cmocka_run_group_tests(tests, setup, NULL);
}
