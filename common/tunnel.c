/*
 * Tunnel protocol v1: framing, the IKpsk2 handshake and its hellos, the
 * transport ciphers, and the stream open request. See tunnel.h for the call
 * sequence and docs/PROTOCOL.md for the bytes.
 */
#include "tunnel.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "bytes.h"

static_assert(TUNNEL_MSG1_LEN == 100, "message 1 is 100 bytes");
static_assert(TUNNEL_MSG2_MIN == 62, "message 2 is 62 bytes + 2 per port");
static_assert(TUNNEL_MAX_PORTS == 481, "port list bound");
static_assert(TUNNEL_HANDSHAKE_MAX <= TUNNEL_MAX_MSG, "fits the framing");

const char *tunnel_strerror(enum tunnel_error e)
{
	switch (e) {
	case TUNNEL_OK:		return "success";
	case TUNNEL_AGAIN:	return "message incomplete";
	case TUNNEL_E_FRAME:	return "bad message length";
	case TUNNEL_E_HANDSHAKE: return "handshake failed to authenticate "
				       "(wrong server key or PSK, or altered)";
	case TUNNEL_E_HELLO:	return "malformed hello";
	case TUNNEL_E_VERSION:	return "unsupported protocol version";
	case TUNNEL_E_KEY:	return "unusable key";
	case TUNNEL_E_DECRYPT:	return "transport message failed to authenticate";
	case TUNNEL_E_NONCE:	return "nonces exhausted";
	case TUNNEL_E_TOO_LONG:	return "too long";
	case TUNNEL_E_SPACE:	return "buffer too small";
	case TUNNEL_E_STATE:	return "out of order or session failed";
	}
	return "unknown error";
}

/* Framing */

void tunnel_reader_init(struct tunnel_reader *r, enum tunnel_expect what)
{
	switch (what) {
	case TUNNEL_EXPECT_MSG1:
		r->min = TUNNEL_MSG1_LEN;
		r->max = TUNNEL_HANDSHAKE_MAX;
		break;
	case TUNNEL_EXPECT_MSG2:
		r->min = TUNNEL_MSG2_MIN;
		r->max = TUNNEL_HANDSHAKE_MAX;
		break;
	default:
		/* An empty plaintext still carries its tag. */
		r->min = TAG_LEN;
		r->max = TUNNEL_MAX_MSG;
		break;
	}
	r->have = 0;
	r->len = 0;
	r->done = false;
	r->failed = false;
}

bool tunnel_reader_idle(const struct tunnel_reader *r)
{
	return r->have == 0 || r->done;
}

static void take(const uint8_t **in, size_t *in_len, size_t n)
{
	*in += n;
	*in_len -= n;
}

enum tunnel_error tunnel_read(struct tunnel_reader *r, const uint8_t **in,
			      size_t *in_len, const uint8_t **msg, size_t *len)
{
	size_t got, want, n;

	if (r->failed)
		return TUNNEL_E_FRAME;
	if (r->done) {
		r->have = 0;
		r->done = false;
	}
	while (r->have < TUNNEL_LEN_PREFIX) {
		if (*in_len == 0)
			return TUNNEL_AGAIN;
		r->prefix[r->have++] = **in;
		take(in, in_len, 1);
	}
	if (r->have == TUNNEL_LEN_PREFIX) {
		r->len = get_be16(r->prefix);
		if (r->len < r->min || r->len > r->max) {
			r->failed = true;
			return TUNNEL_E_FRAME;
		}
	}
	if (*in_len == 0)		/* every body holds at least a tag */
		return TUNNEL_AGAIN;
	got = r->have - TUNNEL_LEN_PREFIX;
	want = r->len - got;
	if (got == 0 && *in_len >= want) {
		/* The whole body is in the input: lend it, copy nothing. */
		*msg = *in;
		take(in, in_len, want);
	} else {
		n = *in_len < want ? *in_len : want;
		memcpy(r->buf + got, *in, n);
		take(in, in_len, n);
		r->have += (uint32_t)n;
		if (n < want)
			return TUNNEL_AGAIN;
		*msg = r->buf;
	}
	*len = r->len;
	r->have = TUNNEL_LEN_PREFIX + r->len;
	r->done = true;
	return TUNNEL_OK;
}

/* Handshake */

static bool at_step(const struct tunnel_handshake *hs, enum noise_role role,
		    uint8_t next)
{
	return !hs->noise.failed && hs->noise.role == role &&
	       hs->noise.next == next;
}

