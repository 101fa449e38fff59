/*
 * mac1_bench: what posternd spends per packet before any public-key work,
 * in isolation (no kernel, no queue), and what a valid knock costs.
 *
 *   knock_check_outer   length, version, keyed BLAKE2s-128 mac1 (as shipped:
 *                       one libgcrypt md handle kept for the daemon's life,
 *                       reset and keyed per packet)
 *   alternatives for the same mac1, checked to give the same bytes:
 *     md_reuse_setkey   one handle for the daemon's life: reset, setkey,
 *                       write, read per packet
 *     md_copy_keyed     gcry_md_copy of a handle keyed once, then close
 *     blake2s_portable  a plain RFC 7693 BLAKE2s (keyed), no libgcrypt
 *     portable_keystate the same, starting from the state after the key
 *                       block, computed once per server key (3 of the 4
 *                       compressions)
 *   knock_open_uncached the Noise read of a valid knock, computing ss too
 *                       (two X25519)
 *   knock_open          the same with the client's ss from a dh_cache, as
 *                       posternd does (one X25519)
 *   x25519              one gcry_ecc_mul_point
 *
 * Prints ns per operation: the best of 5 rounds of about 0.1 s each.
 */
#include <gcrypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "crypto.h"
#include "dh_cache.h"
#include "knock.h"
#include "noise.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile unsigned sink;

/* The best of 5 rounds of about 0.1 s each: the least disturbed one. */
#define MEASURE(name, body)                                                   \
	do {                                                                  \
		double best_ = 1e30;                                          \
		unsigned long total_ = 0;                                     \
		for (int round_ = 0; round_ < 5; round_++) {                  \
			unsigned long n_ = 0;                                 \
			double t0_ = now_s(), t_;                             \
			do {                                                  \
				for (int i_ = 0; i_ < 16; i_++) {             \
					body;                                 \
				}                                             \
				n_ += 16;                                     \
				t_ = now_s() - t0_;                           \
			} while (t_ < 0.1);                                   \
			total_ += n_;                                         \
			if (t_ / (double)n_ < best_)                          \
				best_ = t_ / (double)n_;                      \
		}                                                             \
		printf("%-20s %10.0f ns/op  (best of 5 rounds, %lu ops)\n",  \
		       name, best_ * 1e9, total_);                            \
	} while (0)

