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
 * packet's own length; the fields read back as parsed; the source prints
 * and parses back to itself; only a whole 145-byte payload from an
 * allow-listed key is accepted, for its own source address (allow_target
 * is off), for at most max_open_seconds.
 */
#include <netinet/in.h>
#include <string.h>

#include "fuzz_util.h"
#include "ip_udp.h"
#include "knock_verify.h"

#define FIX_MAC1 0x01

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_init();
	return 0;
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void check_datagram(const struct udp_datagram *d, const uint8_t *pkt,
			   size_t len, size_t orig_len)
{
	size_t off, held, ip_len;
	uint8_t back[16];
	char text[46];

	check(d->payload >= pkt + 8 && d->payload <= pkt + len);
	off = (size_t)(d->payload - pkt);
	held = len - off;
	check(d->captured == (held < d->payload_len ? held : d->payload_len));
	check(off + d->payload_len <= (orig_len > len ? orig_len : len));
	check(be16(d->payload - 4) == d->payload_len + 8);	/* UDP length */
	check(be16(d->payload - 6) == d->dport);
	check(d->v6 == (pkt[0] >> 4 == 6));
	if (d->v6) {
		ip_len = 40 + (size_t)be16(pkt + 4);
		check(off >= 48 && memcmp(d->src, pkt + 8, 16) == 0);
	} else {
		ip_len = be16(pkt + 2);
		check(off == (size_t)(pkt[0] & 0x0f) * 4 + 8);
		check(pkt[9] == IPPROTO_UDP && (be16(pkt + 6) & 0x3fff) == 0);
		check(addr_is_v4(d->src) && memcmp(d->src + 12, pkt + 12, 4) == 0);
	}
	check(off + d->payload_len <= ip_len);
	addr_to_text(text, d->src);
	check(memchr(text, '\0', sizeof(text)) != NULL);
	check(addr_from_text(back, text) && memcmp(back, d->src, 16) == 0);
}

/* What posternd verifies of a datagram: its whole payload, and only when
 * the queue captured all of it; a datagram cut by the copy range is never
 * verified. The one call of knock_verify here. */
static bool verify(struct knock_verifier *v, const struct udp_datagram *d,
		   struct knock_decision *dec, enum knock_reason *r)
{
	if (d->captured < d->payload_len)
		return false;
	*r = knock_verify(v, d->payload, d->payload_len, d->src, FUZZ_NOW_MS, dec);
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct knock_verifier v;
	struct knock_decision dec;
	struct udp_datagram d;
	uint8_t pkt[4096], flags;
	size_t orig_len, len;
	enum knock_reason r;

	if (size < 3 || size - 3 > sizeof(pkt))
		return 0;
	flags = data[0];
	orig_len = be16(data + 1);
	len = size - 3;
	memcpy(pkt, data + 3, len);	/* mutable, and exactly len bytes */
	if (!ip_udp_parse(&d, pkt, len, orig_len))
		return 0;
	check_datagram(&d, pkt, len, orig_len);
	if (flags & FIX_MAC1 && d.captured == KNOCK_LEN && d.payload_len == KNOCK_LEN)
		fuzz_knock_mac1((uint8_t *)d.payload, fk.server.pub, fk.psk);

	/* A fresh verifier per input: no state leaks from one to the next. */
	check(knock_verifier_init(&v, &fk.server, fk.psk, &fuzz_knock_cfg,
				  FUZZ_NOW_MS - 1000));
	if (!verify(&v, &d, &dec, &r)) {
		knock_verifier_free(&v);
		return 0;
	}
	if (r == KNOCK_OK) {
		check(d.payload_len == KNOCK_LEN);
		check(dec.client == &fuzz_knock_cfg.clients[ALICE] ||
		      dec.client == &fuzz_knock_cfg.clients[BOB]);
		check(memcmp(dec.target, d.src, 16) == 0);
		check(dec.open_seconds > 0 &&
		      dec.open_seconds <= fuzz_knock_cfg.knock.max_open_seconds);
	}
	check(knock_reason_name(r) != NULL && v.counters[r] == 1);
	knock_verifier_free(&v);
	return 0;
}
