/*
 * The knock codec and posternd's pipeline, adversarially: every refusal
 * reason, in the order the checks run, and what each leaves behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "test_util.h"

#include "ip_udp.h"
#include "knock.h"
#include "knock_verify.h"

#define NOW 1800000000000ull	/* ms */

static struct noise_keypair server, other_server, alice, bob, mallory;
static uint8_t psk[KEY_LEN], other_psk[KEY_LEN];
static struct client_entry clients[2];
static uint16_t alice_ports[] = { 8443, 22 }, bob_ports[] = { 8443 };
static struct server_config cfg;
static uint8_t src[16], other_src[16];

static int setup(void **state)
{
	(void)state;
	test_keypair(&server);
	test_keypair(&other_server);
	test_keypair(&alice);
	test_keypair(&bob);
	test_keypair(&mallory);
	random_bytes(psk, KEY_LEN);
	memcpy(other_psk, psk, KEY_LEN);
	other_psk[0] ^= 1;
	clients[0] = (struct client_entry){ .name = "alice", .open = alice_ports,
					    .n_open = 2 };
	memcpy(clients[0].public_key, alice.pub, KEY_LEN);
	clients[1] = (struct client_entry){ .name = "bob", .open = bob_ports,
					    .n_open = 1,
					    .expires_at = (int64_t)(NOW / 1000) - 1 };
	memcpy(clients[1].public_key, bob.pub, KEY_LEN);
	cfg.clients = clients;
	cfg.n_clients = 2;
	cfg.knock = (struct knock_config){ .window = 30, .open_seconds = 30,
					   .max_open_seconds = 300 };
	assert_true(addr_from_text(src, "192.0.2.7"));
	assert_true(addr_from_text(other_src, "2001:db8::7"));
	return 0;
}

static void make(uint8_t pkt[KNOCK_LEN], const struct noise_keypair *client,
		 const uint8_t *server_pub, const uint8_t *key, uint64_t ts)
{
	struct knock_payload p = { .timestamp_ms = ts };

	assert_true(knock_build(pkt, client, server_pub, key, &p));
}

static void start(struct knock_verifier *v)
{
	cfg.knock.allow_target = false;
	assert_true(knock_verifier_init(v, &server, psk, &cfg, NOW - 1000));
}

static enum knock_reason verify(struct knock_verifier *v, const uint8_t *pkt,
				size_t len, uint64_t now)
{
	struct knock_decision d;

	return knock_verify(v, pkt, len, src, now, &d);
}

static void valid_knock(void **state)
{
	struct knock_verifier v;
	struct knock_decision d;
	uint8_t pkt[KNOCK_LEN];

	(void)state;
	start(&v);
	make(pkt, &alice, server.pub, psk, NOW);
	assert_int_equal(pkt[0], KNOCK_VERSION);
	assert_int_equal(knock_verify(&v, pkt, KNOCK_LEN, src, NOW, &d), KNOCK_OK);
	assert_ptr_equal(d.client, &clients[0]);
	assert_memory_equal(d.target, src, 16);
	assert_int_equal(d.open_seconds, 30);
	assert_int_equal(d.timestamp_ms, NOW);
	assert_int_equal(v.counters[KNOCK_OK], 1);
	knock_verifier_free(&v);
}

static void open_seconds_capped(void **state)
{
	struct knock_verifier v;
	struct knock_decision d;
	struct knock_payload p = { .timestamp_ms = NOW, .open_seconds = 60 };
	uint8_t pkt[KNOCK_LEN];

	(void)state;
	start(&v);
	assert_true(knock_build(pkt, &alice, server.pub, psk, &p));
	assert_int_equal(knock_verify(&v, pkt, KNOCK_LEN, src, NOW, &d), KNOCK_OK);
	assert_int_equal(d.open_seconds, 60);
	p.open_seconds = 65535;
	p.timestamp_ms++;
	assert_true(knock_build(pkt, &alice, server.pub, psk, &p));
	assert_int_equal(knock_verify(&v, pkt, KNOCK_LEN, src, NOW, &d), KNOCK_OK);
	assert_int_equal(d.open_seconds, 300);
	knock_verifier_free(&v);
}