/* --- RFC 7693 BLAKE2s, keyed, for comparison only --- */
static const uint32_t IV[8] = {
	0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
	0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
};
static const uint8_t SIGMA[10][16] = {
	{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
	{ 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
	{ 11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4 },
	{ 7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8 },
	{ 9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13 },
	{ 2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9 },
	{ 12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11 },
	{ 13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10 },
	{ 6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5 },
	{ 10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0 },
};

static uint32_t rotr(uint32_t x, int n)
{
	return x >> n | x << (32 - n);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void compress(uint32_t h[8], const uint8_t block[64], uint32_t t, bool last)
{
	uint32_t v[16], m[16];

	for (int i = 0; i < 16; i++)
		m[i] = le32(block + 4 * i);
	memcpy(v, h, 32);
	memcpy(v + 8, IV, 32);
	v[12] ^= t;
	if (last)
		v[14] = ~v[14];
#define G(a, b, c, d, x, y)                                                   \
	do {                                                                  \
		v[a] += v[b] + (x); v[d] = rotr(v[d] ^ v[a], 16);             \
		v[c] += v[d]; v[b] = rotr(v[b] ^ v[c], 12);                   \
		v[a] += v[b] + (y); v[d] = rotr(v[d] ^ v[a], 8);              \
		v[c] += v[d]; v[b] = rotr(v[b] ^ v[c], 7);                    \
	} while (0)
	for (int r = 0; r < 10; r++) {
		const uint8_t *s = SIGMA[r];

		G(0, 4, 8, 12, m[s[0]], m[s[1]]);
		G(1, 5, 9, 13, m[s[2]], m[s[3]]);
		G(2, 6, 10, 14, m[s[4]], m[s[5]]);
		G(3, 7, 11, 15, m[s[6]], m[s[7]]);
		G(0, 5, 10, 15, m[s[8]], m[s[9]]);
		G(1, 6, 11, 12, m[s[10]], m[s[11]]);
		G(2, 7, 8, 13, m[s[12]], m[s[13]]);
		G(3, 4, 9, 14, m[s[14]], m[s[15]]);
	}
#undef G
	for (int i = 0; i < 8; i++)
		h[i] ^= v[i] ^ v[i + 8];
}

/* The state after the key block: the same for every packet of a server. */
static void blake2s_128_key_state(uint32_t h[8], const uint8_t key[32])
{
	uint8_t block[64] = { 0 };

	memcpy(h, IV, 32);
	h[0] ^= 0x01010000u ^ (32u << 8) ^ 16u;
	memcpy(block, key, 32);
	compress(h, block, 64, false);
}

/* BLAKE2s-128 keyed, from the key state; message of 1..(any) bytes. */
static void blake2s_128_from_state(uint8_t out[16], const uint32_t key_state[8],
				   const uint8_t *msg, size_t len)
{
	uint32_t h[8];
	uint8_t block[64] = { 0 };
	uint32_t t = 64;

	memcpy(h, key_state, 32);
	while (len > 64) {
		t += 64;
		compress(h, msg, t, false);
		msg += 64;
		len -= 64;
	}
	memset(block, 0, sizeof(block));
	memcpy(block, msg, len);
	t += (uint32_t)len;
	compress(h, block, t, true);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++)
			out[4 * i + j] = (uint8_t)(h[i] >> (8 * j));
}

static void blake2s_128_portable(uint8_t out[16], const uint8_t key[32],
				 const uint8_t *msg, size_t len)
{
	uint32_t h[8];

	blake2s_128_key_state(h, key);
	blake2s_128_from_state(out, h, msg, len);
}

int main(void)
{
	struct noise_keypair server, client;
	uint8_t spriv[KEY_LEN], cpriv[KEY_LEN], psk[KEY_LEN], mac1_key[HASH_LEN];
	struct keyed_blake2s mctx;
	uint8_t good[KNOCK_LEN], garbage[KNOCK_LEN], want[16], got[16], cpub[KEY_LEN];
	uint8_t x[KEY_LEN];
	uint32_t key_state[8];
	struct knock_payload p = { .timestamp_ms = 1 }, out;
	struct client_entry ce = { .name = "c" };
	struct server_config cfg = { .clients = &ce, .n_clients = 1 };
	struct dh_cache *dh;
	gcry_md_hd_t reuse, proto;
	int bad = 0;

	if (!crypto_init())
		return 1;
	random_bytes(spriv, sizeof(spriv));
	random_bytes(cpriv, sizeof(cpriv));
	random_bytes(psk, sizeof(psk));
	random_bytes(garbage, sizeof(garbage));
	garbage[0] = KNOCK_VERSION;
	if (!noise_keypair_init(&server, spriv) || !noise_keypair_init(&client, cpriv) ||
	    !knock_build(good, &client, server.pub, psk, &p))
		return 1;
	memcpy(ce.public_key, client.pub, KEY_LEN);
	if (!(dh = dh_cache_new(&server, &cfg)))
		return fprintf(stderr, "mac1_bench: out of memory\n"), 1;
	knock_mac1_key(mac1_key, server.pub, psk);
	if (!keyed_blake2s_init(&mctx, mac1_key))
		return fprintf(stderr, "mac1_bench: libgcrypt\n"), 1;
	if (knock_check_outer(&mctx, good, KNOCK_LEN) != KNOCK_OK ||
	    knock_check_outer(&mctx, garbage, KNOCK_LEN) != KNOCK_BAD_MAC1 ||
	    knock_open(&server, psk, NULL, good, cpub, &out) != KNOCK_OK ||
	    knock_open(&server, psk, dh_cache_source(dh), good, cpub, &out) != KNOCK_OK)
		return fprintf(stderr, "mac1_bench: self-check failed\n"), 1;

	/* The alternatives must give the very bytes blake2s_128_keyed gives. */
	blake2s_128_keyed(want, mac1_key, garbage, KNOCK_MAC_OFFSET);
	if (gcry_md_open(&reuse, GCRY_MD_BLAKE2S_128, 0) ||
	    gcry_md_open(&proto, GCRY_MD_BLAKE2S_128, 0) ||
	    gcry_md_setkey(proto, mac1_key, HASH_LEN))
		return 1;
	gcry_md_reset(reuse);
	gcry_md_setkey(reuse, mac1_key, HASH_LEN);
	gcry_md_write(reuse, garbage, KNOCK_MAC_OFFSET);
	bad |= memcmp(want, gcry_md_read(reuse, 0), 16) != 0;
	{
		gcry_md_hd_t c;

		gcry_md_copy(&c, proto);
		gcry_md_write(c, garbage, KNOCK_MAC_OFFSET);
		bad |= memcmp(want, gcry_md_read(c, 0), 16) != 0;
		gcry_md_close(c);
	}
	blake2s_128_portable(got, mac1_key, garbage, KNOCK_MAC_OFFSET);
	bad |= memcmp(want, got, 16) != 0;
	blake2s_128_key_state(key_state, mac1_key);
	blake2s_128_from_state(got, key_state, garbage, KNOCK_MAC_OFFSET);
	bad |= memcmp(want, got, 16) != 0;
	if (bad)
		return fprintf(stderr, "mac1_bench: an alternative differs\n"), 1;

	printf("libgcrypt %s\n", gcry_check_version(NULL));
	MEASURE("knock_check_outer", sink += knock_check_outer(&mctx, garbage, KNOCK_LEN));
	MEASURE("  (valid knock)", sink += knock_check_outer(&mctx, good, KNOCK_LEN));
	MEASURE("md_reuse_setkey", {
		gcry_md_reset(reuse);
		gcry_md_setkey(reuse, mac1_key, HASH_LEN);
		gcry_md_write(reuse, garbage, KNOCK_MAC_OFFSET);
		sink += equal_ct(gcry_md_read(reuse, 0), garbage + KNOCK_MAC_OFFSET, 16);
	});
	MEASURE("md_copy_keyed", {
		gcry_md_hd_t c;
		gcry_md_copy(&c, proto);
		gcry_md_write(c, garbage, KNOCK_MAC_OFFSET);
		sink += equal_ct(gcry_md_read(c, 0), garbage + KNOCK_MAC_OFFSET, 16);
		gcry_md_close(c);
	});
	MEASURE("blake2s_portable", {
		blake2s_128_portable(got, mac1_key, garbage, KNOCK_MAC_OFFSET);
		sink += equal_ct(got, garbage + KNOCK_MAC_OFFSET, 16);
	});
	MEASURE("portable_keystate", {
		blake2s_128_from_state(got, key_state, garbage, KNOCK_MAC_OFFSET);
		sink += equal_ct(got, garbage + KNOCK_MAC_OFFSET, 16);
	});
	MEASURE("knock_open_uncached",
		sink += knock_open(&server, psk, NULL, good, cpub, &out));
	MEASURE("knock_open", sink += knock_open(&server, psk, dh_cache_source(dh), good, cpub, &out));
	MEASURE("x25519", sink += x25519(x, spriv, client.pub));
	gcry_md_close(reuse);
	gcry_md_close(proto);
	dh_cache_free(dh);
	keyed_blake2s_free(&mctx);
	return 0;
}
