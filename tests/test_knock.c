/*
 * The knock codec and posternd's pipeline, adversarially: every refusal
 * reason, in the order the checks run, and what each leaves behind.
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

#include "test_util.h"

#include "bytes.h"
#include "ip_udp.h"
#include "knock.h"
#include "knock_verify.h"
#include "nfqueue.h"
#include "x25519_hook.h"

#define NOW 1800000000000ull	/* ms, wall clock */
#define BOOT_AT_NOW 5000000ull	/* ms, boot clock when the wall reads NOW */
#define RATE_BURST 10

static struct noise_keypair server, other_server, alice, bob, mallory;
static uint8_t psk[KEY_LEN], other_psk[KEY_LEN];
static struct client_entry clients[2];
static uint16_t alice_ports[] = { 8443, 22 }, bob_ports[] = { 8443 };
static struct server_config cfg;
static struct ip_addr src, other_src;

/* Both clocks at wall time `wall`, neither stepped. */
static struct knock_clock at(uint64_t wall)
{
	return (struct knock_clock){ .wall_ms = wall,
				     .boot_ms = wall - NOW + BOOT_AT_NOW };
}

static void set_addr(struct ip_addr *a, const char *text)
{
	assert_true(addr_from_text(a->b, text));
	ip_addr_from_wire(a, a->b);
}

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
					   .max_open_seconds = 300, .rate = 2,
					   .burst = RATE_BURST, .rate_sources = 64,
					   .replay_entries = 16 };
	set_addr(&src, "192.0.2.7");
	set_addr(&other_src, "2001:db8::7");
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
	struct knock_clock t = at(NOW - 1000);

	cfg.knock.allow_target = false;
	assert_true(knock_verifier_init(v, &server, psk, &cfg, &t));
}

/* A whole datagram of len bytes from `from`, as the queue hands it over. */
static struct knock_packet packet_from(const uint8_t *bytes, size_t len,
				       const struct ip_addr *from)
{
	struct knock_packet k = { .src = *from, .len = len, .captured = len };

	memcpy(k.data, bytes, len < KNOCK_LEN ? len : KNOCK_LEN);
	return k;
}

static enum knock_reason verify_from(struct knock_verifier *v, const uint8_t *pkt,
				     size_t len, const struct ip_addr *from,
				     struct knock_clock now, struct knock_decision *d)
{
	struct knock_packet k = packet_from(pkt, len, from);

	return knock_verify(v, &k, &now, d);
}

static enum knock_reason verify(struct knock_verifier *v, const uint8_t *pkt,
				size_t len, uint64_t now)
{
	struct knock_decision d;

	return verify_from(v, pkt, len, &src, at(now), &d);
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
	assert_int_equal(verify_from(&v, pkt, KNOCK_LEN, &src, at(NOW), &d), KNOCK_OK);
	assert_ptr_equal(d.client, &clients[0]);
	assert_true(d.authenticated);
	assert_memory_equal(d.key, alice.pub, KEY_LEN);
	assert_false(d.target.v6);
	assert_memory_equal(d.target.b, src.b, 16);
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
	assert_int_equal(verify_from(&v, pkt, KNOCK_LEN, &src, at(NOW), &d), KNOCK_OK);
	assert_int_equal(d.open_seconds, 60);
	p.open_seconds = 65535;
	p.timestamp_ms++;
	assert_true(knock_build(pkt, &alice, server.pub, psk, &p));
	assert_int_equal(verify_from(&v, pkt, KNOCK_LEN, &src, at(NOW), &d), KNOCK_OK);
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
	assert_int_equal(replay_last(&v.replay, 0), 0);
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

/* Someone who knows the server's public key and the PSK can make mac1
 * right; the Noise layer must still refuse any change to the message. */
static void flips_behind_a_valid_mac1(void **state)
{
	struct knock_verifier v;
	uint8_t pkt[KNOCK_LEN], mac1_key[HASH_LEN];
	enum knock_reason r;

	(void)state;
	start(&v);
	v.rl.per_second = 1000000;	/* not the thing under test here */
	v.rl.burst = 1000000;
	knock_mac1_key(mac1_key, server.pub, psk);
	make(pkt, &alice, server.pub, psk, NOW);
	for (size_t i = 1; i < KNOCK_MAC_OFFSET; i += 3) {
		pkt[i] ^= 0x10;
		blake2s_128_keyed(pkt + KNOCK_MAC_OFFSET, mac1_key, pkt, KNOCK_MAC_OFFSET);
		r = verify(&v, pkt, KNOCK_LEN, NOW);
		assert_int_equal(r, KNOCK_BAD_NOISE);
		pkt[i] ^= 0x10;
	}
	assert_int_equal(replay_last(&v.replay, 0), 0);
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
	knock_mac1_key(mac1_key, server.pub, psk);
	blake2s_128_keyed(pkt + KNOCK_MAC_OFFSET, mac1_key, pkt, KNOCK_MAC_OFFSET);
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_BAD_NOISE);
	knock_verifier_free(&v);
}

