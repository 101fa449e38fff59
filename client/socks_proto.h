/*
 * The server side of a SOCKS5 greeting and request (RFC 1928), without
 * I/O: bytes in, a result out. Method "no authentication" only, CONNECT
 * only, address types IPv4, IPv6 and domain name.
 *
 * Both messages delimit themselves, so the parser asks for exactly the
 * bytes it still needs (socks_want) and a caller that reads no more than
 * that never takes a byte of what follows the request: whatever the
 * client sends early stays in the socket for the relay. The greeting is
 * at most 257 bytes and the request at most 262.
 *
 * Refusals follow the RFC where it has a reply: no acceptable method is
 * answered 0xFF, another command 0x07, an unknown address type 0x08, a
 * malformed request (a domain name empty or holding a NUL) 0x01. A
 * version other than 5 is not SOCKS5: it is closed without a word.
 */
#ifndef POSTERN_SOCKS_PROTO_H
#define POSTERN_SOCKS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SOCKS_VERSION 5
#define SOCKS_METHOD_NONE 0x00		/* no authentication required */
#define SOCKS_METHOD_REFUSED 0xFF	/* no acceptable methods */
#define SOCKS_CMD_CONNECT 0x01
#define SOCKS_GREETING_MAX 257		/* 2 + 255 methods */
#define SOCKS_REQUEST_MAX 262		/* 4 + 1 + 255 + 2 */
#define SOCKS_REPLY_LEN 10		/* with an IPv4 BND.ADDR */

enum socks_atyp {
	SOCKS_ATYP_IPV4 = 0x01,
	SOCKS_ATYP_DOMAIN = 0x03,
	SOCKS_ATYP_IPV6 = 0x04,
};

/* The REP field of a reply. */
enum socks_rep {
	SOCKS_REP_OK = 0x00,
	SOCKS_REP_FAILURE = 0x01,		/* general SOCKS server failure */
	SOCKS_REP_NOT_ALLOWED = 0x02,		/* not allowed by ruleset */
	SOCKS_REP_NET_UNREACHABLE = 0x03,
	SOCKS_REP_HOST_UNREACHABLE = 0x04,
	SOCKS_REP_REFUSED = 0x05,		/* connection refused */
	SOCKS_REP_TTL_EXPIRED = 0x06,
	SOCKS_REP_CMD_UNSUPPORTED = 0x07,
	SOCKS_REP_ATYP_UNSUPPORTED = 0x08,
};

enum socks_result {
	SOCKS_MORE,	/* feed socks_want() more bytes */
	SOCKS_SEND,	/* write out[0..out_len) (the method chosen), feed on */
	SOCKS_REQUEST,	/* req holds a CONNECT: answer socks_reply_encode() */
	SOCKS_REFUSE,	/* write out[0..out_len) if any, then close; err says why */
};

struct socks_request {
	uint8_t atyp;
	uint8_t addr[16];		/* IPv4 (4 bytes) or IPv6 */
	char host[256];			/* the domain name, or the address as text */
	uint16_t port;
};

enum socks_state { SOCKS_S_GREETING, SOCKS_S_REQUEST, SOCKS_S_DONE };

struct socks_parser {
	enum socks_state state;
	uint8_t buf[SOCKS_REQUEST_MAX];	/* the message being read */
	size_t have;
	uint8_t out[SOCKS_REPLY_LEN];
	size_t out_len;
	const char *err;		/* after SOCKS_REFUSE: a short reason */
	struct socks_request req;	/* after SOCKS_REQUEST */
};

void socks_parser_init(struct socks_parser *p);

/* How many bytes the next step needs at least (0 once done). */
size_t socks_want(const struct socks_parser *p);

/* Take bytes of in, at most n: *used says how many. SOCKS_MORE has taken
 * them all; after SOCKS_SEND call again with the rest; SOCKS_REQUEST and
 * SOCKS_REFUSE are final, and the parser takes nothing after them. */
enum socks_result socks_input(struct socks_parser *p, const uint8_t *in,
			      size_t n, size_t *used);

/* A reply with BND.ADDR 0.0.0.0 and BND.PORT 0: no address of ours means
 * anything to the client (the connection is made on the server). */
void socks_reply_encode(uint8_t out[SOCKS_REPLY_LEN], uint8_t rep);

/* "host unreachable" and the like, for messages. */
const char *socks_rep_str(uint8_t rep);

#endif
