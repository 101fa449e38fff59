/*
 * posternd's per-packet parsers with attacker-chosen bytes: the IP/UDP
 * headers as NFQUEUE hands them over, then the knock pipeline. The mac1 is
 * made valid when the first byte asks for it, so that the Noise read and
 * the policy checks behind it are reached too.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ip_udp.h"
#include "knock.h"
#include "knock_verify.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct knock_verifier verifier;
static struct server_config cfg;
static struct client_entry client;
static uint16_t ports[] = { 8443 };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct noise_keypair server;
	uint8_t priv[KEY_LEN], psk[KEY_LEN];

	(void)argc;
	(void)argv;
	crypto_init();
	memset(priv, 0x11, KEY_LEN);
	noise_keypair_init(&server, priv);
	memset(psk, 0x33, KEY_LEN);
	memset(priv, 0x22, KEY_LEN);
	x25519_public(client.public_key, priv);
	client.name = "fuzz";
	client.open = ports;
	client.n_open = 1;
	cfg.clients = &client;
	cfg.n_clients = 1;
	cfg.knock.window = 30;
	cfg.knock.open_seconds = 30;
	cfg.knock.max_open_seconds = 300;
	knock_verifier_init(&verifier, &server, psk, &cfg, 0);
	verifier.rl.per_second = 1000000;
	verifier.rl.burst = 1000000;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct udp_datagram d;
	struct knock_decision dec;
	uint8_t pkt[KNOCK_LEN];
	char text[46];

	if (size < 1)
		return 0;
	if (ip_udp_parse(&d, data + 1, size - 1, size - 1)) {
		if (d.captured > d.payload_len || d.payload + d.captured > data + size)
			__builtin_trap();
		addr_to_text(text, d.src);
	}
	if (data[0] & 1 && size - 1 >= KNOCK_LEN) {
		/* forge a valid mac1 so the expensive path is explored */
		memcpy(pkt, data + 1, KNOCK_LEN);
		blake2s_128_keyed(pkt + KNOCK_MAC_OFFSET, verifier.mac1.key, pkt,
				  KNOCK_MAC_OFFSET);
		knock_verify(&verifier, pkt, KNOCK_LEN, d.src, 1000, &dec);
	} else {
		knock_verify(&verifier, data + 1, size - 1, d.src, 1000, &dec);
	}
	return 0;
}