/* mac1 is keyed with the PSK: a knock made with another PSK costs one
 * hash, not a Noise read; and behind a forged mac1, Noise refuses it too. */
static void wrong_psk(void **state)
{
	struct knock_verifier v;
	uint8_t pkt[KNOCK_LEN], mac1_key[HASH_LEN];

	(void)state;
	start(&v);
	make(pkt, &alice, server.pub, other_psk, NOW);
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_BAD_MAC1);
	knock_mac1_key(mac1_key, server.pub, psk);
	blake2s_128_keyed(pkt + KNOCK_MAC_OFFSET, mac1_key, pkt, KNOCK_MAC_OFFSET);
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_BAD_NOISE);
	knock_verifier_free(&v);
}

/* The mac1 key and tag for fixed inputs, as Python's hashlib computes
 * them: BLAKE2s-256("postern/mac1" ‖ pub ‖ psk), then keyed BLAKE2s-128. */
static void mac1_known_answer(void **state)
{
	uint8_t pub[KEY_LEN], key[KEY_LEN], msg[KNOCK_MAC_OFFSET], tag[16];
	size_t n;
	uint8_t *want_key = hex_decode("aac6a5edf33df5162de709290c874ac4"
				       "f2e963e627940e024eed8cce9be89118", &n);
	uint8_t *want_tag = hex_decode("f9db25f82774d7fd4220f978bf028cd9", &n);

	(void)state;
	for (int i = 0; i < KEY_LEN; i++) {
		pub[i] = (uint8_t)i;
		key[i] = (uint8_t)(32 + i);	/* the PSK */
	}
	for (int i = 0; i < KNOCK_MAC_OFFSET; i++)
		msg[i] = (uint8_t)i;
	knock_mac1_key(key, pub, key);
	assert_memory_equal(key, want_key, KEY_LEN);
	blake2s_128_keyed(tag, key, msg, sizeof(msg));
	assert_memory_equal(tag, want_tag, 16);
	free(want_key);
	free(want_tag);
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
	assert_int_equal(verify_from(&v, pkt, KNOCK_LEN, &src, at(NOW), &d), KNOCK_EXPIRED);
	assert_ptr_equal(d.client, &clients[1]);	/* named in the log */
	assert_int_equal(replay_last(&v.replay, 1), 0);
	/* an unlisted key is authenticated, and known by its public key */
	make(pkt, &mallory, server.pub, psk, NOW + 1);
	assert_int_equal(verify_from(&v, pkt, KNOCK_LEN, &src, at(NOW), &d),
			 KNOCK_UNKNOWN_KEY);
	assert_true(d.authenticated);
	assert_null(d.client);
	assert_memory_equal(d.key, mallory.pub, KEY_LEN);
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
	/* Another knock is not a replay because of its timestamp alone:
	 * older, or made in the same millisecond, it still opens. */
	assert_int_equal(verify(&v, older, KNOCK_LEN, NOW), KNOCK_OK);
	assert_int_equal(verify(&v, same_ms, KNOCK_LEN, NOW), KNOCK_OK);
	assert_int_equal(verify(&v, newer, KNOCK_LEN, NOW), KNOCK_OK);
	assert_int_equal(verify(&v, older, KNOCK_LEN, NOW), KNOCK_REPLAY);
	assert_int_equal(verify(&v, same_ms, KNOCK_LEN, NOW), KNOCK_REPLAY);
	assert_int_equal(replay_last(&v.replay, 0), NOW + 1);
	assert_int_equal(v.replay.n_fresh, 4);	/* for the state file */
	knock_verifier_free(&v);
}

/* A laptop whose clock stepped back 25 s, inside the 30 s window: its
 * knocks still open, and none of them can be replayed. */