static enum tunnel_error from_noise_init(enum noise_error e)
{
	return e == NOISE_OK ? TUNNEL_OK : TUNNEL_E_KEY;
}

static enum tunnel_error from_noise_write(enum noise_error e)
{
	switch (e) {
	case NOISE_OK:		return TUNNEL_OK;
	case NOISE_E_SPACE:	return TUNNEL_E_SPACE;
	case NOISE_E_STATE:	return TUNNEL_E_STATE;
	default:		return TUNNEL_E_KEY;	/* DH, RNG */
	}
}

static enum tunnel_error from_noise_read(enum noise_error e)
{
	switch (e) {
	case NOISE_OK:		return TUNNEL_OK;
	case NOISE_E_SPACE:	return TUNNEL_E_SPACE;
	case NOISE_E_STATE:	return TUNNEL_E_STATE;
	default:		return TUNNEL_E_HANDSHAKE; /* tag, DH, short */
	}
}

/* Every way out of a handshake step that ends it goes through here. */
static enum tunnel_error end(struct tunnel_handshake *hs, enum tunnel_error e)
{
	tunnel_handshake_free(hs);
	return e;
}

static enum tunnel_error split(struct tunnel_handshake *hs,
			       struct tunnel_transport *t)
{
	memset(t, 0, sizeof(*t));
	if (noise_handshake_split(&hs->noise, &t->send, &t->recv,
				  t->hash) != NOISE_OK)
		return TUNNEL_E_STATE;
	return TUNNEL_OK;
}

void tunnel_handshake_free(struct tunnel_handshake *hs)
{
	noise_handshake_wipe(&hs->noise);
	hs->client_version = 0;
}

enum tunnel_error tunnel_client_init(struct tunnel_handshake *hs,
				     const struct noise_keypair *client,
				     const uint8_t server_pub[KEY_LEN],
				     const uint8_t psk[KEY_LEN])
{
	enum noise_error e;

	memset(hs, 0, sizeof(*hs));
	e = noise_handshake_init(&hs->noise, TUNNEL_PROTOCOL, NOISE_INITIATOR,
				 TUNNEL_PROLOGUE, sizeof(TUNNEL_PROLOGUE) - 1,
				 client, server_pub, psk);
	hs->client_version = TUNNEL_VERSION;
	return from_noise_init(e);
}

enum tunnel_error tunnel_client_start(struct tunnel_handshake *hs,
				      uint8_t *out, size_t *out_len)
{
	/* version ‖ 3 reserved bytes, zero */
	const uint8_t hello[TUNNEL_CLIENT_HELLO_LEN] = { TUNNEL_VERSION };
	size_t n;
	enum tunnel_error e;

	if (!at_step(hs, NOISE_INITIATOR, 0))
		return end(hs, TUNNEL_E_STATE);
	if (*out_len < TUNNEL_LEN_PREFIX + TUNNEL_MSG1_LEN)
		return end(hs, TUNNEL_E_SPACE);
	n = *out_len - TUNNEL_LEN_PREFIX;
	e = from_noise_write(noise_handshake_write(&hs->noise,
						   out + TUNNEL_LEN_PREFIX, &n,
						   hello, sizeof(hello)));
	if (e != TUNNEL_OK)
		return end(hs, e);
	put_be16(out, (uint16_t)n);
	*out_len = TUNNEL_LEN_PREFIX + n;
	return TUNNEL_OK;
}

/*
 * version u8 ‖ flags u8 ‖ reserved u16 ‖ server_time_ms u64 ‖ n u16 ‖
 * n × port u16. A v1 client asked for v1, so anything else is refused; flags,
 * reserved and bytes after the ports are ignored, so that a later server can
 * add to the hello without breaking v1 clients.
 */
static enum tunnel_error server_hello_decode(struct tunnel_server_hello *h,
					     const uint8_t *p, size_t len)
{
	size_t n;

	memset(h, 0, sizeof(*h));
	if (len < TUNNEL_SERVER_HELLO_MIN)
		return TUNNEL_E_HELLO;
	if (p[0] != TUNNEL_VERSION)
		return TUNNEL_E_VERSION;
	n = get_be16(p + 12);
	if (n > (len - TUNNEL_SERVER_HELLO_MIN) / 2)
		return TUNNEL_E_HELLO;
	h->version = p[0];
	h->flags = p[1];
	h->server_time_ms = get_be64(p + 4);
	h->n_ports = (uint16_t)n;
	for (size_t i = 0; i < n; i++)
		h->ports[i] = get_be16(p + TUNNEL_SERVER_HELLO_MIN + 2 * i);
	return TUNNEL_OK;
}

