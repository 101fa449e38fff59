/*
 * posternd's one NFQUEUE, through libnetfilter_queue's libmnl API. Packets
 * are received in bursts; each burst is answered with a single batch verdict,
 * always DROP: the sender of a knock never gets an answer.
 */
#ifndef POSTERN_NFQUEUE_H
#define POSTERN_NFQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ip_udp.h"
#include "knock.h"

#define NFQUEUE_BURST 64

struct nfqueue_stats {
	uint64_t packets;	/* received from the queue */
	uint64_t not_udp;	/* not a whole UDP datagram */
	uint64_t bad_source;	/* from an address no host knocks from */
	uint64_t enobufs;	/* times the socket buffer overran */
};

struct nfqueue;

/* Bind queue num. A queue bound by another process is an error naming it. */
struct nfqueue *nfqueue_open(uint16_t num, char *err, size_t err_len);
void nfqueue_close(struct nfqueue *q);
int nfqueue_fd(const struct nfqueue *q);

/*
 * Read what is queued, without blocking, up to NFQUEUE_BURST packets; copy
 * their datagrams to out and DROP them all with one verdict. Returns the
 * number of packets copied (0 when none was waiting), −1 on a socket error
 * (err says which).
 */
int nfqueue_receive(struct nfqueue *q, struct knock_packet out[NFQUEUE_BURST],
		    struct nfqueue_stats *st, char *err, size_t err_len);

/*
 * The datagram in one queued packet (pkt: the len bytes the queue copied,
 * starting at the IP header; orig_len: NFQA_CAP_LEN, the length before the
 * copy range cut it, or 0) into k, every byte of which is written. False,
 * counted in st, when the packet is no knock-shaped datagram at all.
 */
bool nfqueue_fill_packet(struct knock_packet *k, const uint8_t *pkt,
			 size_t len, size_t orig_len, struct nfqueue_stats *st);

/* The kernel's own counters for the queue (/proc/net/netfilter/
 * nfnetlink_queue): packets dropped because the queue or socket was full.
 * False when that file could not be opened at nfqueue_open (it is root's:
 * a daemon started as its user from the start cannot read it): then
 * *user_dropped is the socket's own drop count (SO_MEMINFO), and the
 * queue's is not known. */
bool nfqueue_kernel_drops(const struct nfqueue *q, uint64_t *queue_dropped,
			  uint64_t *user_dropped);

#endif
