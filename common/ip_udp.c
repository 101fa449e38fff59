/* IPv4/IPv6 + UDP header parsing for queued packets. */
#include "ip_udp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static const uint8_t v4_mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
};

bool addr_is_v4(const uint8_t addr[16])
{
	return !memcmp(addr, v4_mapped_prefix, sizeof(v4_mapped_prefix));
}

void addr_to_text(char out[46], const uint8_t addr[16])
{
	if (addr_is_v4(addr))
		inet_ntop(AF_INET, addr + 12, out, 46);
	else
		inet_ntop(AF_INET6, addr, out, 46);
}

bool addr_from_text(uint8_t out[16], const char *text)
{
	memcpy(out, v4_mapped_prefix, sizeof(v4_mapped_prefix));
	if (inet_pton(AF_INET, text, out + 12) == 1)
		return true;
	return inet_pton(AF_INET6, text, out) == 1;
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
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

bool ip_udp_parse(struct udp_datagram *d, const uint8_t *pkt, size_t len,
		  size_t orig_len)
{
	size_t off, ip_total;
	uint8_t next;
	uint16_t udp_len;

	if (orig_len < len)
		orig_len = len;
	memset(d, 0, sizeof(*d));
	if (len < 1)
		return false;
	switch (pkt[0] >> 4) {
	case 4:
		off = (size_t)(pkt[0] & 0x0f) * 4;
		if (off < 20 || len < off)
			return false;
		/* MF set or a fragment offset: only whole datagrams count */
		if ((be16(pkt + 6) & 0x3fff) != 0 || pkt[9] != IPPROTO_UDP)
			return false;
		ip_total = be16(pkt + 2);
		memcpy(d->src, v4_mapped_prefix, sizeof(v4_mapped_prefix));
		memcpy(d->src + 12, pkt + 12, 4);
		break;
	case 6:
		if (len < 40)
			return false;
		off = 40;
		next = pkt[6];
		ip_total = 40 + (size_t)be16(pkt + 4);
		if (!ipv6_skip_extensions(pkt, len, &off, &next))
			return false;
		memcpy(d->src, pkt + 8, 16);
		d->v6 = true;
		break;
	default:
		return false;
	}
	if (len - off < 8 || ip_total > orig_len || ip_total < off + 8)
		return false;
	udp_len = be16(pkt + off + 4);
	if (udp_len < 8 || off + udp_len > ip_total)
		return false;
	d->dport = be16(pkt + off + 2);
	d->payload = pkt + off + 8;
	d->payload_len = udp_len - 8u;
	d->captured = len - off - 8;
	if (d->captured > d->payload_len)
		d->captured = d->payload_len;
	return true;
}