static size_t server_hello_encode(uint8_t *p, const uint16_t *ports, size_t n,
				  uint64_t server_time_ms)
{
	p[0] = TUNNEL_VERSION;
	p[1] = 0;			/* flags */
	put_be16(p + 2, 0);		/* reserved */
	put_be64(p + 4, server_time_ms);
	put_be16(p + 12, (uint16_t)n);
	for (size_t i = 0; i < n; i++)
		put_be16(p + TUNNEL_SERVER_HELLO_MIN + 2 * i, ports[i]);
	return TUNNEL_SERVER_HELLO_MIN + 2 * n;
}

enum tunnel_error tunnel_client_finish(struct tunnel_handshake *hs,
				       const uint8_t *msg, size_t len,
				       struct tunnel_server_hello *hello,
				       struct tunnel_transport *t)
{
	uint8_t payload[TUNNEL_HANDSHAKE_MAX];
	size_t n = sizeof(payload);
	enum tunnel_error e;

	if (!at_step(hs, NOISE_INITIATOR, 1))
		return end(hs, TUNNEL_E_STATE);
	if (len < TUNNEL_MSG2_MIN || len > TUNNEL_HANDSHAKE_MAX)
		return end(hs, TUNNEL_E_FRAME);
	e = from_noise_read(noise_handshake_read(&hs->noise, payload, &n,
						 msg, len));
	if (e == TUNNEL_OK)
		e = server_hello_decode(hello, payload, n);
	if (e == TUNNEL_OK)
		e = split(hs, t);
	wipe(payload, sizeof(payload));
	return end(hs, e);
}

enum tunnel_error tunnel_server_read_hello(struct tunnel_handshake *hs,
					   const struct noise_keypair *server,
					   const uint8_t psk[KEY_LEN],
					   const struct noise_ss_source *ss,
					   const uint8_t *msg, size_t len,
					   uint8_t client_pub[KEY_LEN])
{
	uint8_t payload[TUNNEL_HANDSHAKE_MAX];
	size_t n = sizeof(payload);
	enum tunnel_error e;

	memset(hs, 0, sizeof(*hs));
	e = from_noise_init(noise_handshake_init(&hs->noise, TUNNEL_PROTOCOL,
						 NOISE_RESPONDER, TUNNEL_PROLOGUE,
						 sizeof(TUNNEL_PROLOGUE) - 1,
						 server, NULL, psk));
	if (e != TUNNEL_OK)
		return end(hs, e);
	/* IKpsk2 message 1 is e, es, s, ss: ss is the same in every
	 * handshake of a client. */
	if (ss)
		noise_handshake_set_ss_lookup(&hs->noise, ss->fn, ss->ctx);
	/* Checked before any public-key work: it costs nothing to refuse. */
	if (len < TUNNEL_MSG1_LEN || len > TUNNEL_HANDSHAKE_MAX)
		return end(hs, TUNNEL_E_FRAME);
	e = from_noise_read(noise_handshake_read(&hs->noise, payload, &n,
						 msg, len));
	/* Bytes after the version are a later client's: ignore them. A
	 * client of version 2 or more is answered in v1, which it may take or
	 * leave. */
	if (e == TUNNEL_OK && n < TUNNEL_CLIENT_HELLO_LEN)
		e = TUNNEL_E_HELLO;
	else if (e == TUNNEL_OK && payload[0] < TUNNEL_VERSION)
		e = TUNNEL_E_VERSION;
	if (e == TUNNEL_OK) {
		hs->client_version = payload[0];
		memcpy(client_pub, hs->noise.rs, KEY_LEN);
	}
	wipe(payload, sizeof(payload));
	return e == TUNNEL_OK ? e : end(hs, e);
}

enum tunnel_error tunnel_server_accept(struct tunnel_handshake *hs,
				       const uint16_t *ports, size_t n_ports,
				       uint64_t server_time_ms,
				       uint8_t *out, size_t *out_len,
				       struct tunnel_transport *t)
{
	uint8_t payload[TUNNEL_HANDSHAKE_MAX];
	size_t plen, n;
	enum tunnel_error e;