static void wrong_lengths(void **state)
{
	struct knock_verifier v;
	uint8_t pkt[KNOCK_LEN + 64] = { 0 };

	(void)state;
	start(&v);
	make(pkt, &alice, server.pub, psk, NOW);
	for (size_t len = 0; len < sizeof(pkt); len++)
		if (len != KNOCK_LEN)
			assert_int_equal(verify(&v, pkt, len, NOW), KNOCK_BAD_LENGTH);
	assert_int_equal(v.counters[KNOCK_BAD_LENGTH], sizeof(pkt) - 1);
	assert_int_equal(v.last_ms[0], 0);
	/* The untouched knock still opens: nothing above consumed it. */
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_OK);
	knock_verifier_free(&v);
}

static void bad_version(void **state)
{
	struct knock_verifier v;
	uint8_t pkt[KNOCK_LEN];

	(void)state;
	start(&v);
	make(pkt, &alice, server.pub, psk, NOW);
	for (int version = 0; version < 256; version++) {
		if (version == KNOCK_VERSION)
			continue;
		pkt[0] = (uint8_t)version;
		assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_BAD_VERSION);
	}
	knock_verifier_free(&v);
}

/* Every bit: mac1 covers the whole packet, so every flip fails there. */
static void every_bit_flipped(void **state)
{
	struct knock_verifier v;
	uint8_t pkt[KNOCK_LEN];

	(void)state;
	start(&v);
	make(pkt, &alice, server.pub, psk, NOW);
	for (size_t i = 1; i < KNOCK_LEN; i++) {
		for (int bit = 0; bit < 8; bit++) {
			pkt[i] ^= (uint8_t)(1 << bit);
			assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_BAD_MAC1);
			pkt[i] ^= (uint8_t)(1 << bit);
		}
	}
	assert_int_equal(v.counters[KNOCK_BAD_MAC1], (KNOCK_LEN - 1) * 8);
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_OK);
	knock_verifier_free(&v);
}

/* Someone who knows the server's public key can make mac1 right; the Noise
 * layer must still refuse any change to the message. */
static void flips_behind_a_valid_mac1(void **state)
{
	struct knock_verifier v;
	uint8_t pkt[KNOCK_LEN], mac1_key[HASH_LEN];
	enum knock_reason r;

	(void)state;
	start(&v);
	v.rl.per_second = 1000000;	/* not the thing under test here */
	v.rl.burst = 1000000;
	knock_mac1_key(mac1_key, server.pub);
	make(pkt, &alice, server.pub, psk, NOW);
	for (size_t i = 1; i < KNOCK_MAC_OFFSET; i += 3) {
		pkt[i] ^= 0x10;
		blake2s_128_keyed(pkt + KNOCK_MAC_OFFSET, mac1_key, pkt, KNOCK_MAC_OFFSET);
		r = verify(&v, pkt, KNOCK_LEN, NOW);
		assert_int_equal(r, KNOCK_BAD_NOISE);
		pkt[i] ^= 0x10;
	}
	assert_int_equal(v.last_ms[0], 0);
	knock_verifier_free(&v);
}

static void made_for_another_server(void **state)
{
	struct knock_verifier v;
	uint8_t pkt[KNOCK_LEN], mac1_key[HASH_LEN];

	(void)state;
	start(&v);
	make(pkt, &alice, other_server.pub, psk, NOW);
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_BAD_MAC1);
	/* with this server's mac1 forged on, es and the hash still differ */
	knock_mac1_key(mac1_key, server.pub);
	blake2s_128_keyed(pkt + KNOCK_MAC_OFFSET, mac1_key, pkt, KNOCK_MAC_OFFSET);
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_BAD_NOISE);
	knock_verifier_free(&v);
}

static void wrong_psk(void **state)
{
	struct knock_verifier v;
	uint8_t pkt[KNOCK_LEN];

	(void)state;
	start(&v);
	make(pkt, &alice, server.pub, other_psk, NOW);
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_BAD_NOISE);
	knock_verifier_free(&v);
}

