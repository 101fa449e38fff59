/*
 * Writes the seed corpus of every fuzz target: make_corpus DIR makes
 * DIR/<target>/<seed>. The seeds are built from the fixed keys of
 * fuzz_util.c with fixed ephemerals, so the same bytes come out every time
 * (ctest's fuzz_corpus_current compares them with tests/fuzz/corpus), and
 * real knocks and handshake messages in them authenticate for the targets.
 * Each seed's name says what it holds; the input layouts are in the
 * comments at the top of each target.
 *
 *   build/fuzz/tests/fuzz/make_corpus tests/fuzz/corpus
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"
#include "ip_udp.h"
#include "keys.h"
#include "knock_verify.h"
#include "nfqueue.h"
#include "yamux.h"

static const char *root;

/* A seed being written. */
struct seed {
	uint8_t b[300000];
	size_t n;
};

static struct seed sd;

static void put(const void *p, size_t n)
{
	check(sd.n + n <= sizeof(sd.b));
	if (n > 0)
		memcpy(sd.b + sd.n, p, n);
	sd.n += n;
}

static void put8(uint8_t v)
{
	put(&v, 1);
}

static void put16(uint16_t v)
{
	put8((uint8_t)(v >> 8));
	put8((uint8_t)v);
}

static void put32(uint32_t v)
{
	put16((uint16_t)(v >> 16));
	put16((uint16_t)v);
}

static void put_text(const char *s)
{
	put(s, strlen(s));
}

static void begin(void)
{
	sd.n = 0;
}

static void save(const char *target, const char *name)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, target);
	check(mkdir(path, 0755) == 0 || errno == EEXIST);
	snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
	f = fopen(path, "wb");
	check(f && fwrite(sd.b, 1, sd.n, f) == sd.n && fclose(f) == 0);
}

/* Knocks */

/* A knock of ALICE-like sender c for the fixed server, made now. */
static void knock(uint8_t out[KNOCK_LEN], enum fuzz_client c, uint8_t e_fill)
{
	struct knock_payload p = { .timestamp_ms = FUZZ_NOW_MS };
	uint8_t payload[KNOCK_PAYLOAD_LEN], e[KEY_LEN];

	memset(e, e_fill, sizeof(e));
	knock_payload_encode(payload, &p);
	check(fuzz_knock_build(out, &fk.client[c], fk.server.pub, fk.psk,
			       payload, e));
}

/* fuzz_knock_packet's input: flags u8 ‖ orig_len u16 (ip_len when only
 * held bytes of it arrive) ‖ the packet. Returns where the packet starts. */
static size_t packet_begin(uint8_t flags, size_t ip_len, size_t held)
{
	put8(flags);
	put16(held < ip_len ? (uint16_t)ip_len : 0);
	return sd.n;
}

/* The UDP header and payload that end the packet, cut to held bytes. */
static void udp_end(const uint8_t *payload, size_t len, size_t start,
		    size_t held)
{
	put16(40000);
	put16(62201);
	put16((uint16_t)(8 + len));
	put16(0);
	put(payload, len);
	if (sd.n - start > held)
		sd.n = start + held;
}

/* An IPv4 packet with options bytes of options, frag its flags and
 * fragment offset. */
static void ipv4(uint8_t flags, const char *src, const uint8_t *payload,
		 size_t len, size_t options, uint16_t frag, size_t held)
{
	uint8_t addr[16];
	size_t ip_len = 20 + options + 8 + len;
	size_t start = packet_begin(flags, ip_len, held);

	check(addr_from_text(addr, src));
	put8((uint8_t)(0x40 | (20 + options) / 4));
	put8(0);
	put16((uint16_t)ip_len);
	put32(0x12340000u | frag);	/* id ‖ flags, fragment offset */
	put8(64);
	put8(17);			/* UDP */
	put16(0);
	put(addr + 12, 4);
	put32(0xc6336401);		/* 198.51.100.1 */
	for (size_t i = 0; i < options; i++)
		put8(1);		/* NOP */
	udp_end(payload, len, start, held);
}