static void client_clock_stepped_back(void **state)
{
	struct knock_verifier v;
	struct knock_clock t;
	uint8_t a[KNOCK_LEN], b[KNOCK_LEN], c[KNOCK_LEN];

	(void)state;
	t = at(NOW - 3600000);	/* up for an hour */
	assert_true(knock_verifier_init(&v, &server, psk, &cfg, &t));
	make(a, &alice, server.pub, psk, NOW);
	make(b, &alice, server.pub, psk, NOW + 1000 - 25000);
	make(c, &alice, server.pub, psk, NOW + 2000 - 25000);
	assert_int_equal(verify(&v, a, KNOCK_LEN, NOW), KNOCK_OK);
	assert_int_equal(verify(&v, b, KNOCK_LEN, NOW + 1000), KNOCK_OK);
	assert_int_equal(verify(&v, c, KNOCK_LEN, NOW + 2000), KNOCK_OK);
	for (uint64_t when = NOW + 2000; when <= NOW + 90000; when += 4000) {
		assert_int_not_equal(verify(&v, a, KNOCK_LEN, when), KNOCK_OK);
		assert_int_not_equal(verify(&v, b, KNOCK_LEN, when), KNOCK_OK);
		assert_int_not_equal(verify(&v, c, KNOCK_LEN, when), KNOCK_OK);
	}
	knock_verifier_free(&v);
}

/* More knocks than a key remembers: the oldest leaves for the floor, so
 * its replay is still refused. */
static void replay_entries_bound(void **state)
{
	struct knock_verifier v;
	uint8_t pkt[20][KNOCK_LEN];

	(void)state;
	start(&v);
	v.rl.per_second = 1000000;	/* not the thing under test here */
	v.rl.burst = 1000000;
	for (int i = 0; i < 20; i++) {
		make(pkt[i], &alice, server.pub, psk, NOW + (uint64_t)i * 10);
		assert_int_equal(verify(&v, pkt[i], KNOCK_LEN, NOW), KNOCK_OK);
	}
	assert_int_equal(v.replay.keys[0].n_seen, cfg.knock.replay_entries);
	assert_int_equal(v.replay.keys[0].floor_ms, NOW + 30);
	for (int i = 0; i < 20; i++)
		assert_int_equal(verify(&v, pkt[i], KNOCK_LEN, NOW), KNOCK_REPLAY);
	knock_verifier_free(&v);
}

/* The server's wall clock stepped after the start (an RTC an hour ahead,
 * then corrected by NTP; or set forward): the start floor follows it, so
 * honest knocks open at once, and no accepted knock opens twice. */
static void server_clock_steps(void **state)
{
	struct knock_verifier v;
	struct knock_decision d;
	struct knock_clock t = at(NOW + 3600000);	/* the RTC is an hour ahead */
	uint8_t early[KNOCK_LEN], honest[KNOCK_LEN], later[KNOCK_LEN];

	(void)state;
	assert_true(knock_verifier_init(&v, &server, psk, &cfg, &t));
	make(early, &alice, server.pub, psk, NOW + 3600000 + 100);
	t.boot_ms += 200;
	t.wall_ms += 200;
	assert_int_equal(knock_verify(&v, &(struct knock_packet){ 0 }, &t, &d),
			 KNOCK_BAD_LENGTH);
	assert_int_equal(verify_from(&v, early, KNOCK_LEN, &src, t, &d), KNOCK_OK);
	/* NTP steps the clock back an hour; the boot clock runs on */
	t.boot_ms += 5000;
	t.wall_ms = NOW + 5200;
	make(honest, &alice, server.pub, psk, NOW + 5200);
	assert_int_equal(verify_from(&v, honest, KNOCK_LEN, &src, t, &d), KNOCK_OK);
	assert_int_equal(verify_from(&v, honest, KNOCK_LEN, &src, t, &d), KNOCK_REPLAY);
	/* stepped forward a day: the hour-old knocks are out of the window */
	t.boot_ms += 1000;
	t.wall_ms += 86400000;
	make(later, &alice, server.pub, psk, t.wall_ms);
	assert_int_equal(verify_from(&v, later, KNOCK_LEN, &src, t, &d), KNOCK_OK);
	/* a copy of a knock accepted lately: known before the token bucket */
	assert_int_equal(verify_from(&v, early, KNOCK_LEN, &src, t, &d), KNOCK_REPLAY);
	/* and back again: what aged out is behind the floor */
	t.boot_ms += 1000;
	t.wall_ms = NOW + 7200;
	assert_int_equal(verify_from(&v, honest, KNOCK_LEN, &src, t, &d), KNOCK_REPLAY);
	assert_int_equal(knock_verifier_start_floor(&v, &t), NOW);	/* 7.2 s up */
	knock_verifier_free(&v);
}

/* The rate limiter runs on the boot clock: setting the wall clock back
 * an hour leaves no bucket empty. */
