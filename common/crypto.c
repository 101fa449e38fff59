/* Primitives of Noise_*_25519_ChaChaPoly_BLAKE2s, on libgcrypt. */
#include "crypto.h"

#include <gcrypt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <errno.h>

#define GCRYPT_MIN_VERSION "1.9.0"	/* gcry_ecc_mul_point */

bool crypto_init(void)
{
	if (gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P))
		return true;
	if (!gcry_check_version(GCRYPT_MIN_VERSION))
		return false;
	/* Long-lived keys live in postern's own secure memory (secmem.c,
	 * docs/DECISIONS.md); libgcrypt's secure heap would add a fixed-size
	 * pool and its warnings, but no MADV_DONTDUMP or MADV_WIPEONFORK. */
	gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
	gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
	return true;
}

bool random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		p += n;
		len -= (size_t)n;
	}
	return true;
}

void wipe(void *buf, size_t len)
{
	explicit_bzero(buf, len);
}

bool equal_ct(const void *a, const void *b, size_t len)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t acc = 0;

	for (size_t i = 0; i < len; i++)
		acc |= x[i] ^ y[i];
	return acc == 0;
}

bool is_zero_ct(const void *buf, size_t len)
{
	const volatile uint8_t *x = buf;
	uint8_t acc = 0;

	for (size_t i = 0; i < len; i++)
		acc |= x[i];
	return acc == 0;
}

void x25519_clamp(uint8_t priv[KEY_LEN])
{
	priv[0] &= 248;
	priv[31] = (priv[31] & 127) | 64;
}

bool x25519(uint8_t out[KEY_LEN], const uint8_t priv[KEY_LEN],
	    const uint8_t pub[KEY_LEN])
{
	/* libgcrypt clamps the scalar itself and, for a low-order point,
	 * returns an all-zero result without an error: Noise forbids using
	 * it, so it is an error here. */
	if (gcry_ecc_mul_point(GCRY_ECC_CURVE25519, out, priv, pub) != 0) {
		wipe(out, KEY_LEN);
		return false;
	}
	return !is_zero_ct(out, KEY_LEN);
}

bool x25519_public(uint8_t pub[KEY_LEN], const uint8_t priv[KEY_LEN])
{
	static const uint8_t base[KEY_LEN] = { 9 };

	return x25519(pub, priv, base);
}

void blake2s(uint8_t out[HASH_LEN], const void *a, size_t alen,
	     const void *b, size_t blen)
{
	gcry_buffer_t iov[2] = {
		{ .data = (void *)a, .len = alen },
		{ .data = (void *)b, .len = blen },
	};

	gcry_md_hash_buffers(GCRY_MD_BLAKE2S_256, 0, out, iov, b ? 2 : 1);
}

void blake2s_128_keyed(uint8_t out[16], const uint8_t key[HASH_LEN],
		       const void *msg, size_t len)
{
	gcry_md_hd_t md;

	/* Keyed BLAKE2s is not HMAC: the key goes into the parameter block. */
	if (gcry_md_open(&md, GCRY_MD_BLAKE2S_128, 0) != 0 ||
	    gcry_md_setkey(md, key, HASH_LEN) != 0)
		abort();
	gcry_md_write(md, msg, len);
	memcpy(out, gcry_md_read(md, 0), 16);
	gcry_md_close(md);
}

bool keyed_blake2s_init(struct keyed_blake2s *m, const uint8_t key[HASH_LEN])
{
	gcry_md_hd_t hd;

	if (gcry_md_open(&hd, GCRY_MD_BLAKE2S_128, 0) != 0)
		return false;
	m->hd = hd;
	memcpy(m->key, key, HASH_LEN);
	return true;
}

void keyed_blake2s_128(struct keyed_blake2s *m, uint8_t out[16],
		       const void *msg, size_t len)
{
	gcry_md_hd_t hd = m->hd;

	/* A reset forgets the key: BLAKE2 absorbs it as the first block. */
	gcry_md_reset(hd);
	if (gcry_md_setkey(hd, m->key, HASH_LEN) != 0)
		abort();
	gcry_md_write(hd, msg, len);
	memcpy(out, gcry_md_read(hd, 0), 16);
}

void keyed_blake2s_free(struct keyed_blake2s *m)
{
	if (m->hd)
		gcry_md_close(m->hd);
	wipe(m, sizeof(*m));
}

void hmac_blake2s(uint8_t out[HASH_LEN], const uint8_t key[HASH_LEN],
		  const void *a, size_t alen, const void *b, size_t blen)
{
	uint8_t pad[HASH_BLOCK_LEN], inner[HASH_LEN];
	gcry_buffer_t iov[3];
	size_t i;

	memset(pad, 0x36, sizeof(pad));
	for (i = 0; i < HASH_LEN; i++)
		pad[i] ^= key[i];
	iov[0] = (gcry_buffer_t){ .data = pad, .len = sizeof(pad) };
	iov[1] = (gcry_buffer_t){ .data = (void *)a, .len = alen };
	iov[2] = (gcry_buffer_t){ .data = (void *)b, .len = blen };
	gcry_md_hash_buffers(GCRY_MD_BLAKE2S_256, 0, inner, iov, b ? 3 : 2);

	for (i = 0; i < HASH_BLOCK_LEN; i++)
		pad[i] ^= 0x36 ^ 0x5c;
	blake2s(out, pad, sizeof(pad), inner, sizeof(inner));

	wipe(pad, sizeof(pad));
	wipe(inner, sizeof(inner));
}