static void unknown_and_expired_keys(void **state)
{
	struct knock_verifier v;
	struct knock_decision d;
	uint8_t pkt[KNOCK_LEN];

	(void)state;
	start(&v);
	make(pkt, &mallory, server.pub, psk, NOW);
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_UNKNOWN_KEY);
	make(pkt, &bob, server.pub, psk, NOW);
	assert_int_equal(knock_verify(&v, pkt, KNOCK_LEN, src, NOW, &d), KNOCK_EXPIRED);
	assert_ptr_equal(d.client, &clients[1]);	/* named in the log */
	assert_int_equal(v.last_ms[1], 0);
	knock_verifier_free(&v);
}

static void clock_window(void **state)
{
	struct knock_verifier v;
	uint8_t pkt[KNOCK_LEN];

	(void)state;
	start(&v);
	make(pkt, &alice, server.pub, psk, NOW + 30001);
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_SKEW);
	make(pkt, &alice, server.pub, psk, NOW - 30001);
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_SKEW);
	make(pkt, &alice, server.pub, psk, NOW + 30000);
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_OK);
	knock_verifier_free(&v);
}

static void replays(void **state)
{
	struct knock_verifier v;
	uint8_t first[KNOCK_LEN], older[KNOCK_LEN], same_ms[KNOCK_LEN];
	uint8_t before_start[KNOCK_LEN], newer[KNOCK_LEN];

	(void)state;
	start(&v);	/* started at NOW − 1000 */
	make(first, &alice, server.pub, psk, NOW);
	make(older, &alice, server.pub, psk, NOW - 1);
	make(same_ms, &alice, server.pub, psk, NOW);
	make(newer, &alice, server.pub, psk, NOW + 1);
	make(before_start, &alice, server.pub, psk, NOW - 1001);

	assert_int_equal(verify(&v, before_start, KNOCK_LEN, NOW), KNOCK_REPLAY);
	assert_int_equal(verify(&v, first, KNOCK_LEN, NOW), KNOCK_OK);
	assert_int_equal(verify(&v, first, KNOCK_LEN, NOW), KNOCK_REPLAY);
	assert_int_equal(verify(&v, first, KNOCK_LEN, NOW + 5000), KNOCK_REPLAY);
	assert_int_equal(verify(&v, older, KNOCK_LEN, NOW), KNOCK_REPLAY);
	assert_int_equal(verify(&v, same_ms, KNOCK_LEN, NOW), KNOCK_REPLAY);
	assert_int_equal(verify(&v, newer, KNOCK_LEN, NOW), KNOCK_OK);
	assert_int_equal(v.last_ms[0], NOW + 1);
	knock_verifier_free(&v);

	/* A restart forgets last_ms, but not that the capture is older. */
	assert_true(knock_verifier_init(&v, &server, psk, &cfg, NOW + 10));
	assert_int_equal(verify(&v, first, KNOCK_LEN, NOW + 20), KNOCK_REPLAY);
	assert_int_equal(verify(&v, newer, KNOCK_LEN, NOW + 20), KNOCK_REPLAY);
	knock_verifier_free(&v);
}

static void reload_keeps_replay_state(void **state)
{
	struct knock_verifier v;
	struct server_config cfg2 = cfg;
	struct client_entry swapped[2] = { clients[1], clients[0] };
	uint8_t pkt[KNOCK_LEN];

	(void)state;
	start(&v);
	make(pkt, &alice, server.pub, psk, NOW);
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_OK);
	cfg2.clients = swapped;
	assert_true(knock_verifier_reload(&v, &cfg2));
	assert_int_equal(v.last_ms[1], NOW);	/* alice moved to index 1 */
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_REPLAY);
	/* a key removed by the reload is unknown at once */
	cfg2.n_clients = 1;
	assert_true(knock_verifier_reload(&v, &cfg2));
	make(pkt, &alice, server.pub, psk, NOW + 1);
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_UNKNOWN_KEY);
	knock_verifier_free(&v);
}

