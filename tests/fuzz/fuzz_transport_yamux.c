/*
 * An established tunnel, fed by a peer that holds the session keys: after
 * a real handshake, the peer's byte stream goes into session_input(), that
 * is the framing, the transport AEAD and yamux behind it: frames, window
 * updates, pings, go-away, stream opens, and each stream's 3-byte open
 * request (server) or status byte (client). The fuzzer writes the peer's
 * plaintext and the target seals it with the peer's real keys, so yamux is
 * reached past the AEAD; raw bytes may be slipped into the stream too.
 *
 * Input: mode u8 ‖ ops. mode: bit 0, the session is the client's (the peer
 * is the server); bit 1, the application consumes only when told; bit 2,
 * refuse every third open; bit 3, raw: the rest is the TCP stream as is.
 * Each op is a byte, its low 3 bits what, its high 5 bits arg:
 *   0 SEAL     len u16, len bytes: one message, fed in pieces of arg³ bytes
 *              (arg 0: whole)
 *   1 REPEAT   count u8, len u16, plen u8, plen bytes: count + 1 messages
 *              of len bytes, the pattern over and over ('x' when empty):
 *              windows filled, or floods of frames, that the input is too
 *              short to spell out
 *   2 RAW      len u8, len bytes, unsealed into the stream
 *   3 TIME     arg seconds pass; the keepalive ticks
 *   4 DRAIN    up to (arg + 1) × 4 KiB of what the session sends, which
 *              the peer opens and reads as yamux frames
 *   5 CONSUME  stream u8: the application is done with (arg + 1) × 4 KiB
 *   6 APP      stream u8: by arg mod 4, close it, reset it, write up to
 *              (arg + 1) × 4 KiB to it, or open one
 *   7 GOAWAY   the session goes away
 *
 * Invariants: while only sealed messages go in, the session never fails on
 * framing or decryption; once raw bytes went in, nothing more reaches
 * yamux; an error is sticky; every message the session sends opens at the
 * peer and holds well-formed yamux frames; no stream receives more than
 * its 256 KiB window plus the credit the session sent for it; the output
 * queue stays within its bound; every stream opened is closed once.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "session.h"

#define OUTPUT_RESERVE (128u * 1024)	/* as in yamux.c */
#define MAX_STREAMS 32
#define MAX_SEALED (2u << 20)		/* bytes sealed per input */


struct stream {
	uint32_t id;
	uint64_t delivered, credit;	/* since it opened */
	uint8_t preamble[TUNNEL_REQUEST_LEN];
	size_t pre_len, pre_want;	/* request (server) or status (client) */
};

static struct state {
	struct session *s;
	uint8_t mode;
	uint64_t now;
	struct stream streams[MAX_STREAMS];
	size_t n_streams;
	unsigned long events;		/* from the peer's frames */
	unsigned long opened, closed;
	bool tampered;
	enum session_error error;
	size_t sealed;
	struct tunnel_transport peer;	/* the other end's keys */
	/* the peer reading the session's output */
	struct tunnel_reader reader;
	uint8_t hdr[YAMUX_HEADER_LEN];
	size_t have;
	uint32_t skip;
} st;

static struct fuzz_tunnel ft;
static uint8_t wire[TUNNEL_LEN_PREFIX + TUNNEL_MAX_MSG];
static uint8_t filler[TUNNEL_MAX_PLAIN];	/* a pattern, repeated */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_tunnel_init(&ft);
	return 0;
}

static struct stream *find(uint32_t id)
{
	for (size_t i = 0; i < st.n_streams; i++)
		if (st.streams[i].id == id)
			return &st.streams[i];
	return NULL;
}

static struct stream *track(uint32_t id, bool ours)
{
	struct stream *x = &st.streams[st.n_streams++];

	*x = (struct stream){ .id = id };
	/* The server reads a request first, the client a status byte. */
	x->pre_want = st.mode & TM_CLIENT ? (ours ? 1 : 0) : TUNNEL_REQUEST_LEN;
	st.opened++;
	return x;
}

/* The application: postern-tunneld's or the client's view of a stream. */

static bool on_open(void *user, uint32_t id)
{
	(void)user;
	st.events++;
	if (st.n_streams == MAX_STREAMS || (st.mode & TM_REFUSE && id % 3 == 0))
		return false;
	track(id, false);
	return true;
}

