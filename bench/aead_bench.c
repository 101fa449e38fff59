/*
 * aead_bench: what sealing one transport message costs, with the key kept
 * in the CipherState's libgcrypt handle (noise_encrypt, as the tunnel does)
 * and with a handle opened and keyed for the message alone (aead_encrypt,
 * what every message paid before), at a few message sizes: a yamux window
 * update or ping (12 bytes), an interactive write, and a full message.
 *
 * Prints ns per message: the best of 5 rounds of about 0.1 s each.
 *
 *   bench/aead_bench            (no root; a few seconds)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "crypto.h"
#include "noise.h"
#include "tunnel.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile unsigned sink;

static double measure(struct noise_cipher *cs, bool one_shot,
		      uint8_t *out, const uint8_t *in, size_t len)
{
	double best = 1e30;

	for (int round = 0; round < 5; round++) {
		unsigned long n = 0;
		double t0 = now_s(), t;

		do {
			for (int i = 0; i < 16; i++) {
				if (one_shot)
					sink += aead_encrypt(out, cs->k, cs->n++, NULL, 0,
							     in, len);
				else
					sink += noise_encrypt(cs, out, NULL, 0, in, len);
			}
			n += 16;
			t = now_s() - t0;
		} while (t < 0.1);
		if (t / (double)n < best)
			best = t / (double)n;
	}
	return best * 1e9;
}

int main(void)
{
	static const size_t sizes[] = { 12, 1024, 16384, TUNNEL_MAX_PLAIN };
	struct noise_handshake i, r;
	struct noise_cipher send, recv, rsend, rrecv;
	struct noise_keypair a, b;
	uint8_t priv[KEY_LEN], psk[KEY_LEN], msg[256], pl[256];
	uint8_t *in = calloc(1, TUNNEL_MAX_PLAIN), *out = malloc(TUNNEL_MAX_MSG);
	size_t n = sizeof(msg), got = sizeof(pl);

	if (!crypto_init() || !in || !out)
		return 1;
	random_bytes(psk, sizeof(psk));
	random_bytes(priv, sizeof(priv));
	if (!noise_keypair_init(&a, priv))
		return 1;
	random_bytes(priv, sizeof(priv));
	if (!noise_keypair_init(&b, priv))
		return 1;
	/* A real IKpsk2 handshake: the CipherStates split gives the tunnel. */
	if (noise_handshake_init(&i, TUNNEL_PROTOCOL, NOISE_INITIATOR, NULL, 0,
				 &a, b.pub, psk) != NOISE_OK ||
	    noise_handshake_init(&r, TUNNEL_PROTOCOL, NOISE_RESPONDER, NULL, 0,
				 &b, NULL, psk) != NOISE_OK ||
	    noise_handshake_write(&i, msg, &n, NULL, 0) != NOISE_OK ||
	    noise_handshake_read(&r, pl, &got, msg, n) != NOISE_OK ||
	    (n = sizeof(msg), noise_handshake_write(&r, msg, &n, NULL, 0)) != NOISE_OK ||
	    (got = sizeof(pl), noise_handshake_read(&i, pl, &got, msg, n)) != NOISE_OK ||
	    noise_handshake_split(&i, &send, &recv, NULL) != NOISE_OK ||
	    noise_handshake_split(&r, &rsend, &rrecv, NULL) != NOISE_OK)
		return fprintf(stderr, "aead_bench: handshake failed\n"), 1;
	printf("%-8s %14s %14s\n", "bytes", "kept handle", "per message");
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		double kept = measure(&send, false, out, in, sizes[k]);
		double each = measure(&send, true, out, in, sizes[k]);

		printf("%-8zu %11.0f ns %11.0f ns\n", sizes[k], kept, each);
	}
	noise_cipher_free(&send);
	noise_cipher_free(&recv);
	noise_cipher_free(&rsend);
	noise_cipher_free(&rrecv);
	free(in);
	free(out);
	return 0;
}