	if (!at_step(hs, NOISE_RESPONDER, 1))
		return end(hs, TUNNEL_E_STATE);
	if (n_ports > TUNNEL_MAX_PORTS)
		return end(hs, TUNNEL_E_TOO_LONG);
	plen = server_hello_encode(payload, ports, n_ports, server_time_ms);
	if (*out_len < TUNNEL_LEN_PREFIX + KEY_LEN + plen + TAG_LEN)
		return end(hs, TUNNEL_E_SPACE);
	n = *out_len - TUNNEL_LEN_PREFIX;
	e = from_noise_write(noise_handshake_write(&hs->noise,
						   out + TUNNEL_LEN_PREFIX, &n,
						   payload, plen));
	if (e == TUNNEL_OK)
		e = split(hs, t);
	if (e == TUNNEL_OK) {
		put_be16(out, (uint16_t)n);
		*out_len = TUNNEL_LEN_PREFIX + n;
	}
	return end(hs, e);
}

/* Transport */

/* A session that saw one bad message, or ran out of nonces, is over: with
 * TCP underneath, no message is ever legitimately lost or reordered. */
static enum tunnel_error fail(struct tunnel_transport *t, enum tunnel_error e)
{
	t->failed = true;
	return e;
}

enum tunnel_error tunnel_seal(struct tunnel_transport *t,
			      const uint8_t *plain, size_t n, uint8_t *out)
{
	enum noise_error e;

	if (t->failed)
		return TUNNEL_E_STATE;
	if (n > TUNNEL_MAX_PLAIN)
		return TUNNEL_E_TOO_LONG;	/* the caller's mistake: no harm */
	e = noise_encrypt(&t->send, out + TUNNEL_LEN_PREFIX, NULL, 0, plain, n);
	if (e == NOISE_E_NONCE)
		return fail(t, TUNNEL_E_NONCE);
	if (e != NOISE_OK)
		return fail(t, TUNNEL_E_STATE);
	put_be16(out, (uint16_t)(n + TAG_LEN));
	return TUNNEL_OK;
}

enum tunnel_error tunnel_open(struct tunnel_transport *t,
			      const uint8_t *msg, size_t len,
			      uint8_t *plain, size_t *plain_len)
{
	enum noise_error e;

	if (t->failed)
		return TUNNEL_E_STATE;
	if (len < TAG_LEN || len > TUNNEL_MAX_MSG)
		return fail(t, TUNNEL_E_FRAME);
	e = noise_decrypt(&t->recv, plain, NULL, 0, msg, len);
	if (e == NOISE_E_NONCE)
		return fail(t, TUNNEL_E_NONCE);
	if (e != NOISE_OK)
		return fail(t, e == NOISE_E_DECRYPT ? TUNNEL_E_DECRYPT
						    : TUNNEL_E_STATE);
	*plain_len = len - TAG_LEN;
	return TUNNEL_OK;
}

void tunnel_transport_free(struct tunnel_transport *t)
{
	noise_cipher_free(&t->send);
	noise_cipher_free(&t->recv);
	wipe(t, sizeof(*t));
	t->failed = true;
}

bool tunnel_transport_copy(struct tunnel_transport *dst,
			   const struct tunnel_transport *src)
{
	*dst = *src;
	dst->send.aead.hd = dst->recv.aead.hd = NULL;
	if (noise_cipher_copy(&dst->send, &src->send) &&
	    noise_cipher_copy(&dst->recv, &src->recv))
		return true;
	tunnel_transport_free(dst);
	return false;
}

/* Streams */

void tunnel_request_encode(uint8_t out[TUNNEL_REQUEST_LEN], uint16_t port)
{
	out[0] = TUNNEL_CMD_CONNECT;
	put_be16(out + 1, port);
}

bool tunnel_request_decode(const uint8_t in[TUNNEL_REQUEST_LEN], uint16_t *port)
{
	if (in[0] != TUNNEL_CMD_CONNECT)
		return false;
	*port = get_be16(in + 1);
	return true;
}

enum tunnel_status tunnel_status_from_errno(int err)
{
	switch (err) {
	case 0:
		return TUNNEL_STATUS_OK;
	case ECONNREFUSED:
		return TUNNEL_STATUS_REFUSED;
	case ETIMEDOUT:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
	case ENETDOWN:
		return TUNNEL_STATUS_UNREACHABLE;
	default:
		return TUNNEL_STATUS_INTERNAL;
	}
}

const char *tunnel_status_str(uint8_t status)
{
	switch (status) {
	case TUNNEL_STATUS_OK:		return "ok";
	case TUNNEL_STATUS_NOT_ALLOWED:	return "port not allowed";
	case TUNNEL_STATUS_REFUSED:	return "connection refused";
	case TUNNEL_STATUS_UNREACHABLE:	return "unreachable or timed out";
	case TUNNEL_STATUS_INTERNAL:	return "internal error";
	}
	return "unknown status";
}
