/*
 * Noise Protocol Framework, revision 34, for the suite 25519_ChaChaPoly_BLAKE2s.
 *
 * One HandshakeState drives any handshake pattern of the spec's tables
 * (fundamental, one-way and deferred, with pskN modifiers): it is told the
 * full protocol name and looks the pattern up in noise_patterns.c. Bytes in,
 * bytes out: nothing here touches a socket or a clock.
 */
#ifndef POSTERN_NOISE_H
#define POSTERN_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define NOISE_MAX_MSG 65535
#define NOISE_MAX_MESSAGES 4	/* the longest patterns (X1K1, X1X1) */
#define NOISE_MAX_TOKENS 8

enum noise_error {
	NOISE_OK = 0,
	NOISE_E_PROTOCOL,	/* unknown protocol name */
	NOISE_E_KEYS,		/* a key the pattern needs was not given */
	NOISE_E_STATE,		/* not this side's turn, or handshake over */
	NOISE_E_SHORT,		/* message shorter than its tokens */
	NOISE_E_SPACE,		/* output buffer too small */
	NOISE_E_DECRYPT,	/* authentication tag did not verify */
	NOISE_E_DH,		/* DH result all zero (low-order point) */
	NOISE_E_NONCE,		/* nonce exhausted */
};

enum noise_role { NOISE_INITIATOR, NOISE_RESPONDER };

enum noise_token {
	TOK_END = 0, TOK_E, TOK_S, TOK_EE, TOK_ES, TOK_SE, TOK_SS, TOK_PSK,
};

/* A handshake pattern, tokens already parsed and psk modifiers applied. */
struct noise_pattern {
	uint8_t pre_i[3], pre_r[3];	/* pre-message tokens (e, s) */
	uint8_t msg[NOISE_MAX_MESSAGES][NOISE_MAX_TOKENS];
	uint8_t n_msgs;
	bool one_way;
	bool has_psk;
};

/* A static key pair; the public half is computed once, not per handshake. */
struct noise_keypair {
	uint8_t priv[KEY_LEN];
	uint8_t pub[KEY_LEN];
};

/* Fill kp from a private key; false if it is unusable. */
bool noise_keypair_init(struct noise_keypair *kp, const uint8_t priv[KEY_LEN]);

struct noise_cipher {
	uint8_t k[KEY_LEN];
	uint64_t n;
	bool has_key;
	/* Transport CipherStates (from split) keep k in a libgcrypt handle
	 * for their life; a handshake's, whose keys each seal a message or
	 * two, open one per message (hd NULL). Either way, the same bytes. */
	struct aead_key aead;
};

struct noise_symmetric {
	struct noise_cipher cs;
	uint8_t ck[HASH_LEN];
	uint8_t h[HASH_LEN];
};

/*
 * A source of DH results computed before: given this side's static public
 * key and the peer's, fill ss with DH(s, rs) and return true, or return
 * false to have the handshake compute it. Consulted for the "ss" token
 * only, whose inputs are both static keys: a responder that knows its
 * peers' keys computes each peer's once, not per handshake. Every other
 * token involves an ephemeral key and is computed each time.
 */
typedef bool noise_ss_lookup(void *ctx, const uint8_t s_pub[KEY_LEN],
			     const uint8_t rs[KEY_LEN], uint8_t ss[KEY_LEN]);

/* A lookup and its context, as the protocol cores take it from a host
 * that keeps such results (daemon/: dh_cache.h). */
struct noise_ss_source {
	noise_ss_lookup *fn;
	void *ctx;
};

struct noise_handshake {
	struct noise_pattern pattern;
	struct noise_symmetric ss;
	enum noise_role role;
	uint8_t s_priv[KEY_LEN], s_pub[KEY_LEN];
	uint8_t e_priv[KEY_LEN], e_pub[KEY_LEN];
	uint8_t rs[KEY_LEN], re[KEY_LEN];
	uint8_t psk[KEY_LEN];
	bool has_s, has_e, has_rs, has_re, has_psk, fixed_e;
	uint8_t next;		/* index of the next message */
	bool failed;
	noise_ss_lookup *ss_lookup;	/* or NULL: compute "ss" */
	void *ss_ctx;
};

/* Find and parse a pattern by its protocol name section ("IKpsk2"). */
bool noise_pattern_lookup(struct noise_pattern *p, const char *name);

/*
 * Start a handshake. protocol_name is the full name, e.g.
 * "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s". s is this side's static key
 * pair, rs the peer's static public key, psk the pre-shared key; each may be
 * NULL when the pattern does not use it.
 */
enum noise_error noise_handshake_init(struct noise_handshake *hs,
				      const char *protocol_name,
				      enum noise_role role,
				      const void *prologue, size_t prologue_len,
				      const struct noise_keypair *s,
				      const uint8_t *rs, const uint8_t *psk);

/* Use this ephemeral private key instead of a fresh one (test vectors). */
void noise_handshake_set_ephemeral(struct noise_handshake *hs,
				   const uint8_t e_priv[KEY_LEN]);

/* Look the "ss" DH up through fn(ctx, …) before computing it. The result
 * must be DH(s, rs) exactly: the messages and keys are those of the same
 * handshake without it. */
void noise_handshake_set_ss_lookup(struct noise_handshake *hs,
				   noise_ss_lookup *fn, void *ctx);

/* Write the next handshake message into out (capacity *out_len). */
enum noise_error noise_handshake_write(struct noise_handshake *hs,
				       uint8_t *out, size_t *out_len,
				       const uint8_t *payload, size_t len);

/* Read the next handshake message; the payload goes to out (capacity
 * *out_len). Any error leaves the handshake unusable. */
enum noise_error noise_handshake_read(struct noise_handshake *hs,
				      uint8_t *out, size_t *out_len,
				      const uint8_t *msg, size_t len);

/* True when this side sends the next message. */
bool noise_handshake_my_turn(const struct noise_handshake *hs);
bool noise_handshake_done(const struct noise_handshake *hs);

/* After the last message: the transport CipherStates for this side, and the
 * handshake hash for channel binding. Wipes the handshake. Each CipherState
 * holds a libgcrypt handle: noise_cipher_free it. A copy of a CipherState
 * shares the handle: free one of them only. */
enum noise_error noise_handshake_split(struct noise_handshake *hs,
				       struct noise_cipher *send,
				       struct noise_cipher *recv,
				       uint8_t hash[HASH_LEN]);

/* Wipe every secret in the handshake. */
void noise_handshake_wipe(struct noise_handshake *hs);

/* Transport messages. Encrypt writes len + TAG_LEN bytes; decrypt writes
 * len − TAG_LEN and advances the nonce only when the tag verifies. */
enum noise_error noise_encrypt(struct noise_cipher *cs, uint8_t *out,
			       const void *ad, size_t ad_len,
			       const uint8_t *in, size_t len);
enum noise_error noise_decrypt(struct noise_cipher *cs, uint8_t *out,
			       const void *ad, size_t ad_len,
			       const uint8_t *in, size_t len);
void noise_rekey(struct noise_cipher *cs);
/* Close the handle of a CipherState from split and wipe it; a CipherState
 * zeroed or freed already is a no-op. */
void noise_cipher_free(struct noise_cipher *cs);
/* dst: src's key and nonce, with a handle of its own (a test's or a
 * fuzzer's second copy of a peer); false when out of memory. */
bool noise_cipher_copy(struct noise_cipher *dst, const struct noise_cipher *src);

const char *noise_strerror(enum noise_error e);

#endif