static void preamble(struct stream *x, const uint8_t *p, size_t n)
{
	uint16_t port;
	uint8_t status;

	n = n < x->pre_want - x->pre_len ? n : x->pre_want - x->pre_len;
	memcpy(x->preamble + x->pre_len, p, n);
	x->pre_len += n;
	if (x->pre_len < x->pre_want)
		return;
	x->pre_want = 0;
	if (st.mode & TM_CLIENT) {		/* the status byte */
		check(tunnel_status_str(x->preamble[0]) != NULL);
		if (x->preamble[0] != TUNNEL_STATUS_OK)
			yamux_reset(st.s->mux, x->id);
		return;
	}
	status = TUNNEL_STATUS_INTERNAL;
	if (tunnel_request_decode(x->preamble, &port))
		status = port == fuzz_egress[0] || port == fuzz_egress[1] ?
			 TUNNEL_STATUS_OK : TUNNEL_STATUS_NOT_ALLOWED;
	yamux_write(st.s->mux, x->id, &status, 1);
	if (status != TUNNEL_STATUS_OK)
		yamux_close(st.s->mux, x->id);
}

static void on_data(void *user, uint32_t id, const uint8_t *p, size_t n)
{
	struct stream *x = find(id);

	(void)user;
	st.events++;
	check(x != NULL);
	x->delivered += n;
	if (!(st.mode & TM_LAZY))
		yamux_consumed(st.s->mux, id, n, st.now);
	if (x->pre_want)
		preamble(x, p, n);
}

static void on_event(void *user, uint32_t id)
{
	(void)user;
	(void)id;
	st.events++;
}

static void on_writable(void *user, uint32_t id)
{
	(void)user;
	check(find(id) != NULL);	/* only a stream that wrote blocks */
}

static void on_closed(void *user, uint32_t id, void *stream_user)
{
	struct stream *x = find(id);

	(void)user;
	(void)stream_user;
	check(x != NULL);
	*x = st.streams[--st.n_streams];
	st.closed++;
}

static const struct yamux_events events = {
	.on_open = on_open,
	.on_established = on_event,
	.on_data = on_data,
	.on_fin = on_event,
	.on_reset = on_event,
	.on_goaway = on_event,
	.on_writable = on_writable,
	.on_closed = on_closed,
};

/* Into the session, in pieces. */
static void input(const uint8_t *p, size_t n, size_t piece)
{
	unsigned long before = st.events;

	if (piece == 0)
		piece = n;
	while (n > 0) {
		size_t k = n < piece ? n : piece;
		enum session_error e = session_input(st.s, p, k, st.now);

		if (st.error != SESSION_OK)
			check(e == st.error);	/* sticky */
		st.error = e;
		p += k;
		n -= k;
	}
	if (st.tampered)
		check(st.events == before);
	else
		check(st.error == SESSION_OK || st.error == SESSION_E_YAMUX);
	check(yamux_output_pending(st.s->mux) <=
	      yamux_config_default(st.mode & TM_CLIENT).max_output + OUTPUT_RESERVE);
}

static void seal(const uint8_t *p, size_t n, size_t piece)
{
	if (n > TUNNEL_MAX_PLAIN)
		n = TUNNEL_MAX_PLAIN;
	if (st.sealed + n > MAX_SEALED)
		return;
	st.sealed += n;
	check(tunnel_seal(&st.peer, p, n, wire) == TUNNEL_OK);
	input(wire, n + TUNNEL_OVERHEAD, piece);
}

static void repeat(struct fuzz_in *in)
{
	unsigned int count = fz_u8(in) + 1u;
	size_t len = fz_u16(in), plen;
	const uint8_t *p;

	plen = fz_take(in, fz_u8(in), &p);
	if (len > sizeof(filler))
		len = sizeof(filler);
	for (size_t i = 0; i < len; i++)
		filler[i] = plen ? p[i % plen] : 'x';
	while (count-- > 0)
		seal(filler, len, 0);
}

/* The peer reads the session's yamux frames: they must be well formed,
 * and the window updates are the credit each stream was given. */
static void peer_frames(const uint8_t *p, size_t n)
{
	struct yamux_header h;
	struct stream *x;

	while (n > 0) {
		if (st.skip > 0) {
			size_t k = n < st.skip ? n : st.skip;

			st.skip -= (uint32_t)k;
			p += k;
			n -= k;
			continue;
		}
		st.hdr[st.have++] = *p++;
		n--;
		if (st.have < YAMUX_HEADER_LEN)
			continue;
		st.have = 0;
		yamux_header_decode(&h, st.hdr);
		check(h.version == YAMUX_VERSION && h.type <= YAMUX_GO_AWAY);
		if (h.type == YAMUX_DATA)
			st.skip = h.length;
		else if (h.type == YAMUX_WINDOW_UPDATE && (x = find(h.stream_id)))
			x->credit += h.length;
	}
}