static void target_override(void **state)
{
	struct knock_verifier v;
	struct knock_decision d;
	struct knock_payload p = { .timestamp_ms = NOW };
	uint8_t pkt[KNOCK_LEN];

	(void)state;
	start(&v);
	assert_true(addr_from_text(p.target, "198.51.100.9"));
	assert_true(knock_build(pkt, &alice, server.pub, psk, &p));
	assert_int_equal(knock_verify(&v, pkt, KNOCK_LEN, src, NOW, &d),
			 KNOCK_TARGET_REFUSED);
	assert_ptr_equal(d.client, &clients[0]);

	cfg.knock.allow_target = true;
	p.timestamp_ms++;
	assert_true(knock_build(pkt, &alice, server.pub, psk, &p));
	assert_int_equal(knock_verify(&v, pkt, KNOCK_LEN, src, NOW, &d), KNOCK_OK);
	assert_memory_equal(d.target, p.target, 16);
	cfg.knock.allow_target = false;
	knock_verifier_free(&v);
}

static void nonzero_flags_refused(void **state)
{
	struct knock_verifier v;
	struct knock_payload p = { .timestamp_ms = NOW, .flags = 1 };
	uint8_t pkt[KNOCK_LEN];

	(void)state;
	start(&v);
	assert_true(knock_build(pkt, &alice, server.pub, psk, &p));
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_BAD_PAYLOAD);
	assert_int_equal(v.last_ms[0], 0);
	knock_verifier_free(&v);
}

static void rate_limited_per_source(void **state)
{
	struct knock_verifier v;
	struct knock_decision d;
	uint8_t pkt[KNOCK_LEN];
	int ok = 0;

	(void)state;
	start(&v);
	for (int i = 0; i < KNOCK_RATE_BURST + 5; i++) {
		make(pkt, &alice, server.pub, psk, NOW + (uint64_t)i);
		if (verify(&v, pkt, KNOCK_LEN, NOW) == KNOCK_OK)
			ok++;
	}
	assert_int_equal(ok, KNOCK_RATE_BURST);
	assert_int_equal(v.counters[KNOCK_RATE_LIMITED], 5);
	/* another source has its own bucket */
	make(pkt, &alice, server.pub, psk, NOW + 100);
	assert_int_equal(knock_verify(&v, pkt, KNOCK_LEN, other_src, NOW, &d), KNOCK_OK);
	/* and the first refills with time */
	make(pkt, &alice, server.pub, psk, NOW + 200);
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW + 1000), KNOCK_OK);
	knock_verifier_free(&v);
}

static void payload_round_trip(void **state)
{
	struct knock_payload p = { .timestamp_ms = 0x0102030405060708ull,
				   .open_seconds = 0x1234 }, q;
	uint8_t b[KNOCK_PAYLOAD_LEN];

	(void)state;
	memset(p.target, 0xab, 16);
	knock_payload_encode(b, &p);
	assert_int_equal(b[0], 0x01);	/* big-endian */
	assert_int_equal(b[7], 0x08);
	assert_int_equal(b[24], 0x12);
	assert_true(knock_payload_decode(&q, b));
	assert_memory_equal(&p.target, &q.target, 16);
	assert_int_equal(q.timestamp_ms, p.timestamp_ms);
	assert_int_equal(q.open_seconds, p.open_seconds);
	b[30] = 1;	/* reserved */
	assert_false(knock_payload_decode(&q, b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(valid_knock),
		cmocka_unit_test(open_seconds_capped),
		cmocka_unit_test(wrong_lengths),
		cmocka_unit_test(bad_version),
		cmocka_unit_test(every_bit_flipped),
		cmocka_unit_test(flips_behind_a_valid_mac1),
		cmocka_unit_test(made_for_another_server),
		cmocka_unit_test(wrong_psk),
		cmocka_unit_test(unknown_and_expired_keys),
		cmocka_unit_test(clock_window),
		cmocka_unit_test(replays),
		cmocka_unit_test(reload_keeps_replay_state),
		cmocka_unit_test(target_override),
		cmocka_unit_test(nonzero_flags_refused),
		cmocka_unit_test(rate_limited_per_source),
		cmocka_unit_test(payload_round_trip),
	};

	if (!crypto_init())
		return 1;
	return cmocka_run_group_tests(tests, setup, NULL);
}
