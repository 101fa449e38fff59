/*
 * posternd's per-packet parsers with attacker-chosen bytes: the IP/UDP
 * headers as NFQUEUE hands them over, then the knock pipeline. The mac1 is
 * made valid when the first byte asks for it, so that the Noise read and
 * the policy checks behind it are reached too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ip_udp.h"
#include "knock.h"
#include "knock_verify.h"
#include "nfqueue.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct knock_verifier verifier;
static struct server_config cfg;
static struct client_entry client;
static uint16_t ports[] = { 8443 };

/* The verifier's secrets live in pages LeakSanitizer does not scan: free
 * them at exit, or their hash handle counts as leaked. */
static void free_verifier(void)
{
	knock_verifier_free(&verifier);
}

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
	cfg.knock.rate = 1000;
	cfg.knock.burst = 1000;
	cfg.knock.rate_sources = 64;
	cfg.knock.replay_entries = 8;
	knock_verifier_init(&verifier, &server, psk, &cfg,
			    &(struct knock_clock){ .wall_ms = 0, .boot_ms = 0 });
	atexit(free_verifier);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct knock_clock now = { .wall_ms = 1000, .boot_ms = 1000 };
	struct nfqueue_stats st = { 0 };
	struct knock_decision dec;
	struct knock_packet k;
	char text[46];

	if (size < 1)
		return 0;
	/* The first byte: bit 0 forges a valid mac1 (so the expensive path
	 * is explored), bits 1-7 cut the capture short as the queue would. */
	size_t cut = size - 1 > (size_t)(data[0] >> 1) * 4 ? size - 1 - (size_t)(data[0] >> 1) * 4 : 0;
	if (nfqueue_fill_packet(&k, data + 1, cut, size - 1, &st)) {
		if (k.captured > k.len)
			__builtin_trap();
		ip_addr_to_text(text, &k.src);
		if (!ip_addr_is_host(&k.src))
			__builtin_trap();
	} else if (size - 1 >= KNOCK_LEN) {
		memset(&k, 0, sizeof(k));
		memcpy(k.data, data + 1, KNOCK_LEN);
		k.len = k.captured = KNOCK_LEN;
		k.src.b[15] = 1;
	} else {
		return 0;
	}
	if (data[0] & 1 && k.len == KNOCK_LEN)
		blake2s_128_keyed(k.data + KNOCK_MAC_OFFSET, verifier.keys->mac1.key,
				  k.data, KNOCK_MAC_OFFSET);
	if (knock_verify(&verifier, &k, &now, &dec) == KNOCK_OK &&
	    (k.captured < k.len || dec.open_seconds > cfg.knock.max_open_seconds))
		__builtin_trap();
	return 0;
}
