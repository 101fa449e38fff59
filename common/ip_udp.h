/*
 * The IPv4 or IPv6 + UDP headers of a packet as NFQUEUE gives it (starting
 * at the IP header, perhaps cut short by the queue's copy range). Sans-I/O.
 */
#ifndef POSTERN_IP_UDP_H
#define POSTERN_IP_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * An address and the family it belongs to. IPv4 is held IPv4-mapped
 * (::ffff:a.b.c.d) so both fit one array, but only v6 says which family an
 * address is: an IPv6 packet from ::ffff:a.b.c.d is not an IPv4 host.
 */
struct ip_addr {
	bool v6;
	uint8_t b[16];
};

struct udp_datagram {
	struct ip_addr src;	/* the family is the packet's */
	uint16_t dport;
	const uint8_t *payload;	/* points into the packet */
	size_t payload_len;	/* the UDP payload's true length */
	size_t captured;	/* how much of it the buffer holds */
};

enum ip_udp_result {
	IP_UDP_OK,
	IP_UDP_MALFORMED,	/* not a whole, unfragmented UDP datagram */
	IP_UDP_BAD_SOURCE,	/* a source no host can knock from */
};

/* Parse. orig_len is the packet's length before the queue cut it
 * (NFQA_CAP_LEN), or 0. A source that cannot be a knocking host (see
 * ip_addr_is_host) is refused here, before anything looks at it. */
enum ip_udp_result ip_udp_parse(struct udp_datagram *d, const uint8_t *pkt,
				size_t len, size_t orig_len);

/*
 * False for addresses that name no single remote host: unspecified,
 * loopback, multicast, IPv4 broadcast and 0/8 and 240/4, and for IPv6 the
 * whole ::/96 and the IPv4-mapped ::ffff:0:0/96 (IPv4 has a family of its
 * own; a mapped source would reach the IPv4 set through an IPv6 packet).
 */
bool ip_addr_is_host(const struct ip_addr *a);

/* The address in a knock's 16-byte target field (IPv4-mapped for IPv4,
 * which is how the wire format says the family). */
void ip_addr_from_wire(struct ip_addr *a, const uint8_t wire[16]);

/* Write an address as text: dotted quad for IPv4, else RFC 5952. */
void ip_addr_to_text(char out[46], const struct ip_addr *a);

/* The 16-byte wire form of a knock's target field: "a.b.c.d" becomes
 * ::ffff:a.b.c.d, an IPv6 literal stays itself. */
bool addr_from_text(uint8_t out[16], const char *text);

#endif
