/*
 * Tunnel protocol v1, the part both ends share: the Noise_IKpsk2 handshake
 * with its hellos, the length-prefixed framing of every Noise message, the
 * transport ciphers, and the per-stream open request and status byte.
 * docs/PROTOCOL.md is the byte-exact description.
 *
 * Sans-I/O: bytes and the time in, bytes out. Functions that produce bytes
 * for the wire write the whole frame (length prefix included); functions
 * that consume a message take its body as tunnel_read() yields it.
 *
 *   client                                  server
 *   tunnel_client_init
 *   tunnel_client_start   ── message 1 ──►  tunnel_read (TUNNEL_EXPECT_MSG1)
 *                                           tunnel_server_read_hello
 *                                             → client key: allowed? ports?
 *                                             no: tunnel_handshake_free, close
 *   tunnel_read (TUNNEL_EXPECT_MSG2) ◄─ message 2 ── tunnel_server_accept
 *   tunnel_client_finish
 *   tunnel_seal / tunnel_read (TUNNEL_EXPECT_TRANSPORT) + tunnel_open, both ways
 */
#ifndef POSTERN_TUNNEL_H
#define POSTERN_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "noise.h"

#define TUNNEL_PROTOCOL "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
#define TUNNEL_PROLOGUE "postern/tunnel/1"
#define TUNNEL_VERSION 1

#define TUNNEL_LEN_PREFIX 2
#define TUNNEL_MAX_MSG 65535			/* a Noise message body */
#define TUNNEL_MAX_PLAIN (TUNNEL_MAX_MSG - TAG_LEN)	/* 65519 */
#define TUNNEL_OVERHEAD (TUNNEL_LEN_PREFIX + TAG_LEN)	/* per transport message */

#define TUNNEL_CLIENT_HELLO_LEN 4		/* what a v1 client sends */
#define TUNNEL_SERVER_HELLO_MIN 14		/* with no port */
/* e (32) ‖ enc s (32+16) ‖ enc hello (4+16) */
#define TUNNEL_MSG1_LEN (2 * KEY_LEN + TUNNEL_CLIENT_HELLO_LEN + 2 * TAG_LEN)
/* e (32) ‖ enc hello (14+2n+16) */
#define TUNNEL_MSG2_MIN (KEY_LEN + TUNNEL_SERVER_HELLO_MIN + TAG_LEN)
/* Neither side accepts a handshake message longer than this: it bounds what
 * an unauthenticated peer can make us buffer and decrypt. */
#define TUNNEL_HANDSHAKE_MAX 1024
#define TUNNEL_MAX_PORTS ((TUNNEL_HANDSHAKE_MAX - TUNNEL_MSG2_MIN) / 2)	/* 481 */
_Static_assert(TUNNEL_MAX_PORTS == 481, "config.h's CONFIG_MAX_EGRESS");

enum tunnel_error {
	TUNNEL_OK = 0,
	TUNNEL_AGAIN,		/* tunnel_read: no complete message yet */
	TUNNEL_E_FRAME,		/* length prefix out of range for this message */
	TUNNEL_E_HANDSHAKE,	/* handshake message did not authenticate */
	TUNNEL_E_HELLO,		/* authenticated hello, but malformed */
	TUNNEL_E_VERSION,	/* the peer speaks no version we do */
	TUNNEL_E_KEY,		/* our own or the configured peer key is unusable */
	TUNNEL_E_DECRYPT,	/* transport message did not authenticate: fatal */
	TUNNEL_E_NONCE,		/* nonces exhausted: fatal */
	TUNNEL_E_TOO_LONG,	/* plaintext over TUNNEL_MAX_PLAIN, or too many ports */
	TUNNEL_E_SPACE,		/* output buffer too small */
	TUNNEL_E_STATE,		/* out of order, or this handshake/session failed */
};

const char *tunnel_strerror(enum tunnel_error e);

/* Framing: accumulates stream bytes, split anywhere, into whole messages. */

enum tunnel_expect {
	TUNNEL_EXPECT_MSG1,		/* TUNNEL_MSG1_LEN .. TUNNEL_HANDSHAKE_MAX */
	TUNNEL_EXPECT_MSG2,		/* TUNNEL_MSG2_MIN .. TUNNEL_HANDSHAKE_MAX */
	TUNNEL_EXPECT_TRANSPORT,	/* TAG_LEN .. TUNNEL_MAX_MSG */
};

struct tunnel_reader {
	uint32_t min, max;	/* body lengths accepted */
	uint32_t have;		/* bytes of the current frame, prefix included */
	uint32_t len;		/* body length, once the prefix is complete */
	bool done;		/* a message was handed out: start a new one */
	bool failed;
	uint8_t prefix[TUNNEL_LEN_PREFIX];
	uint8_t buf[TUNNEL_MAX_MSG];
};

/* Start reading messages of one kind. Call again between two messages to
 * switch kinds: the bytes after message 2 are transport messages. */
void tunnel_reader_init(struct tunnel_reader *r, enum tunnel_expect what);

/*
 * Take bytes from *in (advancing *in and *in_len) up to the end of one
 * message and no further. TUNNEL_OK: *msg, *len is the body, valid until the
 * next call and, when it points into the input (a body that arrived whole is
 * not copied), as long as the input is. TUNNEL_AGAIN: the input is used up.
 * TUNNEL_E_FRAME: a length out of range; the reader stays failed.
 */
enum tunnel_error tunnel_read(struct tunnel_reader *r, const uint8_t **in,
			      size_t *in_len, const uint8_t **msg, size_t *len);

/* True between messages: an end of stream here is not a truncation. */
bool tunnel_reader_idle(const struct tunnel_reader *r);

/* Handshake. */