/* An IPv6 packet with n_ext extension headers of ext_len bytes each. */
static void ipv6(uint8_t flags, const char *src, const uint8_t *payload,
		 size_t len, size_t n_ext, size_t ext_len, size_t held)
{
	static const uint8_t kinds[] = { 0, 60, 43 };	/* hop, dst, routing */
	uint8_t addr[16], dst[16];
	size_t ip_len = 40 + n_ext * ext_len + 8 + len;
	size_t start = packet_begin(flags, ip_len, held);

	check(addr_from_text(addr, src) && addr_from_text(dst, "2001:db8::1"));
	put32(0x60000000);
	put16((uint16_t)(ip_len - 40));
	put8(n_ext ? kinds[0] : 17);
	put8(64);
	put(addr, 16);
	put(dst, 16);
	for (size_t i = 0; i < n_ext; i++) {
		put8(i + 1 < n_ext ? kinds[(i + 1) % 3] : 17);
		put8((uint8_t)(ext_len / 8 - 1));
		for (size_t j = 2; j < ext_len; j++)
			put8(j == 2 ? 1 : 0);	/* PadN, then zeros */
	}
	udp_end(payload, len, start, held);
}

/* A seed the pipeline must accept: make sure of it. */
static void accepted(void)
{
	struct knock_clock start = { FUZZ_NOW_MS - 1000, 4999000 };
	struct knock_clock now = { FUZZ_NOW_MS, 5000000 };
	struct nfqueue_stats st = { 0 };
	struct knock_verifier v;
	struct knock_decision dec;
	struct knock_packet k;
	size_t orig = (size_t)(sd.b[1] << 8 | sd.b[2]);

	check(nfqueue_fill_packet(&k, sd.b + 3, sd.n - 3, orig, &st));
	check(knock_verifier_init(&v, &fk.server, fk.psk, &fuzz_knock_cfg, &start));
	check(knock_verify(&v, &k, &now, &dec) == KNOCK_OK);
	knock_verifier_free(&v);
}

static void knock_packet_seeds(void)
{
	static const char *t = "fuzz_knock_packet";
	uint8_t k[KNOCK_LEN], bad[KNOCK_LEN];

	knock(k, ALICE, 0x61);
	begin(), ipv4(0, "198.51.100.7", k, KNOCK_LEN, 0, 0, SIZE_MAX), accepted();
	save(t, "ipv4_alice");
	begin(), ipv4(0, "198.51.100.7", k, KNOCK_LEN, 12, 0, SIZE_MAX), accepted();
	save(t, "ipv4_options_alice");
	begin(), ipv4(0, "198.51.100.7", k, KNOCK_LEN, 0, 0x2000, SIZE_MAX);
	save(t, "ipv4_more_fragments");
	begin(), ipv4(0, "198.51.100.7", k, KNOCK_LEN, 0, 0, 100);
	save(t, "ipv4_cut");
	begin(), ipv6(0, "2001:db8:1::7", k, KNOCK_LEN, 0, 0, SIZE_MAX), accepted();
	save(t, "ipv6_alice");
	begin(), ipv6(0, "2001:db8:1::7", k, KNOCK_LEN, 3, 8, SIZE_MAX), accepted();
	save(t, "ipv6_ext_alice");
	/* 40 + 88 + 8 + 145 bytes: posternd's 256-byte copy range cuts it */
	begin(), ipv6(0, "2001:db8:1::7", k, KNOCK_LEN, 1, 88, 256);
	save(t, "ipv6_dstopts_cut_at_256");
	begin(), ipv6(0, "::ffff:198.51.100.7", k, KNOCK_LEN, 0, 0, SIZE_MAX);
	save(t, "ipv6_v4mapped_source");
	knock(k, BOB, 0x62);
	begin(), ipv4(0, "203.0.113.9", k, KNOCK_LEN, 0, 0, SIZE_MAX), accepted();
	save(t, "ipv4_bob");
	knock(k, MALLORY, 0x63);
	begin(), ipv6(0, "2001:db8:2::7", k, KNOCK_LEN, 0, 0, SIZE_MAX);
	save(t, "ipv6_mallory");
	knock(k, CAROL, 0x64);
	begin(), ipv4(0, "198.51.100.7", k, KNOCK_LEN, 0, 0, SIZE_MAX);
	save(t, "ipv4_carol_expired");
	/* Flag 1 makes the target redo mac1: the Noise read sees the flip. */
	knock(bad, ALICE, 0x65);
	bad[40] ^= 1;
	begin(), ipv4(1, "198.51.100.7", bad, KNOCK_LEN, 0, 0, SIZE_MAX);
	save(t, "ipv4_alice_flipped_fix_mac1");
	begin(), ipv4(0, "198.51.100.7", (const uint8_t *)"knock?", 6, 0, 0, SIZE_MAX);
	save(t, "ipv4_short_payload");
}

