/*
 * The IPv4 or IPv6 + UDP headers of a packet as NFQUEUE gives it (starting
 * at the IP header, perhaps cut short by the queue's copy range). Sans-I/O.
 */
#ifndef POSTERN_IP_UDP_H
#define POSTERN_IP_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct udp_datagram {
	uint8_t src[16];	/* IPv6, or IPv4-mapped ::ffff:a.b.c.d */
	bool v6;
	uint16_t dport;
	const uint8_t *payload;	/* points into the packet */
	size_t payload_len;	/* the UDP payload's true length */
	size_t captured;	/* how much of it the buffer holds */
};

/* Parse; false if it is not a whole, unfragmented UDP datagram. orig_len is
 * the packet's length before the queue cut it (NFQA_CAP_LEN), or 0. */
bool ip_udp_parse(struct udp_datagram *d, const uint8_t *pkt, size_t len,
		  size_t orig_len);

/* Write an address as text: dotted quad for IPv4-mapped, else RFC 5952. */
void addr_to_text(char out[46], const uint8_t addr[16]);

/* Parse "a.b.c.d" or an IPv6 literal into the 16-byte form. */
bool addr_from_text(uint8_t out[16], const char *text);

bool addr_is_v4(const uint8_t addr[16]);

#endif
