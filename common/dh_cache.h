/*
 * The "ss" of every listed client: DH(server static, client static), the
 * same in every Noise_Xpsk1 knock and every Noise_IKpsk2 handshake of that
 * client for as long as neither key changes. Computing it once per client
 * leaves a responder one X25519 per knock (es) instead of two.
 *
 * Built from a server key pair and a configuration, all at once, in secure
 * memory (secmem.h); a reload builds a new one and frees the old, which
 * wipes it. It is read-only once built: the handshake only looks results up.
 */
#ifndef POSTERN_DH_CACHE_H
#define POSTERN_DH_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "noise.h"

struct dh_cache;

/* DH(server, key) for each of cfg's clients; NULL when out of memory. A
 * client key whose DH is all zero (a low-order point) is left out: its
 * handshakes compute, and fail, as without a cache. */
struct dh_cache *dh_cache_new(const struct noise_keypair *server,
			      const struct server_config *cfg);

/* Wipe and free; NULL is a no-op. */
void dh_cache_free(struct dh_cache *c);

/* Clients held (tests). */
size_t dh_cache_size(const struct dh_cache *c);

/*
 * A noise_ss_lookup (noise.h) over a struct dh_cache: true with ss filled
 * when the cache was built for the local static key s_pub and holds rs.
 * Anything else says "compute it", so a cache that does not belong to the
 * handshake costs time, never a wrong key.
 */
bool dh_cache_lookup(const void *cache, const uint8_t s_pub[KEY_LEN],
		     const uint8_t rs[KEY_LEN], uint8_t ss[KEY_LEN]);

#endif