/* Records of fuzz_knock_policy. */
static void rec(uint8_t who, uint8_t src, int16_t step, int16_t ts,
		uint8_t target, uint16_t open, uint16_t flags, uint8_t reserved)
{
	put8(who);
	put8(src);
	put16((uint16_t)step);
	put16((uint16_t)ts);
	put8(target);
	put16(open);
	put16(flags);
	put8(reserved);
}

/* allow_target, the window's index; open_seconds 21, max 221 */
#define SETTINGS(allow, window) ((uint8_t)((allow) | (window) << 1 | 2 << 3 | 2 << 6))

static void knock_policy_seeds(void)
{
	static const char *t = "fuzz_knock_policy";

	begin(), put8(SETTINGS(0, 1)), put8(0xff);
	rec(S_ALICE, 0, 0, 0, 0, 0, 0, 0);
	save(t, "alice_fresh");
	begin(), put8(SETTINGS(0, 1)), put8(0xff);
	rec(S_ALICE, 0, 0, 0, 0, 0, 0, 0);
	rec(S_RESEND, 1, 100, 0, 0, 0, 0, 0);		/* same bytes, 1 s on */
	rec(S_ALICE, 0, 0, -1, 0, 0, 0, 0);		/* older timestamp */
	rec(S_ALICE, 0, 0, 1, 0, 0, 0, 0);		/* newer: fine */
	save(t, "alice_replays");
	begin(), put8(SETTINGS(0, 1)), put8(0xff);
	rec(S_ALICE, 0, 0, 3000, 0, 0, 0, 0);		/* 30 s ahead: edge */
	rec(S_ALICE, 0, 0, 3001, 0, 0, 0, 0);
	rec(S_BOB, 1, 0, -3001, 0, 0, 0, 0);
	save(t, "skew_edges");
	begin(), put8(SETTINGS(0, 1)), put8(0xff);
	rec(S_BOB, 1, 0, 0, 0, 0, 0, 0);
	rec(S_BOB, 1, 30000, 0, 0, 0, 0, 0);		/* 300 s later */
	rec(S_BOB, 1, 30000, 0, 0, 0, 0, 0);		/* 600 s: expired */
	rec(S_CAROL, 0, 0, 0, 0, 0, 0, 0);
	save(t, "expiry");
	begin(), put8(SETTINGS(1, 1)), put8(0xff);
	rec(S_ALICE, 2, 0, 0, 1, 0, 0, 0);
	rec(S_ALICE, 2, 0, 1, 2, 600, 0, 0);
	rec(S_ALICE, 2, 0, 2, 3, 0, 0, 0);
	save(t, "targets_allowed");
	begin(), put8(SETTINGS(0, 1)), put8(0xff);
	rec(S_ALICE, 2, 0, 0, 1, 0, 0, 0);
	rec(S_ALICE, 2, 0, 1, 0, 65535, 0, 0);
	save(t, "target_refused_open_capped");
	begin(), put8(SETTINGS(0, 1)), put8(0xff);
	for (int i = 0; i < 12; i++)
		rec(S_ALICE, 3, 0, (int16_t)i, 0, 0, 0, 0);
	rec(S_ALICE, 2, 0, 20, 0, 0, 0, 0);		/* same /64 */
	rec(S_ALICE, 3, 50, 30, 0, 0, 0, 0);		/* a token back */
	save(t, "rate_limit_v6_prefix");
	begin(), put8(SETTINGS(0, 1)), put8(0xff);
	rec(S_MALLORY, 0, 0, 0, 0, 0, 0, 0);
	rec(S_WRONG_PSK, 0, 0, 0, 0, 0, 0, 0);
	rec(S_OTHER_SERVER, 0, 0, 0, 0, 0, 0, 0);
	rec(S_ALICE, 0, 0, 0, 0, 0, 1, 0);		/* a flag */
	rec(S_ALICE, 0, 0, 0, 0, 0, 0, 7);		/* a reserved byte */
	save(t, "refused_senders_and_payloads");
	begin(), put8(SETTINGS(0, 1)), put8(0xff);
	rec(S_ALICE, 0, 0, 0, 0, 0, 0, 0);
	rec(S_RELOAD | 1 << 3, 0, 0, 0, 0, 0, 0, 0);	/* the list reversed */
	rec(S_RESEND, 1, 10, 0, 0, 0, 0, 0);		/* still a replay */
	rec(S_BOB, 1, 10, 0, 0, 0, 0, 0);
	rec(S_RELOAD | 2 << 3, 0, 0, 0, 0, 0, 0, 0);	/* without BOB */
	rec(S_BOB, 1, 10, 1, 0, 0, 0, 0);
	rec(S_ALICE, 0, 10, 1, 0, 0, 0, 0);
	save(t, "reloads");
	begin(), put8(SETTINGS(0, 2)), put8(100);	/* start 100 s ahead */
	rec(S_ALICE, 0, 0, 0, 0, 0, 0, 0);
	rec(S_ALICE, 0, 10000, 0, 0, 0, 0, 0);
	save(t, "start_floor");
}

