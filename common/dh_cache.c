/* DH(server static, client static) per listed client; see dh_cache.h. */
#include "dh_cache.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "secmem.h"

struct dh_entry {
	uint8_t pub[KEY_LEN];		/* the client's static public key */
	uint8_t ss[KEY_LEN];		/* DH(server, pub), once computed */
	bool computed;
};

struct dh_cache {
	struct noise_ss_source source;	/* dh_cache_lookup over this */
	struct noise_keypair server;	/* the key pair it is made for */
	size_t n;
	struct dh_entry e[];		/* sorted by pub */
};

static int entry_cmp(const void *a, const void *b)
{
	return memcmp(((const struct dh_entry *)a)->pub,
		      ((const struct dh_entry *)b)->pub, KEY_LEN);
}

/*
 * Nothing is computed here: at a start or a reload with many clients that
 * would hold up every knock and tunnel for an X25519 per client, mostly
 * for clients that will not knock before the next reload.
 */
struct dh_cache *dh_cache_new(const struct noise_keypair *server,
			      const struct server_config *cfg)
{
	struct dh_cache *c;
	size_t i;

	c = secmem_alloc(sizeof(*c) + cfg->n_clients * sizeof(c->e[0]));
	if (!c)
		return NULL;
	c->source = (struct noise_ss_source){ dh_cache_lookup, c };
	c->server = *server;
	c->n = cfg->n_clients;
	for (i = 0; i < c->n; i++)
		memcpy(c->e[i].pub, cfg->clients[i].public_key, KEY_LEN);
	/* Public keys are the order: what is searched is public anyway. */
	qsort(c->e, c->n, sizeof(c->e[0]), entry_cmp);
	return c;
}

const struct noise_ss_source *dh_cache_source(const struct dh_cache *c)
{
	return c ? &c->source : NULL;
}

void dh_cache_free(struct dh_cache *c)
{
	secmem_free(c);		/* wipes */
}

size_t dh_cache_size(const struct dh_cache *c)
{
	return c ? c->n : 0;
}

size_t dh_cache_computed(const struct dh_cache *c)
{
	size_t i, n = 0;

	for (i = 0; c && i < c->n; i++)
		n += c->e[i].computed;
	return n;
}

bool dh_cache_lookup(void *cache, const uint8_t s_pub[KEY_LEN],
		     const uint8_t rs[KEY_LEN], uint8_t ss[KEY_LEN])
{
	struct dh_cache *c = cache;
	struct dh_entry key, *e;

	if (!c || memcmp(c->server.pub, s_pub, KEY_LEN) != 0)
		return false;
	memcpy(key.pub, rs, KEY_LEN);
	e = bsearch(&key, c->e, c->n, sizeof(c->e[0]), entry_cmp);
	if (!e)
		return false;
	/* A low-order key is not kept: its handshakes fail each time, as
	 * they would without the cache. */
	if (!e->computed && !(e->computed = x25519(e->ss, c->server.priv, e->pub)))
		return false;
	memcpy(ss, e->ss, KEY_LEN);
	return true;
}