static void rate_limit_ignores_wall_clock(void **state)
{
	struct knock_verifier v;
	struct knock_decision d;
	struct knock_clock t = at(NOW);
	uint8_t pkt[KNOCK_LEN];
	int ok = 0;

	(void)state;
	start(&v);
	for (int i = 0; i < RATE_BURST; i++) {
		make(pkt, &alice, server.pub, psk, NOW + (uint64_t)i);
		assert_int_equal(verify_from(&v, pkt, KNOCK_LEN, &src, t, &d), KNOCK_OK);
	}
	t.wall_ms -= 3600000;
	t.boot_ms += 5000;	/* five seconds later: ten tokens back */
	for (int i = 0; i < RATE_BURST; i++) {
		make(pkt, &alice, server.pub, psk, t.wall_ms + (uint64_t)i);
		ok += verify_from(&v, pkt, KNOCK_LEN, &src, t, &d) == KNOCK_OK;
	}
	assert_int_equal(ok, RATE_BURST);
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
	assert_true(knock_verifier_reload(&v, &cfg2, &server, psk, &(struct knock_clock){ 0 }));
	assert_int_equal(replay_last(&v.replay, 1), NOW);	/* alice moved to 1 */
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_REPLAY);
	/* a key removed by the reload is unknown at once */
	cfg2.n_clients = 1;
	assert_true(knock_verifier_reload(&v, &cfg2, &server, psk, &(struct knock_clock){ 0 }));
	make(pkt, &alice, server.pub, psk, NOW + 1);
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_UNKNOWN_KEY);
	knock_verifier_free(&v);
}

/* A reload with a new server key and PSK: knocks made for the old ones
 * fail at mac1, knocks for the new ones open. */
static void reload_new_secrets(void **state)
{
	struct knock_verifier v;
	uint8_t pkt[KNOCK_LEN];

	(void)state;
	start(&v);
	assert_true(knock_verifier_reload(&v, &cfg, &other_server, other_psk, &(struct knock_clock){ 0 }));
	make(pkt, &alice, server.pub, psk, NOW);
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_BAD_MAC1);
	make(pkt, &alice, other_server.pub, other_psk, NOW + 1);
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW), KNOCK_OK);
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
	assert_int_equal(verify_from(&v, pkt, KNOCK_LEN, &src, at(NOW), &d),
			 KNOCK_TARGET_REFUSED);
	assert_ptr_equal(d.client, &clients[0]);

	cfg.knock.allow_target = true;
	p.timestamp_ms++;
	assert_true(knock_build(pkt, &alice, server.pub, psk, &p));
	assert_int_equal(verify_from(&v, pkt, KNOCK_LEN, &src, at(NOW), &d), KNOCK_OK);
	assert_false(d.target.v6);
	assert_memory_equal(d.target.b, p.target, 16);
	/* an IPv6 target, from an IPv4 source */
	assert_true(addr_from_text(p.target, "2001:db8::99"));
	p.timestamp_ms++;
	assert_true(knock_build(pkt, &alice, server.pub, psk, &p));
	assert_int_equal(verify_from(&v, pkt, KNOCK_LEN, &src, at(NOW), &d), KNOCK_OK);
	assert_true(d.target.v6);
	/* targets that are no host */
	static const char *const bad[] = { "127.0.0.1", "0.0.0.0", "224.0.0.1",
		"255.255.255.255", "::1", "ff02::1", "::2" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_true(addr_from_text(p.target, bad[i]));
		p.timestamp_ms++;
		assert_true(knock_build(pkt, &alice, server.pub, psk, &p));
		assert_int_equal(verify_from(&v, pkt, KNOCK_LEN, &src, at(NOW), &d),
				 KNOCK_TARGET_REFUSED);
	}
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
	assert_int_equal(replay_last(&v.replay, 0), 0);
	knock_verifier_free(&v);
}

static void rate_limited_per_source(void **state)
{
	struct knock_verifier v;
	struct knock_decision d;
	struct ip_addr same64;
	uint8_t pkt[KNOCK_LEN];
	int ok = 0;

	(void)state;
	start(&v);
	for (int i = 0; i < RATE_BURST + 5; i++) {
		make(pkt, &alice, server.pub, psk, NOW + (uint64_t)i);
		if (verify(&v, pkt, KNOCK_LEN, NOW) == KNOCK_OK)
			ok++;
	}
	assert_int_equal(ok, RATE_BURST);
	assert_int_equal(v.counters[KNOCK_RATE_LIMITED], 5);
	/* another source has its own bucket */
	make(pkt, &alice, server.pub, psk, NOW + 100);
	assert_int_equal(verify_from(&v, pkt, KNOCK_LEN, &other_src, at(NOW), &d),
			 KNOCK_OK);
	/* but not another address in the same IPv6 /64 */
	for (int i = 1; i < RATE_BURST; i++) {
		make(pkt, &alice, server.pub, psk, NOW + 100 + (uint64_t)i);
		assert_int_equal(verify_from(&v, pkt, KNOCK_LEN, &other_src, at(NOW), &d),
				 KNOCK_OK);
	}
	set_addr(&same64, "2001:db8::1:2:3:4");
	make(pkt, &alice, server.pub, psk, NOW + 150);
	assert_int_equal(verify_from(&v, pkt, KNOCK_LEN, &same64, at(NOW), &d),
			 KNOCK_RATE_LIMITED);
	/* and the first refills with time */
	make(pkt, &alice, server.pub, psk, NOW + 200);
	assert_int_equal(verify(&v, pkt, KNOCK_LEN, NOW + 1000), KNOCK_OK);
	knock_verifier_free(&v);
}