/* Tunnel handshake */

static void handshake_seeds(const struct fuzz_tunnel *ft)
{
	static const char *r = "fuzz_handshake_responder", *i = "fuzz_handshake_initiator";
	static const uint8_t v1[] = { 1, 0, 0, 0 }, v2[] = { 2, 0, 0, 0, 'n', 'e', 'w' };
	struct tunnel_handshake c, s;
	struct tunnel_transport t;
	uint8_t msg[FUZZ_FRAME_MAX];
	uint16_t ports[TUNNEL_MAX_PORTS];
	size_t len;

	begin(), put8(0), put8(255), put(ft->msg1, ft->msg1_len);
	save(r, "alice_msg1");
	begin(), put8(0), put8(0), put(ft->msg1, ft->msg1_len);
	save(r, "alice_msg1_bytewise");
	begin(), put8(0), put8(30), put(ft->msg1, ft->msg1_len);
	put(ft->msg2, 40);	/* bytes after message 1 */
	save(r, "alice_msg1_then_more");
	check(tunnel_client_init(&c, &fk.client[MALLORY], fk.server.pub, fk.psk) ==
	      TUNNEL_OK);
	noise_handshake_set_ephemeral(&c.noise, fk.e_client);
	len = sizeof(msg);
	check(tunnel_client_start(&c, msg, &len) == TUNNEL_OK);
	tunnel_handshake_free(&c);
	begin(), put8(0), put8(255), put(msg, len);
	save(r, "mallory_msg1");
	for (int w = 0; w < 4; w++) {
		char name[32];

		snprintf(name, sizeof(name), "hello_v1_writer%d", w);
		begin(), put8(1), put8((uint8_t)w), put(v1, sizeof(v1));
		save(r, name);
	}
	begin(), put8(1), put8(0), put(v2, sizeof(v2));
	save(r, "hello_v2_longer");

	begin(), put8(0), put8(255), put(ft->msg2, ft->msg2_len);
	save(i, "reply_two_ports");
	begin(), put8(0), put8(7), put(ft->msg2, ft->msg2_len);
	save(i, "reply_two_ports_in_pieces");
	for (size_t n = 0; n < TUNNEL_MAX_PORTS; n++)
		ports[n] = (uint16_t)(1000 + n);
	for (size_t n = 0; n <= TUNNEL_MAX_PORTS; n += TUNNEL_MAX_PORTS) {
		char name[32];

		s = ft->server;
		noise_handshake_set_ephemeral(&s.noise, fk.e_server);
		len = sizeof(msg);
		check(tunnel_server_accept(&s, ports, n, FUZZ_SERVER_TIME_MS, msg,
					   &len, &t) == TUNNEL_OK);
		tunnel_transport_free(&t);
		snprintf(name, sizeof(name), "reply_%zu_ports", n);
		begin(), put8(0), put8(255), put(msg, len);
		save(i, name);
	}
	/* Server hellos for mode 1: version, flags, reserved, time, n, ports. */
	begin(), put8(1), put8(0);
	put8(1), put8(0), put16(0), put32(0x00000197), put32(0x6e0a0f00);
	put16(2), put16(22), put16(8443);
	save(i, "hello_two_ports");
	begin(), put8(1), put8(0);
	put8(1), put8(0x80), put16(7), put32(0), put32(0), put16(1), put16(22);
	put(v2, sizeof(v2));	/* bytes after the ports */
	save(i, "hello_flags_and_extra");
	begin(), put8(1), put8(0);
	put8(1), put8(0), put16(0), put32(0), put32(0), put16(3), put16(22);
	save(i, "hello_ports_short");
	begin(), put8(3), put8(0);
	put8(1), put8(0), put16(0), put32(0), put32(0), put16(0);
	save(i, "hello_wrong_psk");
}

