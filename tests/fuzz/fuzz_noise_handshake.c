/*
 * The Noise handshake read path with attacker-chosen bytes: a responder
 * reading message 1 of Xpsk1 (a knock) or IKpsk2 (a tunnel), and an
 * initiator reading message 2 of IKpsk2. The first byte picks which.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "noise.h"

#define IK "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
#define XPSK1 "Noise_Xpsk1_25519_ChaChaPoly_BLAKE2s"

static struct noise_keypair server, client;
static uint8_t psk[KEY_LEN], e_priv[KEY_LEN];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	crypto_init();
	uint8_t priv[KEY_LEN];

	memset(priv, 0x11, KEY_LEN);
	noise_keypair_init(&server, priv);
	memset(priv, 0x22, KEY_LEN);
	noise_keypair_init(&client, priv);
	memset(psk, 0x33, KEY_LEN);
	memset(e_priv, 0x44, KEY_LEN);
	return 0;
}

static void responder_reads(const char *proto, const uint8_t *msg, size_t len)
{
	struct noise_handshake hs;
	uint8_t out[NOISE_MAX_MSG];
	size_t n = sizeof(out);

	if (noise_handshake_init(&hs, proto, NOISE_RESPONDER, "p", 1, &server,
				 NULL, psk) != NOISE_OK)
		__builtin_trap();
	if (noise_handshake_read(&hs, out, &n, msg, len) == NOISE_OK && n > len)
		__builtin_trap();
	noise_handshake_wipe(&hs);
}

static void initiator_reads_reply(const uint8_t *msg, size_t len)
{
	struct noise_handshake hs;
	uint8_t first[128], out[NOISE_MAX_MSG];
	size_t n = sizeof(first);

	if (noise_handshake_init(&hs, IK, NOISE_INITIATOR, "p", 1, &client,
				 server.pub, psk) != NOISE_OK)
		__builtin_trap();
	noise_handshake_set_ephemeral(&hs, e_priv);
	if (noise_handshake_write(&hs, first, &n, NULL, 0) != NOISE_OK)
		__builtin_trap();
	n = sizeof(out);
	if (noise_handshake_read(&hs, out, &n, msg, len) == NOISE_OK &&
	    !noise_handshake_done(&hs))
		__builtin_trap();
	noise_handshake_wipe(&hs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > NOISE_MAX_MSG)
		return 0;
	switch (data[0] % 3) {
	case 0: responder_reads(XPSK1, data + 1, size - 1); break;
	case 1: responder_reads(IK, data + 1, size - 1); break;
	case 2: initiator_reads_reply(data + 1, size - 1); break;
	}
	return 0;
}
