/* yamux: the 12-byte frame header, error names and the default config. */
#include "yamux.h"

#include "bytes.h"

void yamux_header_encode(uint8_t out[YAMUX_HEADER_LEN],
			 const struct yamux_header *h)
{
	out[0] = h->version;
	out[1] = h->type;
	put_be16(out + 2, h->flags);
	put_be32(out + 4, h->stream_id);
	put_be32(out + 8, h->length);
}

void yamux_header_decode(struct yamux_header *h,
			 const uint8_t in[YAMUX_HEADER_LEN])
{
	h->version = in[0];
	h->type = in[1];
	h->flags = get_be16(in + 2);
	h->stream_id = get_be32(in + 4);
	h->length = get_be32(in + 8);
}

static const char *const error_names[YAMUX_ERRORS] = {
	[YAMUX_OK] = "ok",
	[YAMUX_E_VERSION] = "bad yamux version",
	[YAMUX_E_TYPE] = "unknown yamux frame type",
	[YAMUX_E_TOO_LONG] = "data frame longer than the largest window",
	[YAMUX_E_WINDOW] = "peer overran the receive window",
	[YAMUX_E_WINDOW_OVERFLOW] = "window update past 2^32-1",
	[YAMUX_E_STREAM_ZERO] = "data or window update on stream 0",
	[YAMUX_E_NOT_STREAM_ZERO] = "ping or go-away off stream 0",
	[YAMUX_E_PARITY] = "peer opened a stream id of our parity",
	[YAMUX_E_DUPLICATE] = "peer opened a stream that is open",
	[YAMUX_E_AFTER_FIN] = "data or FIN after the peer's FIN",
	[YAMUX_E_KEEPALIVE] = "keepalive timeout",
	[YAMUX_E_NO_ANSWER] = "no answer from the peer to a new stream",
	[YAMUX_E_GOAWAY] = "peer went away with an error",
	[YAMUX_E_OUTPUT] = "output queue overflow or out of memory",
};

const char *yamux_strerror(int e)
{
	unsigned int u = e < 0 ? 0u - (unsigned int)e : (unsigned int)e;

	return u < YAMUX_ERRORS ? error_names[u] : "unknown yamux error";
}

struct yamux_config yamux_config_default(bool is_client)
{
	return (struct yamux_config){
		.is_client = is_client,
		.initial_window = YAMUX_PROTOCOL_WINDOW,
		.max_window = 16u * 1024 * 1024,
		.max_streams = 1024,
		.max_pending_opens = 256,	/* hashicorp's AcceptBacklog */
		.keepalive_ms = 20 * 1000,
		/* The answer may wait behind a full output queue and TCP
		 * buffers on a slow link: be generous. */
		.keepalive_timeout_ms = 30 * 1000,
		/* A live peer answers an open within a round trip; TCP
		 * retransmits two losses of it in a row within 6 s on a
		 * 1 s path. */
		.answer_timeout_ms = 6 * 1000,
		.max_output = 256 * 1024,
	};
}