/* Transport + yamux: ops of fuzz_transport_yamux. */

static void frame(uint8_t *out, uint8_t type, uint16_t flags, uint32_t id,
		  uint32_t length)
{
	struct yamux_header h = { 0, type, flags, id, length };

	yamux_header_encode(out, &h);
}

/* One sealed message holding a frame and its payload. */
static void seal_frame(uint8_t type, uint16_t flags, uint32_t id,
		       uint32_t length, const void *payload, size_t n)
{
	uint8_t h[YAMUX_HEADER_LEN];

	frame(h, type, flags, id, length);
	put8(OP_SEAL);
	put16((uint16_t)(sizeof(h) + n));
	put(h, sizeof(h));
	put(payload, n);
}

static void transport_seeds(void)
{
	static const char *t = "fuzz_transport_yamux";
	static const uint8_t req22[] = { 1, 0, 22 }, req80[] = { 1, 0, 80 };

	/* The server: a stream opened, its request, data, and the answer. */
	begin(), put8(0);
	seal_frame(YAMUX_WINDOW_UPDATE, YAMUX_SYN, 1, 0, NULL, 0);
	seal_frame(YAMUX_DATA, 0, 1, 3, req22, 3);
	seal_frame(YAMUX_DATA, 0, 1, 5, "hello", 5);
	put8(OP_DRAIN | 31 << 3);
	seal_frame(YAMUX_DATA, YAMUX_FIN, 1, 0, NULL, 0);
	put8(OP_DRAIN);
	save(t, "server_stream_port_22");
	begin(), put8(0);
	seal_frame(YAMUX_DATA, YAMUX_SYN, 3, 3, req80, 3);
	put8(OP_DRAIN | 31 << 3);
	save(t, "server_stream_port_80_refused");
	/* A whole window in one frame, spelled by OP_REPEAT, consumed
	 * lazily; then a frame larger than the credit given back. */
	begin(), put8(TM_LAZY);
	seal_frame(YAMUX_WINDOW_UPDATE, YAMUX_SYN, 1, 0, NULL, 0);
	seal_frame(YAMUX_DATA, 0, 1, 3 + 4 * TUNNEL_MAX_PLAIN, req22, 3);
	put8(OP_REPEAT), put8(3), put16(TUNNEL_MAX_PLAIN), put8(0);
	put8(OP_CONSUME | 31 << 3), put8(0);
	put8(OP_DRAIN | 31 << 3);
	seal_frame(YAMUX_DATA, 0, 1, 200000, NULL, 0);
	put8(OP_REPEAT), put8(3), put16(50000), put8(0);
	save(t, "server_window_overrun");
	/* The round trip measured (a ping answered at once), then windows
	 * consumed as fast as they come: they grow. */
	begin(), put8(0);
	put8(OP_TIME), put8(OP_DRAIN | 31 << 3);
	seal_frame(YAMUX_PING, YAMUX_ACK, 0, 1, NULL, 0);
	seal_frame(YAMUX_DATA, YAMUX_SYN, 1, 3, req22, 3);
	for (int w = 0; w < 8; w++) {
		seal_frame(YAMUX_DATA, 0, 1, 2 * TUNNEL_MAX_PLAIN, NULL, 0);
		put8(OP_REPEAT), put8(1), put16(TUNNEL_MAX_PLAIN), put8(0);
		put8(OP_DRAIN | 31 << 3);
	}
	save(t, "server_window_grows");
	/* The server writes more than the window: blocked, then credited. */
	begin(), put8(0);
	seal_frame(YAMUX_DATA, YAMUX_SYN, 1, 3, req22, 3);
	for (int w = 0; w < 3; w++)
		put8(OP_APP | 30 << 3), put8(0), put8(OP_DRAIN | 31 << 3);
	seal_frame(YAMUX_WINDOW_UPDATE, 0, 1, 1 << 20, NULL, 0);
	put8(OP_DRAIN | 31 << 3);
	save(t, "server_writer_blocked");
	/* Keepalive: time passes, the ping goes out, the peer answers it. */
	begin(), put8(0);
	put8(OP_TIME), put8(OP_DRAIN | 31 << 3);
	seal_frame(YAMUX_PING, YAMUX_ACK, 0, 1, NULL, 0);
	seal_frame(YAMUX_PING, YAMUX_SYN, 0, 77, NULL, 0);
	put8(OP_TIME | 25 << 3), put8(OP_DRAIN | 31 << 3);
	seal_frame(YAMUX_GO_AWAY, 0, 0, YAMUX_GOAWAY_NORMAL, NULL, 0);
	put8(OP_DRAIN);
	save(t, "server_ping_goaway");
	/* A frame split across messages and pieces; then raw bytes. */
	begin(), put8(0);
	put8(OP_SEAL | 1 << 3), put16(6);
	{
		uint8_t h[YAMUX_HEADER_LEN];

		frame(h, YAMUX_WINDOW_UPDATE, YAMUX_SYN, 5, 1000);
		put(h, 6);
		put8(OP_SEAL | 2 << 3), put16(6), put(h + 6, 6);
	}
	seal_frame(YAMUX_WINDOW_UPDATE, YAMUX_RST, 5, 0, NULL, 0);
	put8(OP_RAW), put8(4), put32(0x0010dead);
	seal_frame(YAMUX_DATA, 0, 1, 3, req22, 3);
	save(t, "server_split_frame_then_raw");
	/* The client: it opens a stream, asks for 22, reads the status. */
	begin(), put8(TM_CLIENT);
	put8(OP_APP | 3 << 3), put8(0), put8(OP_DRAIN | 31 << 3);
	seal_frame(YAMUX_WINDOW_UPDATE, YAMUX_ACK, 1, 0, NULL, 0);
	seal_frame(YAMUX_DATA, 0, 1, 3, "\0ok", 3);
	put8(OP_APP | 2 << 3), put8(0);
	put8(OP_APP | 0 << 3), put8(0), put8(OP_DRAIN | 31 << 3);
	seal_frame(YAMUX_DATA, YAMUX_FIN, 1, 0, NULL, 0);
	save(t, "client_stream_ok");
	begin(), put8(TM_CLIENT);
	put8(OP_APP | 3 << 3), put8(0);
	seal_frame(YAMUX_DATA, YAMUX_ACK, 1, 1, "\x01", 1);
	put8(OP_GOAWAY), put8(OP_DRAIN | 31 << 3);
	save(t, "client_stream_not_allowed");
	/* A flood of pings, the output never drained: the queue must stay
	 * within its bound, and the session end when it is full. */
	begin(), put8(0);
	{
		uint8_t h[YAMUX_HEADER_LEN];

		frame(h, YAMUX_PING, YAMUX_SYN, 0, 1);
		put8(OP_REPEAT), put8(7), put16(TUNNEL_MAX_PLAIN - TUNNEL_MAX_PLAIN % YAMUX_HEADER_LEN);
		put8(sizeof(h)), put(h, sizeof(h));
	}
	save(t, "server_ping_flood");
	/* The TCP stream as is. */
	begin(), put8(TM_RAW);
	put16(16), put32(0), put32(0), put32(0), put32(0);
	save(t, "raw_one_message");
}

