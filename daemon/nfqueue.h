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

/* What posternd keeps of a queued packet: a copy of the knock-sized payload. */
struct queued_knock {
	uint8_t src[16];
	size_t len;			/* the UDP payload's true length */
	uint8_t data[KNOCK_LEN];	/* valid when len == KNOCK_LEN */
};

struct nfqueue_stats {
	uint64_t packets;	/* received from the queue */
	uint64_t not_udp;	/* not a whole UDP datagram */
	uint64_t enobufs;	/* times the socket buffer overran */
};

struct nfqueue;

/* Bind queue num. A queue bound by another process is an error naming it. */
struct nfqueue *nfqueue_open(uint16_t num, char *err, size_t err_len);
void nfqueue_close(struct nfqueue *q);
int nfqueue_fd(const struct nfqueue *q);

/*
 * Read what is queued, without blocking, up to NFQUEUE_BURST packets; copy
 * their payloads to out and DROP them all with one verdict. Returns the
 * number of packets copied (0 when none was waiting), −1 on a socket error
 * (err says which).
 */
int nfqueue_receive(struct nfqueue *q, struct queued_knock out[NFQUEUE_BURST],
		    struct nfqueue_stats *st, char *err, size_t err_len);

/* The kernel's own counters for the queue (/proc/net/netfilter/
 * nfnetlink_queue): packets dropped because the queue or socket was full.
 * False when that file could not be opened at nfqueue_open (it is root's:
 * a daemon started as its user from the start cannot read it). */
bool nfqueue_kernel_drops(const struct nfqueue *q, uint64_t *queue_dropped,
			  uint64_t *user_dropped);

#endif