static bool peer_reads(void *ctx, const uint8_t *msg, size_t len)
{
	static uint8_t plain[TUNNEL_MAX_MSG];
	size_t n;

	(void)ctx;
	check(tunnel_open(&st.peer, msg, len, plain, &n) == TUNNEL_OK);
	peer_frames(plain, n);
	return true;
}

static void drain(size_t cap)
{
	static uint8_t out[256 * 1024];
	size_t n;

	if (cap > sizeof(out))
		cap = sizeof(out);
	n = session_output(st.s, out, cap);
	check(fuzz_feed(&st.reader, out, n, 255, peer_reads, NULL) == TUNNEL_AGAIN);
	check(tunnel_reader_idle(&st.reader));	/* whole messages only */
	if (yamux_output_pending(st.s->mux) > 0)
		return;
	/* All credit is known now: no stream took more than it was given. */
	for (size_t i = 0; i < st.n_streams; i++)
		check(st.streams[i].delivered <=
		      YAMUX_PROTOCOL_WINDOW + st.streams[i].credit);
}

static uint32_t stream_id(struct fuzz_in *in)
{
	uint8_t i = fz_u8(in);

	return st.n_streams ? st.streams[i % st.n_streams].id : i;
}

static void app(uint8_t what, uint32_t id)
{
	static const uint8_t bytes[32 * 4096];
	uint8_t req[TUNNEL_REQUEST_LEN];

	switch (what % 4) {
	case 0:
		yamux_close(st.s->mux, id);
		break;
	case 1:
		yamux_reset(st.s->mux, id);
		break;
	case 2:
		yamux_write(st.s->mux, id, bytes, ((size_t)what + 1) * 4096);
		break;
	case 3:
		if (st.n_streams == MAX_STREAMS || !(id = yamux_open(st.s->mux)))
			break;
		track(id, true);
		if (st.mode & TM_CLIENT) {		/* the client asks for a port */
			tunnel_request_encode(req, fuzz_egress[what / 4 % 2]);
			yamux_write(st.s->mux, id, req, sizeof(req));
		}
		break;
	}
}

static void run(struct fuzz_in *in)
{
	const uint8_t *p;
	size_t n;

	while (in->n > 0) {
		uint8_t op = fz_u8(in), arg = op >> 3;

		switch (op & 7) {
		case OP_SEAL:
			n = fz_take(in, fz_u16(in), &p);
			seal(p, n, (size_t)arg * arg * arg);
			break;
		case OP_REPEAT:
			repeat(in);
			break;
		case OP_RAW:
			n = fz_take(in, fz_u8(in), &p);
			st.tampered |= n > 0;
			input(p, n, 0);
			break;
		case OP_TIME:
			st.now += arg * 1000u;
			yamux_tick(st.s->mux, st.now);
			break;
		case OP_DRAIN:
			drain(((size_t)arg + 1) * 4096);
			break;
		case OP_CONSUME:
			n = ((size_t)arg + 1) * 4096;
			yamux_consumed(st.s->mux, stream_id(in), n, st.now);
			break;
		case OP_APP:
			app(arg, stream_id(in));
			break;
		case OP_GOAWAY:
			yamux_goaway(st.s->mux, YAMUX_GOAWAY_NORMAL);
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct yamux_config cfg;
	struct tunnel_transport mine;

	if (size < 1)
		return 0;
	memset(&st, 0, sizeof(st));
	st.mode = fz_u8(&in);
	st.now = 1000;
	cfg = yamux_config_default(st.mode & TM_CLIENT);
	/* Copies with cipher handles of their own: the session frees its
	 * transport, and ft's serves every input. */
	check(tunnel_transport_copy(&mine, st.mode & TM_CLIENT ? &ft.client_t
							    : &ft.server_t));
	check(tunnel_transport_copy(&st.peer, st.mode & TM_CLIENT ? &ft.server_t
								 : &ft.client_t));
	tunnel_reader_init(&st.reader, TUNNEL_EXPECT_TRANSPORT);
	st.s = session_new(&mine, &cfg, &events, NULL);
	check(st.s != NULL);

	if (st.mode & TM_RAW) {
		st.tampered = in.n > 0;
		input(in.p, in.n, (size_t)(st.mode >> 4) + 1);
	} else {
		run(&in);
	}
	for (int i = 0; i < 8 && session_output_pending(st.s); i++)
		drain(SIZE_MAX);
	check(session_strerror(st.s) != NULL);
	session_free(st.s);
	tunnel_transport_free(&st.peer);
	check(st.opened == st.closed && st.n_streams == 0);
	return 0;
}