/* yamux alone: fuzz_yamux's raw and script modes. */
static void yamux_seeds(void)
{
	static const char *t = "fuzz_yamux";
	uint8_t h[YAMUX_HEADER_LEN];

	begin(), put8(64 << 1), put8(0x04);	/* cut half-way, echo */
	frame(h, YAMUX_WINDOW_UPDATE, YAMUX_SYN, 1, 0), put(h, sizeof(h));
	frame(h, YAMUX_DATA, 0, 1, 5), put(h, sizeof(h)), put("hello", 5);
	frame(h, YAMUX_PING, YAMUX_SYN, 0, 9), put(h, sizeof(h));
	frame(h, YAMUX_DATA, YAMUX_FIN, 1, 0), put(h, sizeof(h));
	frame(h, YAMUX_GO_AWAY, 0, 0, 0), put(h, sizeof(h));
	save(t, "raw_stream_ping_goaway");
	begin(), put8(1), put8(0);
	/* open, write, deliver all, consume, close both, deliver all */
	put8(0), put8(0), put8(1), put8(200), put8(5), put8(0xff);
	put8(0x82), put8(0), put8(3), put8(0), put8(0x83), put8(0);
	put8(5), put8(0xff);
	save(t, "script_open_write_close");
}

/* Stream request and status. */
static void stream_request_seeds(void)
{
	static const char *t = "fuzz_stream_request";
	int errs[] = { 0, ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, EPERM };

	begin(), put8(1), put16(22), put8(1), put16(8443), put8(2), put16(22);
	save(t, "requests");
	begin();
	for (int s = 0; s < 5; s++)
		put8((uint8_t[]){ 0, 1, 2, 3, 0xff }[s]);
	put8(4);
	save(t, "statuses");
	begin();
	put(errs, sizeof(errs));
	save(t, "errnos");
}

