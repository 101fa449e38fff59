/*
 * nf_tables set updates for posternd, over one netlink socket (libmnl,
 * libnftnl).
 *
 * posternd never writes a rule, a chain, a table or a set: the ruleset is the
 * administrator's. It reads the description of its sets once at start
 * (nft_set_check) and then only adds or refreshes timed elements in them
 * (nft_set_open), one nf_tables transaction per knock. docs/NFT.md says why
 * each kernel gets the refresh it gets.
 *
 * Nothing here aborts or prints: failures return false with one line in err
 * that names the set and gives the kernel's reason.
 */
#ifndef POSTERN_NFT_H
#define POSTERN_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Elements one nft_set_open may carry; bounds the batch buffer. */
#define NFT_MAX_ELEMENTS 256

/* One NETLINK_NETFILTER socket, reused for every request and batch. */
struct nft_conn;

/*
 * How a re-knock extends the timeout of an element that is still there. A
 * plain re-add without NLM_F_EXCL succeeds but leaves the old expiry, and a
 * batch that fails (EEXIST, ENOENT) aborts the whole transaction and costs an
 * RCU grace period, so every strategy is built to succeed.
 */
enum nft_refresh {
	/* NEWSETELEM with TIMEOUT and EXPIRATION: the kernel updates an
	 * existing element in place. Kernels >= 6.12. One message. */
	NFT_REFRESH_EXPIRATION,
	/* DESTROYSETELEM (no error when absent), then NEWSETELEM, in one
	 * transaction. Kernels >= 6.3. */
	NFT_REFRESH_DESTROY,
	/* GETSETELEM each element first, then DELSETELEM the ones found and
	 * NEWSETELEM all, in one transaction. Any kernel; one round trip
	 * more. */
	NFT_REFRESH_REPLACE,
};

/*
 * Open the socket and pick the refresh strategy from the running kernel's
 * version. Needs no privilege by itself; requests need CAP_NET_ADMIN.
 */
struct nft_conn *nft_conn_open(char *err, size_t err_len);
void nft_conn_close(struct nft_conn *c);

enum nft_refresh nft_conn_refresh(const struct nft_conn *c);
/* Force a strategy (tests, benchmarks). One the kernel lacks is dropped
 * for REPLACE at its first rejection, as after nft_conn_open. */
void nft_conn_set_refresh(struct nft_conn *c, enum nft_refresh r);
const char *nft_refresh_name(enum nft_refresh r);
/* True if the running kernel's version has r (each strategy above works
 * wherever the one before it does). */
bool nft_refresh_supported(enum nft_refresh r);

/* Tests only: send DESTROYSETELEM as this message type instead of 30, so
 * that a kernel which has it can be made to reject it and the fallback to
 * REPLACE be exercised. */
void nft_conn_set_destroy_type(struct nft_conn *c, uint16_t type);

enum nft_set_kind {
	NFT_SET_ADDR_PORT,	/* ipv4_addr . inet_service (ipv6_addr ...) */
	NFT_SET_ADDR,		/* ipv4_addr (ipv6_addr): opens every port */
};

struct nft_set_ref {
	const char *family;	/* "inet", "ip", "ip6", ... */
	const char *table;
	const char *set;
	int af;			/* AF_INET or AF_INET6: the key's address */
	enum nft_set_kind kind;	/* filled by nft_set_check */
};

/*
 * Check that the set exists, is a plain set (not a map, not an interval or
 * constant set), has flags timeout and a key posternd can write for af, and
 * fill s->kind. On failure err holds one line naming the set and the reason;
 * when the fix is to create or recreate the set (or the table), it ends with
 * the exact nft command(s), e.g.
 *   set inet postern allow4 not found; create it with: nft add set inet
 *   postern allow4 '{ type ipv4_addr . inet_service; flags timeout; }'
 */
bool nft_set_check(struct nft_conn *c, struct nft_set_ref *s,
		   char *err, size_t err_len);

struct nft_element {
	uint8_t addr[16];	/* IPv4 in the first 4 bytes for AF_INET */
	uint16_t port;		/* host order; unused by NFT_SET_ADDR sets */
};

/*
 * One transaction that adds addr . port for each element (for NFT_SET_ADDR
 * sets each distinct address once) with a timeout of timeout_ms, or extends
 * the timeout of the ones already there. s must have passed nft_set_check.
 * At most NFT_MAX_ELEMENTS elements; timeout_ms > 0. All or nothing: on
 * failure the set is as it was.
 */
bool nft_set_open(struct nft_conn *c, const struct nft_set_ref *s,
		  const struct nft_element *el, size_t n, uint32_t timeout_ms,
		  char *err, size_t err_len);

#endif
