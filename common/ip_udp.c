/* IPv4/IPv6 + UDP header parsing for queued packets. */
#include "ip_udp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "bytes.h"

static const uint8_t v4_mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
};

static bool v4_host(const uint8_t a[4])
{
	/* 0/8 "this network", 127/8 loopback, 224/4 multicast, 240/4
	 * reserved and the broadcast address */
	return a[0] != 0 && a[0] != 127 && a[0] < 224;
}

static bool v6_host(const uint8_t a[16])
{
	static const uint8_t zero[12];

	if (a[0] == 0xff)				/* multicast */
		return false;
	if (!memcmp(a, zero, 12))			/* ::/96: ::, ::1, ... */
		return false;
	return memcmp(a, v4_mapped_prefix, 12) != 0;	/* ::ffff:0:0/96 */
}

bool ip_addr_is_host(const struct ip_addr *a)
{
	return a->v6 ? v6_host(a->b) : v4_host(a->b + 12);
}

void ip_addr_from_wire(struct ip_addr *a, const uint8_t wire[16])
{
	memcpy(a->b, wire, 16);
	a->v6 = memcmp(wire, v4_mapped_prefix, sizeof(v4_mapped_prefix)) != 0;
}

void ip_addr_to_text(char out[46], const struct ip_addr *a)
{
	if (a->v6)
		inet_ntop(AF_INET6, a->b, out, 46);
	else
		inet_ntop(AF_INET, a->b + 12, out, 46);
}

bool addr_from_text(uint8_t out[16], const char *text)
{
	memcpy(out, v4_mapped_prefix, sizeof(v4_mapped_prefix));
	if (inet_pton(AF_INET, text, out + 12) == 1)
		return true;
	return inet_pton(AF_INET6, text, out) == 1;
}

/* Skip IPv6 extension headers up to the UDP header; false for fragments,
 * ESP, or a chain longer than any real packet has. */
static bool ipv6_skip_extensions(const uint8_t *pkt, size_t len, size_t *off,
				 uint8_t *next)
{
	for (int hops = 0; hops < 8; hops++) {
		switch (*next) {
		case IPPROTO_UDP:
			return true;
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if (len - *off < 8)
				return false;
			*next = pkt[*off];
			*off += 8 + 8 * (size_t)pkt[*off + 1];
			if (*off > len)
				return false;
			break;
		default:	/* fragments and anything else: not a knock */
			return false;
		}
	}
	return false;
}

/* The IP header: where UDP starts, the datagram's total length and its
 * source. */
static bool parse_ip(const uint8_t *pkt, size_t len, size_t *off,
		     size_t *ip_total, struct ip_addr *src)
{
	uint8_t next;

	switch (pkt[0] >> 4) {
	case 4:
		*off = (size_t)(pkt[0] & 0x0f) * 4;
		if (*off < 20 || len < *off)
			return false;
		/* MF set or a fragment offset: only whole datagrams count */
		if ((get_be16(pkt + 6) & 0x3fff) != 0 || pkt[9] != IPPROTO_UDP)
			return false;
		*ip_total = get_be16(pkt + 2);
		src->v6 = false;
		memcpy(src->b, v4_mapped_prefix, sizeof(v4_mapped_prefix));
		memcpy(src->b + 12, pkt + 12, 4);
		return true;
	case 6:
		if (len < 40)
			return false;
		*off = 40;
		next = pkt[6];
		*ip_total = 40 + (size_t)get_be16(pkt + 4);
		src->v6 = true;
		memcpy(src->b, pkt + 8, 16);
		return ipv6_skip_extensions(pkt, len, off, &next);
	default:
		return false;
	}
}

enum ip_udp_result ip_udp_parse(struct udp_datagram *d, const uint8_t *pkt,
				size_t len, size_t orig_len)
{
	size_t off, ip_total;
	uint16_t udp_len;

	if (orig_len < len)
		orig_len = len;
	memset(d, 0, sizeof(*d));
	if (len < 1 || !parse_ip(pkt, len, &off, &ip_total, &d->src))
		return IP_UDP_MALFORMED;
	if (len - off < 8 || ip_total > orig_len || ip_total < off + 8)
		return IP_UDP_MALFORMED;
	udp_len = get_be16(pkt + off + 4);
	if (udp_len < 8 || off + udp_len > ip_total)
		return IP_UDP_MALFORMED;
	if (!ip_addr_is_host(&d->src))
		return IP_UDP_BAD_SOURCE;
	d->dport = get_be16(pkt + off + 2);
	d->payload = pkt + off + 8;
	d->payload_len = udp_len - 8u;
	d->captured = len - off - 8;
	if (d->captured > d->payload_len)
		d->captured = d->payload_len;
	return IP_UDP_OK;
}