/* SOCKS5 greetings and requests, after the byte that picks the pieces. */
static void socks_seeds(void)
{
	static const char *t = "fuzz_socks_request";
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0x51, [15] = 1 };

	begin(), put8(0), put8(5), put8(1), put8(0);
	put8(5), put8(1), put8(0), put8(3), put8(4), put_text("web1"), put16(8080);
	save(t, "connect_domain_whole");
	begin(), put8(1), put8(5), put8(2), put8(2), put8(0);
	put8(5), put8(1), put8(0), put8(1), put32(0xc6336401), put16(22);
	save(t, "connect_ipv4_bytewise");
	begin(), put8(7), put8(5), put8(1), put8(0);
	put8(5), put8(1), put8(0), put8(4), put(v6, sizeof(v6)), put16(443);
	save(t, "connect_ipv6_in_sevens");
	begin(), put8(0), put8(5), put8(1), put8(0);
	put8(5), put8(2), put8(0), put8(1), put32(0x7f000001), put16(80);
	save(t, "bind_refused");
	begin(), put8(0), put8(5), put8(1), put8(2);
	save(t, "userpass_only");
	begin(), put8(0), put8(4), put8(1), put16(80), put32(0x7f000001), put8(0);
	save(t, "socks4");
}

/* Config files: one seed of fuzz_config from a format. */
__attribute__((format(printf, 2, 3)))
static void config(const char *name, const char *fmt, ...)
{
	char text[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	check(n >= 0 && (size_t)n < sizeof(text));
	begin(), put(text, (size_t)n);
	save("fuzz_config", name);
}

static void config_seeds(void)
{
	char alice[KEY_B64_LEN + 1], bob[KEY_B64_LEN + 1], server[KEY_B64_LEN + 1];
	char port[8];

	key_to_base64(alice, fk.client[ALICE].pub);
	key_to_base64(bob, fk.client[BOB].pub);
	key_to_base64(server, fk.server.pub);
	config("server",
		"# server file, as in docs/CONFIG.md\n"
		"private_key_file = \"server.key\"\n"
		"psk_file = \"psk\"\n"
		"knock {\n  queue = 0\n  window = 30\n  open_seconds = 30\n"
		"  max_open_seconds = 300\n  nft_family = \"inet\"  nft_table = \"postern\"\n"
		"  nft_set4 = \"allow4\"  nft_set6 = \"allow6\"\n  allow_target = false\n}\n"
		"tunnel {\n  listen = {\"0.0.0.0:8443\", \"[::]:8443\"}\n  egress = {22, 80}\n}\n"
		"client \"alice\" {\n  public_key = \"%s\"\n  open = {8443}\n}\n"
		"client \"bob\" {\n  public_key = \"%s\"\n  open = {8443, 22}\n"
		"  expires = \"2027-06-30\"\n}\n", alice, bob);
	config("cli",
		"private_key_file = '/etc/postern/admin.key' /* quoted */\n"
		"psk_env = ${POSTERN_PSK_VAR:-POSTERN_PSK}\n"
		"server \"web1\" {\n  address = \"203.0.113.10\"  tunnel_port = 8443\n"
		"  knock_port = 62201 // comment\n  public_key = \"%s\"\n}\n"
		"server \"web2\" { address = \"web2.example\" public_key = \"%s\" }\n"
		"forward { listen = \"127.0.0.1:2201\"  server = \"web1\"  port = 22 }\n"
		"forward { listen = \"[::1]:2202\"  server = \"web2\"  port = 0022 }\n",
		server, alice);
	config("server_edges",
		"psk_passphrase_salt = \"fleet-salt\"\n"
		"tunnel { listen += {\"127.0.0.1:9000\"} egress = {} }\n"
		"client \"carol@laptop\" { public_key = \"%s\" open = {} }\n"
		"knock { window = 3600 open_seconds = 86400 max_open_seconds = 86400 }\n",
		bob);
	/* Refusals of the checks after libconfuse, one a file. */
	config("server_same_key_twice",
		"client \"a\" { public_key = \"%s\" expires = \"2028-02-29\" }\n"
		"client \"b\" { public_key = \"%s\" }\n", alice, alice);
	config("server_open_over_max", "knock { max_open_seconds = 60\n open_seconds = 90 }\n");
	config("server_same_sets", "knock { nft_set4 = \"both\" nft_set6 = \"both\" }\n");
	config("server_no_listen", "tunnel { listen = {} }\n");
	begin(), put_text("tunnel { egress = {1");
	for (int p = 2; p <= CONFIG_MAX_EGRESS + 1; p++) {
		snprintf(port, sizeof(port), ",%d", p);
		put_text(port);
	}
	put_text("} }\n");
	save("fuzz_config", "server_482_egress");
	config("cli_listen_twice",
		"server \"w\" { address = \"w.example\" public_key = \"%s\" }\n"
		"forward { listen = \"127.0.0.1:2201\" server = \"w\" port = 22 }\n"
		"forward { listen = \"127.0.0.1:2201\" server = \"w\" port = 80 }\n",
		server);
}

int main(int argc, char **argv)
{
	struct fuzz_tunnel ft;

	if (argc != 2) {
		fprintf(stderr, "usage: make_corpus DIR\n");
		return 2;
	}
	root = argv[1];
	check(mkdir(root, 0755) == 0 || errno == EEXIST);
	fuzz_init();
	fuzz_tunnel_init(&ft);
	knock_packet_seeds();
	knock_policy_seeds();
	handshake_seeds(&ft);
	transport_seeds();
	yamux_seeds();
	stream_request_seeds();
	socks_seeds();
	config_seeds();
	tunnel_transport_free(&ft.client_t);
	tunnel_transport_free(&ft.server_t);
	return 0;
}
