/* SOCKS5 greeting and request, sans I/O (socks_proto.h). */
#include "socks_proto.h"

#include <arpa/inet.h>
#include <string.h>

void socks_parser_init(struct socks_parser *p)
{
	memset(p, 0, sizeof(*p));
	p->state = SOCKS_S_GREETING;
}

/* The whole length of the message in buf, as far as its bytes so far
 * tell; 0 for an address type the length of which is unknown. */
static size_t message_len(const struct socks_parser *p)
{
	const uint8_t *b = p->buf;

	/* The version alone first: a client that is not SOCKS5 is refused
	 * at its first byte, however its bytes arrive. */
	if (p->have == 0)
		return 1;
	if (p->state == SOCKS_S_GREETING)
		return p->have < 2 ? 2 : 2 + (size_t)b[1];
	if (p->have < 4)
		return 4;
	switch (b[3]) {
	case SOCKS_ATYP_IPV4:
		return 4 + 4 + 2;
	case SOCKS_ATYP_IPV6:
		return 4 + 16 + 2;
	case SOCKS_ATYP_DOMAIN:
		return p->have < 5 ? 5 : 4 + 1 + (size_t)b[4] + 2;
	default:
		return 0;
	}
}

size_t socks_want(const struct socks_parser *p)
{
	size_t len;

	if (p->state == SOCKS_S_DONE)
		return 0;
	len = message_len(p);
	return len > p->have ? len - p->have : 0;
}

static enum socks_result refuse(struct socks_parser *p, int rep, const char *err)
{
	p->state = SOCKS_S_DONE;
	p->err = err;
	p->out_len = 0;
	if (rep == SOCKS_METHOD_REFUSED) {
		p->out[0] = SOCKS_VERSION;
		p->out[1] = SOCKS_METHOD_REFUSED;
		p->out_len = 2;
	} else if (rep >= 0) {
		socks_reply_encode(p->out, (uint8_t)rep);
		p->out_len = SOCKS_REPLY_LEN;
	}
	return SOCKS_REFUSE;
}

/* A whole greeting is in buf. */
static enum socks_result greeting(struct socks_parser *p)
{
	if (!memchr(p->buf + 2, SOCKS_METHOD_NONE, p->buf[1]))
		return refuse(p, SOCKS_METHOD_REFUSED,
			      "no acceptable method (only \"no authentication\")");
	p->out[0] = SOCKS_VERSION;
	p->out[1] = SOCKS_METHOD_NONE;
	p->out_len = 2;
	p->state = SOCKS_S_REQUEST;
	p->have = 0;
	return SOCKS_SEND;
}

/* A whole request is in buf. */
static enum socks_result request(struct socks_parser *p)
{
	struct socks_request *r = &p->req;
	const uint8_t *a = p->buf + 4;
	size_t alen;

	memset(r, 0, sizeof(*r));
	r->atyp = p->buf[3];
	switch (r->atyp) {
	case SOCKS_ATYP_IPV4:
		alen = 4;
		memcpy(r->addr, a, alen);
		inet_ntop(AF_INET, r->addr, r->host, sizeof(r->host));
		break;
	case SOCKS_ATYP_IPV6:
		alen = 16;
		memcpy(r->addr, a, alen);
		inet_ntop(AF_INET6, r->addr, r->host, sizeof(r->host));
		break;
	default:	/* SOCKS_ATYP_DOMAIN: message_len knew no other */
		alen = 1 + (size_t)a[0];
		if (a[0] == 0)
			return refuse(p, SOCKS_REP_FAILURE, "an empty domain name");
		if (memchr(a + 1, '\0', a[0]))
			return refuse(p, SOCKS_REP_FAILURE, "a NUL byte in the domain name");
		memcpy(r->host, a + 1, a[0]);
		r->host[a[0]] = '\0';
		break;
	}
	r->port = (uint16_t)(a[alen] << 8 | a[alen + 1]);
	/* Checked once the whole request is read: a refusal closes the
	 * socket, and unread bytes in it would turn our reply into a reset. */
	if (p->buf[1] != SOCKS_CMD_CONNECT)
		return refuse(p, SOCKS_REP_CMD_UNSUPPORTED,
			      "command not supported (only CONNECT)");
	if (r->port == 0)
		return refuse(p, SOCKS_REP_FAILURE, "port 0");
	p->state = SOCKS_S_DONE;
	return SOCKS_REQUEST;
}

/* buf holds what message_len asked for: go on, or an answer. */
static enum socks_result step(struct socks_parser *p, bool *more)
{
	size_t len;

	*more = false;
	if (p->have >= 1 && p->buf[0] != SOCKS_VERSION)
		return refuse(p, -1, "not SOCKS version 5");
	len = message_len(p);
	if (len == 0)
		return refuse(p, SOCKS_REP_ATYP_UNSUPPORTED, "address type not supported");
	if (p->have < len) {
		*more = true;
		return SOCKS_MORE;
	}
	return p->state == SOCKS_S_GREETING ? greeting(p) : request(p);
}

enum socks_result socks_input(struct socks_parser *p, const uint8_t *in,
			      size_t n, size_t *used)
{
	enum socks_result r;
	bool more = true;

	*used = 0;
	if (p->state == SOCKS_S_DONE)
		return SOCKS_REFUSE;
	p->out_len = 0;
	while (more) {
		size_t want = socks_want(p), take = want < n - *used ? want : n - *used;

		if (want > 0 && take == 0)
			return SOCKS_MORE;
		/* want fits: message_len never exceeds SOCKS_REQUEST_MAX. */
		memcpy(p->buf + p->have, in + *used, take);
		p->have += take;
		*used += take;
		r = step(p, &more);
	}
	return r;
}

void socks_reply_encode(uint8_t out[SOCKS_REPLY_LEN], uint8_t rep)
{
	memset(out, 0, SOCKS_REPLY_LEN);
	out[0] = SOCKS_VERSION;
	out[1] = rep;
	out[3] = SOCKS_ATYP_IPV4;
}

const char *socks_rep_str(uint8_t rep)
{
	static const char *const s[] = {
		"succeeded", "general SOCKS server failure",
		"connection not allowed by ruleset", "network unreachable",
		"host unreachable", "connection refused", "TTL expired",
		"command not supported", "address type not supported",
	};

	return rep < sizeof(s) / sizeof(s[0]) ? s[rep] : "unknown reply";
}