struct tunnel_handshake {
	struct noise_handshake noise;
	uint8_t client_version;		/* server: from the client hello */
};

/* What the server hello tells the client. */
struct tunnel_server_hello {
	uint8_t version;
	uint8_t flags;			/* 0 in v1; ignored */
	uint64_t server_time_ms;	/* server's clock, Unix ms */
	uint16_t n_ports;
	uint16_t ports[TUNNEL_MAX_PORTS];	/* ports this client may reach */
};

/* The keys of an established session. */
struct tunnel_transport {
	struct noise_cipher send, recv;
	uint8_t hash[HASH_LEN];		/* handshake hash, for channel binding */
	bool failed;
};

/* Client: set up the handshake with the server's public key. A test may
 * then fix the ephemeral with noise_handshake_set_ephemeral(&hs->noise, …). */
enum tunnel_error tunnel_client_init(struct tunnel_handshake *hs,
				     const struct noise_keypair *client,
				     const uint8_t server_pub[KEY_LEN],
				     const uint8_t psk[KEY_LEN]);

/* Client: write framed message 1 (out holds *out_len; at least
 * TUNNEL_LEN_PREFIX + TUNNEL_MSG1_LEN). */
enum tunnel_error tunnel_client_start(struct tunnel_handshake *hs,
				      uint8_t *out, size_t *out_len);

/* Client: read message 2. On success fills hello and t; on any outcome the
 * handshake is over and wiped. TUNNEL_E_HANDSHAKE here means the reply was
 * not made by a server holding server_pub and the PSK (or was altered). */
enum tunnel_error tunnel_client_finish(struct tunnel_handshake *hs,
				       const uint8_t *msg, size_t len,
				       struct tunnel_server_hello *hello,
				       struct tunnel_transport *t);

/*
 * Server: read message 1 and learn the client's static public key. This
 * authenticates the key only as far as IK's message 1 can: the PSK is not
 * checked until the client reads message 2, and message 1 can be replayed.
 * Act on nothing before the first transport message from the client has
 * opened. On failure the handshake is wiped; close without a word. ss, if
 * not NULL, gives the "ss" of listed clients (postern_host's dh_cache.h):
 * after a client's first, its messages 1 cost one X25519 fewer.
 */
enum tunnel_error tunnel_server_read_hello(struct tunnel_handshake *hs,
					   const struct noise_keypair *server,
					   const uint8_t psk[KEY_LEN],
					   const struct noise_ss_source *ss,
					   const uint8_t *msg, size_t len,
					   uint8_t client_pub[KEY_LEN]);

/* Server, the client allowed: write framed message 2 listing the ports the
 * client may reach (out holds *out_len; TUNNEL_LEN_PREFIX +
 * TUNNEL_HANDSHAKE_MAX always suffices) and fill t. The handshake is wiped
 * whatever the outcome. */
enum tunnel_error tunnel_server_accept(struct tunnel_handshake *hs,
				       const uint16_t *ports, size_t n_ports,
				       uint64_t server_time_ms,
				       uint8_t *out, size_t *out_len,
				       struct tunnel_transport *t);

/* Wipe a handshake that will not go on (the server refusing a client). */
void tunnel_handshake_free(struct tunnel_handshake *hs);

/* Transport. After any error but TUNNEL_E_TOO_LONG the session is failed:
 * every later call returns TUNNEL_E_STATE; close the connection. */

/* Write the framed message of n ≤ TUNNEL_MAX_PLAIN bytes: n +
 * TUNNEL_OVERHEAD bytes to out. plain may be out + TUNNEL_LEN_PREFIX. */
enum tunnel_error tunnel_seal(struct tunnel_transport *t,
			      const uint8_t *plain, size_t n, uint8_t *out);

/* Decrypt a body from tunnel_read into plain (len − TAG_LEN bytes; plain
 * may equal msg). A tampered, replayed, reordered or dropped message fails
 * with TUNNEL_E_DECRYPT. */
enum tunnel_error tunnel_open(struct tunnel_transport *t,
			      const uint8_t *msg, size_t len,
			      uint8_t *plain, size_t *plain_len);

/* Close the ciphers' libgcrypt handles and wipe the keys. Every transport
 * filled by a handshake needs it once, failed or not; one wiped already
 * (moved into a session) is a no-op. */
void tunnel_transport_free(struct tunnel_transport *t);

/* dst: the same keys and nonces as src, with cipher handles of its own, so
 * that each copy can be freed (a test's or a fuzzer's peer). A plain
 * struct copy shares src's handles. False when out of memory. */
bool tunnel_transport_copy(struct tunnel_transport *dst,
			   const struct tunnel_transport *src);

/* Streams: each yamux stream starts with the client's request; the server
 * answers with one status byte. */

#define TUNNEL_REQUEST_LEN 3
#define TUNNEL_CMD_CONNECT 0x01

enum tunnel_status {
	TUNNEL_STATUS_OK = 0x00,
	TUNNEL_STATUS_NOT_ALLOWED = 0x01,
	TUNNEL_STATUS_REFUSED = 0x02,
	TUNNEL_STATUS_UNREACHABLE = 0x03,
	TUNNEL_STATUS_INTERNAL = 0xff,
};

/* cmd 0x01 (connect) ‖ port u16 BE. */
void tunnel_request_encode(uint8_t out[TUNNEL_REQUEST_LEN], uint16_t port);
/* False for a command other than connect. */
bool tunnel_request_decode(const uint8_t in[TUNNEL_REQUEST_LEN], uint16_t *port);

/* The status for a failed connect(2) to the egress port. */
enum tunnel_status tunnel_status_from_errno(int err);

/* What the CLI prints: "port not allowed", …; any byte, known or not. */
const char *tunnel_status_str(uint8_t status);

#endif
