/*
 * The fleet PSK: 32 bytes every member of a fleet shares, read from a file,
 * an environment variable, a systemd credential, or stretched from a
 * passphrase with Argon2id (config.h says which, docs/CONFIG.md how).
 */
#ifndef POSTERN_PSK_H
#define POSTERN_PSK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "crypto.h"

/* Argon2id parameters of psk_passphrase_salt. Changing any of them changes
 * every fleet's PSK: they are part of the protocol. */
#define PSK_ARGON2_T 3			/* passes */
#define PSK_ARGON2_M_KIB 65536		/* 64 MiB */
#define PSK_ARGON2_P 1			/* lanes */
#define PSK_SALT_MIN_LEN 8

#define PSK_PASSPHRASE_ENV "POSTERN_PASSPHRASE"
#define PSK_PASSPHRASE_MAX 1024

/*
 * Load the PSK from where src says. A passphrase comes from the environment
 * variable POSTERN_PASSPHRASE, else from /dev/tty with echo off, else it is an
 * error. A variable read for a secret (POSTERN_PASSPHRASE, psk_env's) is
 * wiped and unset, right or wrong, so a second load finds it gone. On
 * failure writes one line to err, wipes psk and returns false; no message
 * ever holds key material or a passphrase.
 */
bool psk_load(uint8_t psk[KEY_LEN], const struct psk_source *src,
	      char *err, size_t err_len);

/* PSK = Argon2id(passphrase, salt) with postern's parameters above. */
bool psk_from_passphrase(uint8_t psk[KEY_LEN], const char *passphrase,
			 size_t len, const char *salt, size_t salt_len);

/*
 * Argon2id (RFC 9106) with every input: t passes over m_kib KiB in p lanes,
 * an optional secret key and associated data (NULL, 0 when unused). Exposed
 * so that tests can check libgcrypt against the RFC's vectors.
 */
bool psk_argon2id(uint8_t *out, size_t out_len,
		  const void *pass, size_t pass_len,
		  const void *salt, size_t salt_len,
		  const void *key, size_t key_len,
		  const void *ad, size_t ad_len,
		  unsigned long t, unsigned long m_kib, unsigned long p);

#endif