/* The rate limiter holds rate_sources sources; a new one evicts the least
 * recently seen, which starts again with a full bucket. */
static void rate_limit_table_bound(void **state)
{
	struct ratelimit rl;
	struct ip_addr a, first;
	char text[32];

	(void)state;
	assert_true(ratelimit_init(&rl, 1, 1, 16));
	assert_int_equal(ratelimit_capacity(&rl), 16);
	set_addr(&first, "10.9.9.9");
	assert_true(ratelimit_allow(&rl, &first, 1000));
	assert_false(ratelimit_allow(&rl, &first, 1000));
	for (int i = 0; i < 1000; i++) {
		uint64_t t = 1001 + (uint64_t)i / 10;

		snprintf(text, sizeof(text), "10.0.%d.%d", i / 250, i % 250 + 1);
		set_addr(&a, text);
		assert_true(ratelimit_allow(&rl, &a, t));	/* a fresh bucket */
		assert_false(ratelimit_allow(&rl, &a, t));	/* now empty */
	}
	/* the table did not grow: the first source was forgotten, and 100
	 * ms (a tenth of a token) later it has a full bucket again */
	assert_true(ratelimit_allow(&rl, &first, 1101));
	ratelimit_free(&rl);
}

/*
 * Finding 1 of the review: a datagram the queue cut short must never be
 * verified. A burst slot first holds a valid knock (rate-limited, so it
 * opened nothing); then an IPv6 datagram behind 400 bytes of destination
 * options is cut by the copy range into the same slot. The slot holds
 * none of the old bytes, and the cut datagram is refused as truncated.
 */
static size_t make_ipv6_udp(uint8_t *out, const char *from, size_t opts,
			    const uint8_t *payload, size_t len)
{
	size_t udp = 40 + opts;
	struct ip_addr a;

	memset(out, 0, udp + 8 + len);
	set_addr(&a, from);
	out[0] = 0x60;
	put_be16(out + 4, (uint16_t)(opts + 8 + len));
	out[6] = opts ? 60 : 17;		/* destination options, or UDP */
	out[7] = 64;
	memcpy(out + 8, a.b, 16);
	set_addr(&a, "2001:db8::1");
	memcpy(out + 24, a.b, 16);
	if (opts) {
		out[40] = 17;
		out[41] = (uint8_t)(opts / 8 - 1);
		out[42] = 1;			/* PadN */
		out[43] = (uint8_t)(opts - 4 > 255 ? 255 : opts - 4);
	}
	out[udp + 2] = 0xf3;			/* dport 62201 */
	out[udp + 3] = 0xf9;
	out[udp + 4] = (uint8_t)((8 + len) >> 8);
	out[udp + 5] = (uint8_t)(8 + len);
	memcpy(out + udp + 8, payload, len);
	return udp + 8 + len;
}

static void cut_datagram_is_never_verified(void **state)
{
	struct knock_verifier v;
	struct knock_decision d;
	struct nfqueue_stats st = { 0 };
	struct knock_packet slot;
	struct knock_clock t = at(NOW);
	uint8_t knock[KNOCK_LEN], junk[KNOCK_LEN], ip[1024];
	size_t n;

	(void)state;
	start(&v);
	make(knock, &alice, server.pub, psk, NOW);
	n = make_ipv6_udp(ip, "2001:db8::77", 0, knock, KNOCK_LEN);
	assert_true(nfqueue_fill_packet(&slot, ip, n, 0, &st));
	assert_int_equal(slot.len, KNOCK_LEN);
	assert_int_equal(slot.captured, KNOCK_LEN);
	assert_memory_equal(slot.data, knock, KNOCK_LEN);

	/* the attacker's datagram: 145 bytes of anything, cut at 512 */
	memset(junk, 0x5a, sizeof(junk));
	n = make_ipv6_udp(ip, "2001:db8:bad::1", 400, junk, KNOCK_LEN);
	assert_int_equal(n, 40 + 400 + 8 + KNOCK_LEN);
	assert_true(nfqueue_fill_packet(&slot, ip, 512, n, &st));
	assert_int_equal(slot.len, KNOCK_LEN);
	assert_int_equal(slot.captured, 512 - 40 - 400 - 8);
	assert_true(is_zero_ct(slot.data + slot.captured, KNOCK_LEN - slot.captured));
	assert_int_equal(knock_verify(&v, &slot, &t, &d), KNOCK_TRUNCATED);
	assert_false(d.authenticated);

	/* even with the whole knock in the slot, a short capture refuses it */
	slot = packet_from(knock, KNOCK_LEN, &src);
	slot.captured = KNOCK_LEN - 1;
	assert_int_equal(knock_verify(&v, &slot, &t, &d), KNOCK_TRUNCATED);
	assert_int_equal(v.counters[KNOCK_TRUNCATED], 2);
	/* and the knock itself, whole, still opens: nothing consumed it */
	assert_int_equal(verify(&v, knock, KNOCK_LEN, NOW), KNOCK_OK);
	knock_verifier_free(&v);
}

