/*
 * posternd's per-packet path on raw queued bytes: ip_udp_parse() on an
 * IPv4 or IPv6 packet (options, extension headers, fragments, a packet cut
 * short by the queue's copy range) and knock_verify() on the UDP payload
 * it finds. The seeds (make_corpus) are real knocks for the fixed server
 * key in real headers, so mutations start from packets the whole pipeline
 * accepts; bit 0 of the first byte rewrites a 145-byte payload's mac1, so
 * that mutated knocks get past it to the Noise read.
 *
 * Input: flags u8 ‖ orig_len u16 (NFQA_CAP_LEN: the packet's length before
 * the queue cut it; 0: not cut) ‖ the packet from its IP header on.
 *
 * Invariants: the datagram lies within the bytes held and within the IP
 * packet's own length; the fields read back as parsed; the source is of
 * the packet's family, a host's, and prints and parses back to itself;
 * the slot posternd verifies holds the captured bytes and zeros, never an
 * earlier packet's; a cut datagram is refused as truncated, and only a
 * whole 145-byte payload from an allow-listed key is accepted, for its own
 * source address (allow_target is off), for at most max_open_seconds.
 */
#include <netinet/in.h>
#include <string.h>

#include "bytes.h"
#include "fuzz_util.h"
#include "ip_udp.h"
#include "knock_verify.h"
#include "nfqueue.h"

#define FIX_MAC1 0x01

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_init();
	return 0;
}

static void check_datagram(const struct udp_datagram *d, const uint8_t *pkt,
			   size_t len, size_t orig_len)
{
	size_t off, held, ip_len;
	struct ip_addr back;
	char text[46];

	check(d->payload >= pkt + 8 && d->payload <= pkt + len);
	off = (size_t)(d->payload - pkt);
	held = len - off;
	check(d->captured == (held < d->payload_len ? held : d->payload_len));
	check(off + d->payload_len <= (orig_len > len ? orig_len : len));
	check(get_be16(d->payload - 4) == d->payload_len + 8);	/* UDP length */
	check(get_be16(d->payload - 6) == d->dport);
	/* the family is the packet's, and the source can be a host's */
	check(d->src.v6 == (pkt[0] >> 4 == 6));
	check(ip_addr_is_host(&d->src));
	if (d->src.v6) {
		ip_len = 40 + (size_t)get_be16(pkt + 4);
		check(off >= 48 && memcmp(d->src.b, pkt + 8, 16) == 0);
	} else {
		ip_len = get_be16(pkt + 2);
		check(off == (size_t)(pkt[0] & 0x0f) * 4 + 8);
		check(pkt[9] == IPPROTO_UDP && (get_be16(pkt + 6) & 0x3fff) == 0);
		check(memcmp(d->src.b + 12, pkt + 12, 4) == 0);
	}
	check(off + d->payload_len <= ip_len);
	ip_addr_to_text(text, &d->src);
	check(memchr(text, '\0', sizeof(text)) != NULL);
	check(addr_from_text(back.b, text));
	ip_addr_from_wire(&back, back.b);
	check(back.v6 == d->src.v6 && memcmp(back.b, d->src.b, 16) == 0);
}

/* What the queue hands posternd: every byte of the slot written, the
 * captured part of the payload and zeros after it. */
static void check_slot(const struct knock_packet *k, const struct udp_datagram *d)
{
	size_t held = d->captured < KNOCK_LEN ? d->captured : KNOCK_LEN;

	check(k->len == d->payload_len && k->captured == d->captured);
	check(k->src.v6 == d->src.v6 && memcmp(k->src.b, d->src.b, 16) == 0);
	check(memcmp(k->data, d->payload, held) == 0);
	for (size_t i = held; i < KNOCK_LEN; i++)
		check(k->data[i] == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct knock_clock now = { .wall_ms = FUZZ_NOW_MS, .boot_ms = 5000000 };
	struct knock_clock start = { .wall_ms = FUZZ_NOW_MS - 1000, .boot_ms = 4999000 };
	struct nfqueue_stats st = { 0 };
	struct knock_verifier v;
	struct knock_decision dec;
	struct udp_datagram d;
	struct knock_packet k;
	uint8_t pkt[4096], flags;
	size_t orig_len, len;
	enum knock_reason r;

	if (size < 3 || size - 3 > sizeof(pkt))
		return 0;
	flags = data[0];
	orig_len = get_be16(data + 1);
	len = size - 3;
	memcpy(pkt, data + 3, len);	/* mutable, and exactly len bytes */
	memset(&k, 0x5a, sizeof(k));	/* a slot full of an earlier packet */
	if (ip_udp_parse(&d, pkt, len, orig_len) != IP_UDP_OK) {
		check(!nfqueue_fill_packet(&k, pkt, len, orig_len, &st));
		return 0;
	}
	check_datagram(&d, pkt, len, orig_len);
	check(nfqueue_fill_packet(&k, pkt, len, orig_len, &st));
	check_slot(&k, &d);
	if (flags & FIX_MAC1 && k.len == KNOCK_LEN)
		fuzz_knock_mac1(k.data, fk.server.pub, fk.psk);

	/* A fresh verifier per input: no state leaks from one to the next. */
	check(knock_verifier_init(&v, &fk.server, fk.psk, &fuzz_knock_cfg, &start));
	r = knock_verify(&v, &k, &now, &dec);
	/* a datagram the queue cut short is never verified */
	check((k.captured < k.len) == (r == KNOCK_TRUNCATED));
	if (r == KNOCK_OK) {
		check(k.len == KNOCK_LEN && k.captured == KNOCK_LEN);
		check(dec.client == &fuzz_knock_cfg.clients[ALICE] ||
		      dec.client == &fuzz_knock_cfg.clients[BOB]);
		check(dec.target.v6 == k.src.v6 &&
		      memcmp(dec.target.b, k.src.b, 16) == 0);
		check(dec.open_seconds > 0 &&
		      dec.open_seconds <= fuzz_knock_cfg.knock.max_open_seconds);
	}
	check(knock_reason_name(r) != NULL && v.counters[r] == 1);
	knock_verifier_free(&v);
	return 0;
}
