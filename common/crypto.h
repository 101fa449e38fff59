/* Primitives of Noise_*_25519_ChaChaPoly_BLAKE2s, on libgcrypt. */
#ifndef POSTERN_CRYPTO_H
#define POSTERN_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEY_LEN 32	/* X25519 keys, symmetric keys, PSKs */
#define HASH_LEN 32	/* BLAKE2s-256 */
#define HASH_BLOCK_LEN 64
#define TAG_LEN 16	/* Poly1305 */

/* Initialise libgcrypt once per process; false if its version is too old. */
bool crypto_init(void);

/* Fill buf with bytes from the kernel's CSPRNG; false on failure. */
bool random_bytes(void *buf, size_t len);

/* Zero memory in a way the compiler may not remove. */
void wipe(void *buf, size_t len);

/* Compare in time that depends only on len; true when equal. */
bool equal_ct(const void *a, const void *b, size_t len);

/* True when all len bytes are zero, in constant time. */
bool is_zero_ct(const void *buf, size_t len);

void x25519_clamp(uint8_t priv[KEY_LEN]);
/* pub = priv·9. */
bool x25519_public(uint8_t pub[KEY_LEN], const uint8_t priv[KEY_LEN]);
/* out = priv·pub; false when the result is all zero (a low-order point). */
bool x25519(uint8_t out[KEY_LEN], const uint8_t priv[KEY_LEN],
	    const uint8_t pub[KEY_LEN]);

/* BLAKE2s-256 of a ‖ b (b may be NULL). */
void blake2s(uint8_t out[HASH_LEN], const void *a, size_t alen,
	     const void *b, size_t blen);
/* BLAKE2s with a 16-byte output in keyed mode (RFC 7693). */
void blake2s_128_keyed(uint8_t out[16], const uint8_t key[HASH_LEN],
		       const void *msg, size_t len);
/* The same MAC with its libgcrypt handle kept between calls: posternd
 * checks one per queued packet, and opening a handle costs more than the
 * hash. Not for concurrent use. */
struct keyed_blake2s {
	void *hd;
	uint8_t key[HASH_LEN];
};
bool keyed_blake2s_init(struct keyed_blake2s *m, const uint8_t key[HASH_LEN]);
void keyed_blake2s_128(struct keyed_blake2s *m, uint8_t out[16],
		       const void *msg, size_t len);
void keyed_blake2s_free(struct keyed_blake2s *m);
/* HMAC-BLAKE2s-256 of a ‖ b (RFC 2104). */
void hmac_blake2s(uint8_t out[HASH_LEN], const uint8_t key[HASH_LEN],
		  const void *a, size_t alen, const void *b, size_t blen);
/* Noise's HKDF with HMAC-BLAKE2s: num_outputs is 2 or 3, out3 may be NULL. */
void hkdf_blake2s(uint8_t out1[HASH_LEN], uint8_t out2[HASH_LEN],
		  uint8_t out3[HASH_LEN], const uint8_t ck[HASH_LEN],
		  const uint8_t *ikm, size_t ikm_len);

/* ChaCha20-Poly1305 (RFC 8439) with Noise's nonce: 4 zero bytes ‖ n LE.
 * Encrypt writes len + TAG_LEN bytes. Decrypt takes len ≥ TAG_LEN and writes
 * len − TAG_LEN bytes; on a bad tag it returns false and out is zeroed. out
 * may equal in. */
bool aead_encrypt(uint8_t *out, const uint8_t key[KEY_LEN], uint64_t n,
		  const void *ad, size_t ad_len, const uint8_t *in, size_t len);
bool aead_decrypt(uint8_t *out, const uint8_t key[KEY_LEN], uint64_t n,
		  const void *ad, size_t ad_len, const uint8_t *in, size_t len);

/*
 * The same AEAD with its key kept in one libgcrypt handle: a transport
 * CipherState seals every message of a session with one key, and opening
 * and keying a handle per message cost more than a short message. Each
 * message sets its nonce, which restarts the handle's state. Not for
 * concurrent use.
 */
struct aead_key {
	void *hd;
};
/* False when libgcrypt cannot open a handle (out of memory). */
bool aead_key_init(struct aead_key *a, const uint8_t key[KEY_LEN]);
/* Replace the key (rekey). */
bool aead_key_set(struct aead_key *a, const uint8_t key[KEY_LEN]);
bool aead_key_encrypt(struct aead_key *a, uint8_t *out, uint64_t n,
		      const void *ad, size_t ad_len, const uint8_t *in, size_t len);
bool aead_key_decrypt(struct aead_key *a, uint8_t *out, uint64_t n,
		      const void *ad, size_t ad_len, const uint8_t *in, size_t len);
/* Close the handle; libgcrypt wipes the key schedule it held. */
void aead_key_free(struct aead_key *a);

#endif