/* Sources no host knocks from are refused by the parser, whatever the
 * packet carries; an IPv6 packet's source is IPv6 even if it looks like
 * IPv4 (::ffff:a.b.c.d). */
static void odd_sources_refused(void **state)
{
	static const char *const bad6[] = { "::ffff:192.0.2.7", "::", "::1",
		"ff02::1", "::192.0.2.7" };
	struct nfqueue_stats st = { 0 };
	struct udp_datagram dg;
	struct knock_packet k;
	uint8_t ip[512], knock[KNOCK_LEN] = { 1 };
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad6) / sizeof(bad6[0]); i++) {
		n = make_ipv6_udp(ip, bad6[i], 0, knock, KNOCK_LEN);
		assert_int_equal(ip_udp_parse(&dg, ip, n, 0), IP_UDP_BAD_SOURCE);
		assert_false(nfqueue_fill_packet(&k, ip, n, 0, &st));
	}
	assert_int_equal(st.bad_source, 5);
	n = make_ipv6_udp(ip, "2001:db8::7", 0, knock, KNOCK_LEN);
	assert_int_equal(ip_udp_parse(&dg, ip, n, 0), IP_UDP_OK);
	assert_true(dg.src.v6);
	n = make_ipv6_udp(ip, "fe80::1", 0, knock, KNOCK_LEN);
	assert_int_equal(ip_udp_parse(&dg, ip, n, 0), IP_UDP_OK);

	/* IPv4: 127/8, 0/8, multicast, 240/4 and broadcast */
	static const uint8_t bad4[][4] = { { 127, 0, 0, 1 }, { 0, 1, 2, 3 },
		{ 224, 0, 0, 1 }, { 240, 1, 1, 1 }, { 255, 255, 255, 255 } };
	for (size_t i = 0; i < sizeof(bad4) / sizeof(bad4[0]); i++) {
		memset(ip, 0, 28 + KNOCK_LEN);
		ip[0] = 0x45;
		ip[2] = (uint8_t)((28 + KNOCK_LEN) >> 8);
		ip[3] = (uint8_t)(28 + KNOCK_LEN);
		ip[9] = 17;
		memcpy(ip + 12, bad4[i], 4);
		ip[24] = (uint8_t)((8 + KNOCK_LEN) >> 8);
		ip[25] = (uint8_t)(8 + KNOCK_LEN);
		assert_int_equal(ip_udp_parse(&dg, ip, 28 + KNOCK_LEN, 0),
				 IP_UDP_BAD_SOURCE);
		ip[12] = 192;
		assert_int_equal(ip_udp_parse(&dg, ip, 28 + KNOCK_LEN, 0), IP_UDP_OK);
		assert_false(dg.src.v6);
	}
}

/* Replays of a knock accepted lately, sent from the victim's address, take
 * no token from its bucket: its next knock still opens (review F8). */
static void replays_take_no_token(void **state)
{
	struct knock_verifier v;
	struct knock_decision d;
	uint8_t captured[KNOCK_LEN], fresh[KNOCK_LEN];

	(void)state;
	start(&v);
	make(captured, &alice, server.pub, psk, NOW);
	assert_int_equal(verify(&v, captured, KNOCK_LEN, NOW), KNOCK_OK);
	for (int i = 0; i < 3 * RATE_BURST; i++) {
		assert_int_equal(verify_from(&v, captured, KNOCK_LEN, &other_src, at(NOW), &d),
				 KNOCK_REPLAY);
		assert_ptr_equal(d.client, &clients[0]);	/* named in the log */
	}
	make(fresh, &alice, server.pub, psk, NOW + 1);
	assert_int_equal(verify_from(&v, fresh, KNOCK_LEN, &other_src, at(NOW), &d),
			 KNOCK_OK);
	assert_int_equal(v.counters[KNOCK_RATE_LIMITED], 0);
	knock_verifier_free(&v);
}

