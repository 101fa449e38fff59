/*
 * Every 25519_ChaChaPoly_BLAKE2s vector of the cacophony project (59, see
 * vectors/SOURCE.md): each handshake message, the handshake hash and each
 * transport message, written by one side and read by the other. Each
 * vector runs twice: computing every DH, then with "ss" taken from a lookup
 * (noise_handshake_set_ss_lookup) filled beforehand, as the daemons do.
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

/* DH(s, rs) of one side, computed before its handshake starts. */
struct precomputed {
	uint8_t s_pub[KEY_LEN], rs[KEY_LEN], ss[KEY_LEN];
	bool set;
	unsigned int hits;
};

static bool lookup(void *ctx, const uint8_t s_pub[KEY_LEN],
		   const uint8_t rs[KEY_LEN], uint8_t ss[KEY_LEN])
{
	struct precomputed *p = ctx;

	/* A lookup asked for other keys than its own must not answer. */
	assert_true(p->set);
	assert_memory_equal(s_pub, p->s_pub, KEY_LEN);
	assert_memory_equal(rs, p->rs, KEY_LEN);
	memcpy(ss, p->ss, KEY_LEN);
	p->hits++;
	return true;
}

/* Both static keys of the vector known: DH(s, peer's s) for side `side`. */
static void precompute(struct precomputed *p, const struct json *v,
		       const struct noise_keypair *kp, const char *peer_side)
{
	char name[32];
	uint8_t *peer;
	struct noise_keypair peer_kp;

	snprintf(name, sizeof(name), "%s_static", peer_side);
	if (!(peer = key_field(v, name)))
		return;
	assert_true(noise_keypair_init(&peer_kp, peer));
	memcpy(p->s_pub, kp->pub, KEY_LEN);
	memcpy(p->rs, peer_kp.pub, KEY_LEN);
	assert_true(x25519(p->ss, kp->priv, peer_kp.pub));
	p->set = true;
	free(peer);
}

static void start(struct noise_handshake *hs, const struct json *v,
		  enum noise_role role, struct precomputed *pre)
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
	if (pre && s) {
		precompute(pre, v, &kp, role == NOISE_INITIATOR ? "resp" : "init");
		if (pre->set)
			noise_handshake_set_ss_lookup(hs, lookup, pre);
	}
	free(prologue);
	free(s);
	free(rs);
	free(psk);
	free(e);
}

static unsigned int ss_tokens(const struct noise_pattern *p)
{
	unsigned int n = 0;

	for (int i = 0; i < p->n_msgs; i++)
		for (const uint8_t *t = p->msg[i]; *t; t++)
			n += *t == TOK_SS;
	return n;
}

/* One vector; with `cached`, "ss" comes from a lookup on either side.
 * Returns how many times the lookups answered; adds to *expected how many
 * they should have. */
static unsigned int run_vector(const struct json *v, bool cached,
			       unsigned int *expected)
{
	struct precomputed pre[2] = { 0 };
	struct noise_handshake ini, res;
	struct noise_cipher send[2], recv[2];
	uint8_t hash[2][HASH_LEN], *expected_hash, buf[NOISE_MAX_MSG], out[NOISE_MAX_MSG];
	const struct json *m;
	bool one_way;
	size_t i = 0, hlen;

	start(&ini, v, NOISE_INITIATOR, cached ? &pre[0] : NULL);
	start(&res, v, NOISE_RESPONDER, cached ? &pre[1] : NULL);
	one_way = ini.pattern.one_way;
	/* Each ss token is met once by each side, writer and reader. */
	if (expected)
		*expected += 2 * ss_tokens(&ini.pattern);

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
	for (i = 0; i < 2; i++) {
		noise_cipher_free(&send[i]);
		noise_cipher_free(&recv[i]);
	}
	return pre[0].hits + pre[1].hits;
}

static void all_vectors(void **state)
{
	struct json *root = json_load(VECTORS_FILE);
	const struct json *v;
	int checked = 0;
	unsigned int hits = 0, expected_hits = 0;
	const char *name;

	(void)state;
	assert_non_null(root);
	for (v = json_get(root, "vectors")->child; v; v = v->next) {
		name = json_get(v, "protocol_name")->text;
		print_message("%s\n", name);
		assert_int_equal(run_vector(v, false, NULL), 0);
		hits += run_vector(v, true, &expected_hits);
		checked++;
	}
	json_free(root);
	print_message("checked %d vectors, %u ss looked up\n", checked, hits);
	assert_int_equal(checked, EXPECTED_VECTORS);
	assert_int_equal(hits, expected_hits);
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
