/*
 * The "ss" of every listed client: DH(server static, client static), the
 * same in every Noise_Xpsk1 knock and every Noise_IKpsk2 handshake of that
 * client for as long as neither key changes. Computing it once per client
 * leaves a responder one X25519 per knock (es) instead of two.
 *
 * Made for one server key pair and one configuration, in secure memory
 * (secmem.h), with a copy of the server's key pair; each client's result is
 * computed the first time a handshake asks for it. A reload makes a new one
 * and frees the old, which wipes it: nothing of an old key survives.
 */
#ifndef POSTERN_DH_CACHE_H
#define POSTERN_DH_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "noise.h"

struct dh_cache;

/* Room for each of cfg's clients, nothing computed yet; NULL when out of
 * memory. */
struct dh_cache *dh_cache_new(const struct noise_keypair *server,
			      const struct server_config *cfg);

/* What knock_open() and tunnel_server_read_hello() take: this cache's
 * lookup; NULL for NULL. */
const struct noise_ss_source *dh_cache_source(const struct dh_cache *c);

/* Wipe and free; NULL is a no-op. */
void dh_cache_free(struct dh_cache *c);

/* Clients held, and how many of their results are computed (tests). */
size_t dh_cache_size(const struct dh_cache *c);
size_t dh_cache_computed(const struct dh_cache *c);

/*
 * A noise_ss_lookup (noise.h) over a struct dh_cache: true with ss filled
 * when the cache was made for the local static key s_pub and holds rs,
 * computing it the first time. Anything else says "compute it yourself",
 * so a cache that does not belong to the handshake costs time, never a
 * wrong key. Not for concurrent use.
 */
bool dh_cache_lookup(void *cache, const uint8_t s_pub[KEY_LEN],
		     const uint8_t rs[KEY_LEN], uint8_t ss[KEY_LEN]);

#endif