void hkdf_blake2s(uint8_t out1[HASH_LEN], uint8_t out2[HASH_LEN],
		  uint8_t out3[HASH_LEN], const uint8_t ck[HASH_LEN],
		  const uint8_t *ikm, size_t ikm_len)
{
	uint8_t prk[HASH_LEN], t[HASH_LEN];
	const uint8_t one = 1, two = 2, three = 3;

	hmac_blake2s(prk, ck, ikm, ikm_len, NULL, 0);
	hmac_blake2s(t, prk, &one, 1, NULL, 0);
	memcpy(out1, t, HASH_LEN);
	hmac_blake2s(t, prk, t, HASH_LEN, &two, 1);
	memcpy(out2, t, HASH_LEN);
	if (out3) {
		hmac_blake2s(t, prk, t, HASH_LEN, &three, 1);
		memcpy(out3, t, HASH_LEN);
	}
	wipe(prk, sizeof(prk));
	wipe(t, sizeof(t));
}

static void noise_nonce(uint8_t nonce[12], uint64_t n)
{
	memset(nonce, 0, 4);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

/* One message through hd, keyed already: the nonce restarts its state. */
static bool seal(gcry_cipher_hd_t hd, uint8_t *out, uint64_t n,
		 const void *ad, size_t ad_len, const uint8_t *in, size_t len)
{
	uint8_t nonce[12];

	noise_nonce(nonce, n);
	return gcry_cipher_setiv(hd, nonce, sizeof(nonce)) == 0 &&
	       gcry_cipher_authenticate(hd, ad, ad_len) == 0 &&
	       gcry_cipher_final(hd) == 0 &&
	       gcry_cipher_encrypt(hd, out, len, in, len) == 0 &&
	       gcry_cipher_gettag(hd, out + len, TAG_LEN) == 0;
}

static bool unseal(gcry_cipher_hd_t hd, uint8_t *out, uint64_t n,
		   const void *ad, size_t ad_len, const uint8_t *in, size_t len)
{
	uint8_t nonce[12];
	size_t plen;
	bool ok;

	if (len < TAG_LEN)
		return false;
	plen = len - TAG_LEN;
	noise_nonce(nonce, n);
	ok = gcry_cipher_setiv(hd, nonce, sizeof(nonce)) == 0 &&
	     gcry_cipher_authenticate(hd, ad, ad_len) == 0 &&
	     gcry_cipher_final(hd) == 0 &&
	     gcry_cipher_decrypt(hd, out, plen, in, plen) == 0 &&
	     gcry_cipher_checktag(hd, in + plen, TAG_LEN) == 0;
	if (!ok)
		wipe(out, plen);
	return ok;
}

static gcry_cipher_hd_t aead_open(const uint8_t key[KEY_LEN])
{
	gcry_cipher_hd_t hd;

	if (gcry_cipher_open(&hd, GCRY_CIPHER_CHACHA20,
			     GCRY_CIPHER_MODE_POLY1305, 0) != 0)
		return NULL;
	if (gcry_cipher_setkey(hd, key, KEY_LEN) != 0) {
		gcry_cipher_close(hd);
		return NULL;
	}
	return hd;
}

/* The one-shot forms: handshake keys each seal one or two messages. */
bool aead_encrypt(uint8_t *out, const uint8_t key[KEY_LEN], uint64_t n,
		  const void *ad, size_t ad_len, const uint8_t *in, size_t len)
{
	gcry_cipher_hd_t hd = aead_open(key);
	bool ok;

	if (!hd)
		abort();
	ok = seal(hd, out, n, ad, ad_len, in, len);
	gcry_cipher_close(hd);
	return ok;
}

bool aead_decrypt(uint8_t *out, const uint8_t key[KEY_LEN], uint64_t n,
		  const void *ad, size_t ad_len, const uint8_t *in, size_t len)
{
	gcry_cipher_hd_t hd;
	bool ok;

	if (len < TAG_LEN)
		return false;
	if (!(hd = aead_open(key)))
		abort();
	ok = unseal(hd, out, n, ad, ad_len, in, len);
	gcry_cipher_close(hd);
	return ok;
}

bool aead_key_init(struct aead_key *a, const uint8_t key[KEY_LEN])
{
	a->hd = aead_open(key);
	return a->hd != NULL;
}

bool aead_key_set(struct aead_key *a, const uint8_t key[KEY_LEN])
{
	return gcry_cipher_setkey(a->hd, key, KEY_LEN) == 0;
}

bool aead_key_encrypt(struct aead_key *a, uint8_t *out, uint64_t n,
		      const void *ad, size_t ad_len, const uint8_t *in, size_t len)
{
	return seal(a->hd, out, n, ad, ad_len, in, len);
}

bool aead_key_decrypt(struct aead_key *a, uint8_t *out, uint64_t n,
		      const void *ad, size_t ad_len, const uint8_t *in, size_t len)
{
	return unseal(a->hd, out, n, ad, ad_len, in, len);
}

void aead_key_free(struct aead_key *a)
{
	if (a->hd)
		gcry_cipher_close(a->hd);
	a->hd = NULL;
}