/* A key removed by a reload and added back by the next keeps its history:
 * a knock captured before still opens nothing (review F6). */
static void removed_key_keeps_history(void **state)
{
	struct knock_verifier v;
	struct server_config without = cfg;
	struct knock_clock t = at(NOW);
	uint8_t captured[KNOCK_LEN];

	(void)state;
	start(&v);
	make(captured, &alice, server.pub, psk, NOW);
	assert_int_equal(verify(&v, captured, KNOCK_LEN, NOW), KNOCK_OK);
	without.clients = &clients[1];
	without.n_clients = 1;
	assert_true(knock_verifier_reload(&v, &without, &server, psk, &t));
	t.wall_ms += 5000;
	t.boot_ms += 5000;
	assert_true(knock_verifier_reload(&v, &cfg, &server, psk, &t));
	assert_int_equal(verify_from(&v, captured, KNOCK_LEN, &other_src, t, &(struct knock_decision){ 0 }),
			 KNOCK_REPLAY);
	knock_verifier_free(&v);
}

/* A window that grows reopens nothing forgotten under the old one: the
 * floor for every key covers it (review F4). */
static void window_growth_raises_floor(void **state)
{
	struct knock_verifier v;
	struct server_config wide = cfg;
	struct knock_decision d;
	struct knock_clock t = at(NOW);
	uint8_t captured[KNOCK_LEN], honest[KNOCK_LEN];

	(void)state;
	start(&v);
	make(captured, &alice, server.pub, psk, NOW);
	assert_int_equal(verify(&v, captured, KNOCK_LEN, NOW), KNOCK_OK);
	/* 62 s later it is forgotten (two windows of 30 s) */
	t.wall_ms += 62000;
	t.boot_ms += 62000;
	wide.knock.window = 300;
	assert_true(knock_verifier_reload(&v, &wide, &server, psk, &t));
	assert_int_equal(verify_from(&v, captured, KNOCK_LEN, &other_src, t, &d), KNOCK_REPLAY);
	/* an honest knock of the moment still opens */
	make(honest, &alice, server.pub, psk, t.wall_ms);
	assert_int_equal(verify_from(&v, honest, KNOCK_LEN, &src, t, &d), KNOCK_OK);
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

/* knock_verify of pkt at now; the X25519 operations it took. */
static unsigned long verify_counted(struct knock_verifier *v, const uint8_t *pkt,
				    uint64_t now, enum knock_reason want)
{
	unsigned long before = x25519_calls();

	assert_int_equal(verify(v, pkt, KNOCK_LEN, now), want);
	return x25519_calls() - before;
}

/* A listed client's ss is computed at its first knock and kept: each later
 * knock costs one X25519 (es). An unlisted key costs the two it always
 * did, and is refused; garbage costs none. */
static void one_x25519_per_valid_knock(void **state)
{
	struct knock_verifier v;
	uint8_t pkt[KNOCK_LEN];
	unsigned long before = x25519_calls();

	(void)state;
	start(&v);
	assert_int_equal(x25519_calls() - before, 0);
	make(pkt, &alice, server.pub, psk, NOW);
	assert_int_equal(verify_counted(&v, pkt, NOW, KNOCK_OK), 2);
	for (uint64_t k = 1; k < 6; k++) {
		make(pkt, &alice, server.pub, psk, NOW + k);
		assert_int_equal(verify_counted(&v, pkt, NOW, KNOCK_OK), 1);
	}
	assert_int_equal(dh_cache_computed(v.keys->dh), 1);
	make(pkt, &bob, server.pub, psk, NOW);
	assert_int_equal(verify_counted(&v, pkt, NOW, KNOCK_EXPIRED), 2);
	assert_int_equal(verify_counted(&v, pkt, NOW, KNOCK_EXPIRED), 1);
	for (int k = 0; k < 2; k++) {
		make(pkt, &mallory, server.pub, psk, NOW + (uint64_t)k);
		assert_int_equal(verify_counted(&v, pkt, NOW, KNOCK_UNKNOWN_KEY), 2);
	}
	pkt[40] ^= 1;
	assert_int_equal(verify_counted(&v, pkt, NOW, KNOCK_BAD_MAC1), 0);
	assert_int_equal(dh_cache_computed(v.keys->dh), 2);
	knock_verifier_free(&v);
}

/* Knocks of `who` at NOW + ts, NOW + ts + 1: the first computes the ss,
 * the second finds it. */
static void knock_twice(struct knock_verifier *v, const struct noise_keypair *who,
			const uint8_t *server_pub, uint64_t ts)
{
	uint8_t pkt[KNOCK_LEN];

	make(pkt, who, server_pub, psk, NOW + ts);
	assert_int_equal(verify_counted(v, pkt, NOW, KNOCK_OK), 2);
	make(pkt, who, server_pub, psk, NOW + ts + 1);
	assert_int_equal(verify_counted(v, pkt, NOW, KNOCK_OK), 1);
}

/* A reload that gives alice's entry another key: her old key is unknown at
 * once, whatever the old cache held; the new key opens, and its ss is
 * kept from its first knock on. */
static void reload_new_client_key(void **state)
{
	struct knock_verifier v;
	struct server_config cfg2 = cfg;
	struct client_entry changed[2] = { clients[0], clients[1] };
	uint8_t pkt[KNOCK_LEN];
	unsigned long before;

	(void)state;
	start(&v);
	knock_twice(&v, &alice, server.pub, 0);
	memcpy(changed[0].public_key, mallory.pub, KEY_LEN);
	cfg2.clients = changed;
	before = x25519_calls();
	assert_true(knock_verifier_reload(&v, &cfg2, &server, psk, &(struct knock_clock){ 0 }));
	assert_int_equal(x25519_calls() - before, 0);
	assert_int_equal(dh_cache_computed(v.keys->dh), 0);
	make(pkt, &alice, server.pub, psk, NOW + 2);
	assert_int_equal(verify_counted(&v, pkt, NOW, KNOCK_UNKNOWN_KEY), 2);
	knock_twice(&v, &mallory, server.pub, 3);
	/* and back: alice opens again, mallory is unknown again */
	assert_true(knock_verifier_reload(&v, &cfg, &server, psk, &(struct knock_clock){ 0 }));
	make(pkt, &mallory, server.pub, psk, NOW + 5);
	assert_int_equal(verify_counted(&v, pkt, NOW, KNOCK_UNKNOWN_KEY), 2);
	knock_twice(&v, &alice, server.pub, 6);
	knock_verifier_free(&v);
}

/* A reload with a new server key, the PSK kept: alice's ss for the old key
 * is gone with the old cache. Her knocks for the new key open, the second
 * at one X25519: the new cache computed it with the new private key (a kept
 * old one would be refused as made for another key, and cost two each). */
static void reload_new_server_key(void **state)
{
	struct knock_verifier v;
	uint8_t pkt[KNOCK_LEN];

	(void)state;
	start(&v);
	knock_twice(&v, &alice, server.pub, 0);
	assert_true(knock_verifier_reload(&v, &cfg, &other_server, psk, &(struct knock_clock){ 0 }));
	make(pkt, &alice, server.pub, psk, NOW + 2);
	assert_int_equal(verify_counted(&v, pkt, NOW, KNOCK_BAD_MAC1), 0);
	knock_twice(&v, &alice, other_server.pub, 3);
	make(pkt, &mallory, other_server.pub, psk, NOW + 5);
	assert_int_equal(verify_counted(&v, pkt, NOW, KNOCK_UNKNOWN_KEY), 2);
	knock_verifier_free(&v);
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
		cmocka_unit_test(mac1_known_answer),
		cmocka_unit_test(unknown_and_expired_keys),
		cmocka_unit_test(clock_window),
		cmocka_unit_test(replays),
		cmocka_unit_test(client_clock_stepped_back),
		cmocka_unit_test(replay_entries_bound),
		cmocka_unit_test(server_clock_steps),
		cmocka_unit_test(rate_limit_ignores_wall_clock),
		cmocka_unit_test(reload_keeps_replay_state),
		cmocka_unit_test(reload_new_secrets),
		cmocka_unit_test(target_override),
		cmocka_unit_test(nonzero_flags_refused),
		cmocka_unit_test(rate_limited_per_source),
		cmocka_unit_test(rate_limit_table_bound),
		cmocka_unit_test(cut_datagram_is_never_verified),
		cmocka_unit_test(odd_sources_refused),
		cmocka_unit_test(replays_take_no_token),
		cmocka_unit_test(removed_key_keeps_history),
		cmocka_unit_test(window_growth_raises_floor),
		cmocka_unit_test(payload_round_trip),
		cmocka_unit_test(one_x25519_per_valid_knock),
		cmocka_unit_test(reload_new_client_key),
		cmocka_unit_test(reload_new_server_key),
	};

	if (!crypto_init())
		return 1;
	return cmocka_run_group_tests(tests, setup, NULL);
}
