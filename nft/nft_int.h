/* Shared by the files of nft/; not part of its interface. */
#ifndef POSTERN_NFT_INT_H
#define POSTERN_NFT_INT_H

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libmnl/libmnl.h>

#include "nft.h"

/* Kernels >= 6.3 know it; Debian 12's headers do not. */
#ifndef NFT_MSG_DESTROYSETELEM
#define NFT_MSG_DESTROYSETELEM 30
#endif

/*
 * Worst case of one element in a message: nest, key nest, a 20-byte key,
 * TIMEOUT and EXPIRATION (12 each) is 60 bytes; 128 leaves room. Each
 * message's header, table and set names (each < NFT_NAME_MAXLEN) fit in the
 * 4096 more.
 */
#define NFT_BATCH_LIMIT (4096 + 2 * NFT_MAX_ELEMENTS * 128)
#define NFT_RECV_SIZE 16384

struct nft_conn {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;			/* of the next message sent */
	enum nft_refresh refresh;
	uint16_t destroy_type;		/* NFT_MSG_DESTROYSETELEM but in tests */
	/* netlink messages, so aligned as their headers; mnl_nlmsg_batch
	 * may write one message past its limit */
	alignas(8) char out[2 * NFT_BATCH_LIMIT];
	alignas(8) char in[NFT_RECV_SIZE];
};

/* What the kernel said to one request or batch. */
/* The step of an exchange that failed. */
enum nft_step {
	NFT_STEP_NONE,
	NFT_STEP_SEND,		/* the socket: netlink send */
	NFT_STEP_RECEIVE,	/* the socket: netlink receive */
	NFT_STEP_BATCH,		/* the transaction as a whole */
	NFT_STEP_LOOKUP,	/* GETSETELEM */
	NFT_STEP_DELETE,	/* DELSETELEM */
	NFT_STEP_DESTROY,	/* DESTROYSETELEM */
	NFT_STEP_ADD,		/* NEWSETELEM */
};

/* "netlink send", "add", …: for messages. */
const char *nft_step_name(enum nft_step step);

struct nft_reply {
	/* Called with each message that is not an ACK (a GET's answer). */
	void (*data_cb)(const struct nlmsghdr *nlh, void *data);
	void *data;
	/* When set: each acknowledged message's error, by seq - ack_first. */
	int *errs;
	/* The first refusal: its seq, errno and the kernel's extended ACK
	 * message ("" without one). When sock is set, the socket failed
	 * instead and step says how. */
	uint32_t err_seq;
	int err;
	bool sock;
	enum nft_step step;
	char msg[128];
};

/*
 * Send len bytes holding messages with seqs first..last, of which
 * ack_first..ack_last carry NLM_F_ACK, and read until each of those is
 * acknowledged. True when all were accepted.
 */
bool nft_exchange(struct nft_conn *c, const void *buf, size_t len,
		  uint32_t first, uint32_t last,
		  uint32_t ack_first, uint32_t ack_last, struct nft_reply *r);

/* NFPROTO_* of "ip", "ip6", "inet", "arp", "bridge", "netdev"; -1 if none. */
int nft_family_proto(const char *name);

/* Table and set names the kernel can hold (and our buffers are sized for). */
bool nft_names_ok(const struct nft_set_ref *s);

#endif
