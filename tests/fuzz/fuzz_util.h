/*
 * Set-up shared by the fuzz targets and make_corpus: fixed keys (so that
 * the seeds make_corpus writes stay valid for the targets), a reader of the
 * fuzzer's bytes, the tunnel handshake up to each of its steps, and the
 * knock side's allowlist and builders. Links with postern_proto only.
 */
#ifndef POSTERN_FUZZ_UTIL_H
#define POSTERN_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "knock.h"
#include "tunnel.h"

/* An invariant: a crash the fuzzer reports, in every build. */
#define check(x) do { if (!(x)) __builtin_trap(); } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Admin keys. MALLORY is a well-formed key missing from every allowlist. */
enum fuzz_client { ALICE, BOB, CAROL, MALLORY, FUZZ_CLIENTS };

struct fuzz_keys {
	struct noise_keypair server;	/* the server under test */
	struct noise_keypair other;	/* another server of the fleet */
	struct noise_keypair client[FUZZ_CLIENTS];
	uint8_t psk[KEY_LEN];		/* the fleet's */
	uint8_t wrong_psk[KEY_LEN];	/* another fleet's */
	uint8_t e_client[KEY_LEN], e_server[KEY_LEN];	/* fixed ephemerals */
};

extern struct fuzz_keys fk;

/* libgcrypt and the keys; once per process. */
void fuzz_init(void);

/* The fuzzer's bytes, read front to back; zeros once they run out. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

uint8_t fz_u8(struct fuzz_in *in);
uint16_t fz_u16(struct fuzz_in *in);	/* big-endian */
/* Up to want bytes: *p points at them, the count is returned. */
size_t fz_take(struct fuzz_in *in, size_t want, const uint8_t **p);

/* Tunnel */

#define FUZZ_FRAME_MAX (TUNNEL_LEN_PREFIX + TUNNEL_HANDSHAKE_MAX)

/* The ports a server of the targets lets every client reach. */
#define FUZZ_N_EGRESS 2
extern const uint16_t fuzz_egress[FUZZ_N_EGRESS];
#define FUZZ_SERVER_TIME_MS 1750000000000ull

/* One handshake of ALICE with the server, both ephemerals fixed, kept at
 * each step: a target starts from a copy of the step it fuzzes. */
struct fuzz_tunnel {
	struct tunnel_handshake client;	/* message 1 written */
	struct tunnel_handshake server;	/* message 1 read */
	uint8_t msg1[FUZZ_FRAME_MAX], msg2[FUZZ_FRAME_MAX];	/* framed */
	size_t msg1_len, msg2_len;
	struct tunnel_transport client_t, server_t;	/* after message 2 */
};

void fuzz_tunnel_init(struct fuzz_tunnel *t);

/* Feed a byte stream to a reader in pieces of 1 + cut bytes (cut 255: all
 * at once), as reads from a socket would come; each whole message goes to
 * fn, until fn returns false or the reader fails. Checks the reader's own
 * invariants. Returns the reader's last result. */
typedef bool (*fuzz_msg_fn)(void *ctx, const uint8_t *msg, size_t len);
enum tunnel_error fuzz_feed(struct tunnel_reader *r, const uint8_t *data,
			    size_t size, uint8_t cut, fuzz_msg_fn fn, void *ctx);

/* Knock */

#define FUZZ_NOW_MS 1750000000000ull	/* the knock targets' "now" */
#define FUZZ_BOB_EXPIRES (FUZZ_NOW_MS / 1000 + 600)	/* unix seconds */

/* A server allowlist: ALICE opens 22 and 8443, BOB 8443 until
 * FUZZ_BOB_EXPIRES, CAROL 22 but expired long ago; MALLORY is not in it.
 * clients[i] is enum fuzz_client i. window 30 s, open_seconds 30, max 300,
 * allow_target off: a target may change the knock section. */
extern struct server_config fuzz_knock_cfg;

/* Write the mac1 of the first KNOCK_MAC_OFFSET bytes of pkt for a server
 * (its public key and the fleet PSK). */
void fuzz_knock_mac1(uint8_t pkt[KNOCK_LEN], const uint8_t server_pub[KEY_LEN],
		     const uint8_t psk[KEY_LEN]);

/* A knock with any 32-byte payload, reserved bytes included, and the
 * ephemeral e_priv (NULL: a random one), as knock_build() makes it. */
bool fuzz_knock_build(uint8_t out[KNOCK_LEN], const struct noise_keypair *client,
		      const uint8_t server_pub[KEY_LEN], const uint8_t psk[KEY_LEN],
		      const uint8_t payload[KNOCK_PAYLOAD_LEN],
		      const uint8_t *e_priv);

/* Input layouts that make_corpus writes too (see each target's top). */

/* fuzz_knock_policy: who sends a knock, low 3 bits of a record. */
enum knock_sender {
	S_ALICE, S_BOB, S_CAROL, S_MALLORY,
	S_WRONG_PSK,		/* ALICE, with another fleet's PSK */
	S_OTHER_SERVER,		/* ALICE, for another server */
	S_RESEND,		/* an earlier packet again, byte for byte */
	S_RELOAD,		/* not a knock: SIGHUP, another allowlist */
};

/* fuzz_transport_yamux: its mode bits, and its ops (low 3 bits). */
#define TM_CLIENT 0x01		/* the session is the client's */
#define TM_LAZY 0x02		/* the application consumes when told */
#define TM_REFUSE 0x04		/* it refuses every third open */
#define TM_RAW 0x08		/* the rest is the TCP stream as is */
enum transport_op { OP_SEAL, OP_REPEAT, OP_RAW, OP_TIME, OP_DRAIN,
		    OP_CONSUME, OP_APP, OP_GOAWAY };

#endif
