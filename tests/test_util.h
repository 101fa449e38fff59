/* Helpers shared by the unit tests. */
#ifndef POSTERN_TEST_UTIL_H
#define POSTERN_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Decode hex into a malloc'd buffer; *len gets its length. */
uint8_t *hex_decode(const char *hex, size_t *len);
/* A fresh random static key pair; aborts if the kernel has no randomness. */
struct noise_keypair;
void test_keypair(struct noise_keypair *kp);
/* A real tunnel handshake between fresh keys: the transports of both
 * ends. Aborts if it fails. */
struct tunnel_transport;
void test_transport_pair(struct tunnel_transport *client,
			 struct tunnel_transport *server);

/* A private temporary directory, removed when the test exits. */
const char *temp_dir_path(void);
/* Write text to a new file with the given mode under a private temporary
 * directory; returns the path (static storage, valid until the next call). */
const char *write_temp_file(const char *name, const char *text, unsigned int mode);

#endif
