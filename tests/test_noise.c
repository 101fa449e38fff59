/*
 * Adversarial tests of the Noise core with the two patterns postern uses:
 * a flipped bit anywhere, a truncated message, a wrong PSK or remote static
 * key, low-order points, nonce handling after a failed decrypt, exhaustion,
 * rekey and turn order. Each asserts the exact error. Then the "ss" lookup:
 * a responder that takes DH(s, rs) from it makes the very messages and keys
 * of one that computes it, with one X25519 fewer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "noise.h"
#include "x25519_hook.h"

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

static void free_ciphers(struct noise_cipher *a, struct noise_cipher *b,
			 struct noise_cipher *c, struct noise_cipher *d)
{
	noise_cipher_free(a);
	noise_cipher_free(b);
	noise_cipher_free(c);
	noise_cipher_free(d);
	assert_null(a->aead.hd);
	assert_true(is_zero_ct(a->k, KEY_LEN));
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
	free_ciphers(&is, &ir, &rs, &rr);
}

/* A transport CipherState keeps its key in one libgcrypt handle for all its
 * messages: each must be the bytes a handle opened for that message alone
 * makes (aead_encrypt), across lengths, a failed decrypt and a rekey. */
static void one_handle_many_messages(void **state)
{
	struct noise_cipher is, ir, rs, rr;
	static uint8_t in[2000], c[2000 + TAG_LEN], want[2000 + TAG_LEN], out[2000];
	uint8_t ad[7] = "ad", key[KEY_LEN];
	size_t len;

	(void)state;
	handshake(&is, &ir, &rs, &rr);
	assert_non_null(is.aead.hd);
	assert_non_null(rr.aead.hd);
	for (unsigned int m = 0; m < 1000; m++) {
		len = (m * 37) % sizeof(in);
		assert_true(random_bytes(in, len + 1));
		memcpy(key, is.k, KEY_LEN);
		assert_true(aead_encrypt(want, key, is.n, ad, m % 2 ? sizeof(ad) : 0,
					 in, len));
		assert_int_equal(noise_encrypt(&is, c, ad, m % 2 ? sizeof(ad) : 0,
					       in, len), NOISE_OK);
		assert_memory_equal(c, want, len + TAG_LEN);
		if (m % 97 == 5) {	/* a forgery first: the next still opens */
			c[len] ^= 1;
			assert_int_equal(noise_decrypt(&rr, out, ad, m % 2 ? sizeof(ad) : 0,
						       c, len + TAG_LEN), NOISE_E_DECRYPT);
			c[len] ^= 1;
		}
		assert_true(aead_decrypt(out, key, rr.n, ad, m % 2 ? sizeof(ad) : 0,
					 c, len + TAG_LEN));
		assert_memory_equal(out, in, len);
		memset(out, 0, sizeof(out));
		assert_int_equal(noise_decrypt(&rr, out, ad, m % 2 ? sizeof(ad) : 0,
					       c, len + TAG_LEN), NOISE_OK);
		assert_memory_equal(out, in, len);
		if (m == 500) {
			noise_rekey(&is);
			noise_rekey(&rr);
			assert_memory_not_equal(is.k, key, KEY_LEN);
		}
	}
	assert_int_equal(is.n, 1000);
	free_ciphers(&is, &ir, &rs, &rr);
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
	free_ciphers(&is, &ir, &rs, &rr);
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
	free_ciphers(&is, &ir, &rs, &rr);
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

/* An ss lookup with one answer, which may be made wrong. */
struct ss_table {
	uint8_t s_pub[KEY_LEN], rs[KEY_LEN], ss[KEY_LEN];
	bool answer;
	unsigned int asked;
};

static bool table_lookup(void *ctx, const uint8_t s_pub[KEY_LEN],
			 const uint8_t rs[KEY_LEN], uint8_t ss[KEY_LEN])
{
	struct ss_table *t = ctx;

	t->asked++;
	if (!t->answer || memcmp(s_pub, t->s_pub, KEY_LEN) != 0 ||
	    memcmp(rs, t->rs, KEY_LEN) != 0)
		return false;
	memcpy(ss, t->ss, KEY_LEN);
	return true;
}

/* The server's table, holding DH(server, alice). */
static void server_table(struct ss_table *t)
{
	memset(t, 0, sizeof(*t));
	memcpy(t->s_pub, server.pub, KEY_LEN);
	memcpy(t->rs, alice.pub, KEY_LEN);
	assert_true(x25519(t->ss, server.priv, alice.pub));
	t->answer = true;
}

static void responder(struct noise_handshake *r, const char *proto,
		      struct ss_table *t)
{
	assert_int_equal(noise_handshake_init(r, proto, NOISE_RESPONDER, PROLOGUE,
					      strlen(PROLOGUE), &server, NULL, psk),
			 NOISE_OK);
	if (t)
		noise_handshake_set_ss_lookup(r, table_lookup, t);
}

/* Read msg with r; the X25519 operations it took. */
static unsigned long read_counted(struct noise_handshake *r, const uint8_t *msg,
				  size_t n, uint8_t *out, size_t *got)
{
	unsigned long before = x25519_calls();

	assert_int_equal(noise_handshake_read(r, out, got, msg, n), NOISE_OK);
	return x25519_calls() - before;
}

/* Xpsk1 (the knock): the same payload and handshake hash with the lookup,
 * for one X25519 (es) instead of two. */
static void ss_lookup_xpsk1(void **state)
{
	struct noise_handshake i, plain, cached;
	struct ss_table t;
	uint8_t msg[256], out1[256], out2[256];
	size_t n = first_message(XPSK1, msg, sizeof(msg), &i);
	size_t g1 = sizeof(out1), g2 = sizeof(out2);

	(void)state;
	noise_handshake_wipe(&i);
	server_table(&t);
	responder(&plain, XPSK1, NULL);
	responder(&cached, XPSK1, &t);
	assert_int_equal(read_counted(&plain, msg, n, out1, &g1), 2);
	assert_int_equal(read_counted(&cached, msg, n, out2, &g2), 1);
	assert_int_equal(t.asked, 1);
	assert_int_equal(g1, g2);
	assert_memory_equal(out1, out2, g1);
	assert_memory_equal(plain.ss.h, cached.ss.h, HASH_LEN);
	assert_memory_equal(plain.ss.ck, cached.ss.ck, HASH_LEN);
	assert_memory_equal(cached.rs, alice.pub, KEY_LEN);
	noise_handshake_wipe(&plain);
	noise_handshake_wipe(&cached);
}

/* IKpsk2 (the tunnel): message 2 and the transport keys are the same
 * bytes whether the responder looked ss up or computed it. */
static void ss_lookup_ikpsk2(void **state)
{
	struct noise_handshake i, plain, cached;
	struct noise_cipher send[3], recv[3];
	struct ss_table t;
	uint8_t msg[256], m2[2][256], out[256], h[3][HASH_LEN], e[KEY_LEN];
	size_t n = first_message(IK, msg, sizeof(msg), &i), n2[2];
	size_t got = sizeof(out);

	(void)state;
	server_table(&t);
	responder(&plain, IK, NULL);
	responder(&cached, IK, &t);
	assert_int_equal(read_counted(&plain, msg, n, out, &got), 2);
	got = sizeof(out);
	assert_int_equal(read_counted(&cached, msg, n, out, &got), 1);
	/* the same ephemeral: message 2 must then be the same bytes */
	assert_true(random_bytes(e, KEY_LEN));
	noise_handshake_set_ephemeral(&plain, e);
	noise_handshake_set_ephemeral(&cached, e);
	n2[0] = n2[1] = sizeof(m2[0]);
	assert_int_equal(noise_handshake_write(&plain, m2[0], &n2[0], NULL, 0), NOISE_OK);
	assert_int_equal(noise_handshake_write(&cached, m2[1], &n2[1], NULL, 0), NOISE_OK);
	assert_int_equal(n2[0], n2[1]);
	assert_memory_equal(m2[0], m2[1], n2[0]);
	got = sizeof(out);
	assert_int_equal(noise_handshake_read(&i, out, &got, m2[1], n2[1]), NOISE_OK);
	assert_int_equal(noise_handshake_split(&plain, &send[0], &recv[0], h[0]), NOISE_OK);
	assert_int_equal(noise_handshake_split(&cached, &send[1], &recv[1], h[1]), NOISE_OK);
	assert_memory_equal(h[0], h[1], HASH_LEN);
	assert_memory_equal(send[0].k, send[1].k, KEY_LEN);
	assert_memory_equal(recv[0].k, recv[1].k, KEY_LEN);
	assert_int_equal(noise_handshake_split(&i, &send[2], &recv[2], h[2]), NOISE_OK);
	assert_memory_equal(h[2], h[1], HASH_LEN);
	assert_memory_equal(send[2].k, recv[1].k, KEY_LEN);
	assert_int_equal(t.asked, 1);
	free_ciphers(&send[0], &recv[0], &send[1], &recv[1]);
	noise_cipher_free(&send[2]);
	noise_cipher_free(&recv[2]);
}

/* The result is used, and checked: a wrong one fails the handshake, an
 * all-zero one is a low-order DH, and "not known" computes it. */
static void ss_lookup_answers(void **state)
{
	struct noise_handshake i, r;
	struct ss_table t;
	uint8_t msg[256], out[256];
	size_t n, got;
	const char *proto[] = { XPSK1, IK };

	(void)state;
	for (size_t k = 0; k < 2; k++) {
		n = first_message(proto[k], msg, sizeof(msg), &i);
		noise_handshake_wipe(&i);

		server_table(&t);
		t.ss[3] ^= 1;
		responder(&r, proto[k], &t);
		got = sizeof(out);
		assert_int_equal(noise_handshake_read(&r, out, &got, msg, n), NOISE_E_DECRYPT);

		server_table(&t);
		memset(t.ss, 0, KEY_LEN);
		responder(&r, proto[k], &t);
		got = sizeof(out);
		assert_int_equal(noise_handshake_read(&r, out, &got, msg, n), NOISE_E_DH);

		server_table(&t);
		t.answer = false;
		responder(&r, proto[k], &t);
		got = sizeof(out);
		assert_int_equal(read_counted(&r, msg, n, out, &got), 2);
		assert_int_equal(t.asked, 1);
		noise_handshake_wipe(&r);
	}
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
		cmocka_unit_test(one_handle_many_messages),
		cmocka_unit_test(nonce_exhaustion),
		cmocka_unit_test(rekey),
		cmocka_unit_test(turn_order_and_keys),
		cmocka_unit_test(payload_too_large_for_buffer),
		cmocka_unit_test(ss_lookup_xpsk1),
		cmocka_unit_test(ss_lookup_ikpsk2),
		cmocka_unit_test(ss_lookup_answers),
	};

	if (!crypto_init())
		return 1;
	return cmocka_run_group_tests(tests, setup, NULL);
}
