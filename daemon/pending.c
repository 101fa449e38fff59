/*
 * Pending handshakes: accepted connections whose client has not yet proved
 * its keys (no message 1 yet, or message 2 sent and no valid transport
 * message back). They are capped per source and in total, and a new one
 * past a cap pushes out the oldest, of that source for the per-source
 * cap, of all for the total: connections that sit idle cannot then lock
 * out a newcomer, and a flood from one address only churns its own.
 */
#include <netinet/in.h>
#include <string.h>

#include "tunneld.h"

void source_key_of(const struct sockaddr_storage *sa, struct source_key *k)
{
	memset(k, 0, sizeof(*k));
	k->family = (uint8_t)sa->ss_family;
	if (sa->ss_family == AF_INET)
		memcpy(k->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->ss_family == AF_INET6)
		memcpy(k->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 8);
}

static bool same_source(const struct tsession *a, const struct tsession *b)
{
	return memcmp(&a->source, &b->source, sizeof(a->source)) == 0;
}

/* The oldest pending handshake of t's source, and how many it has. */
static struct tsession *oldest_of_source(struct tunneld *d,
					 const struct tsession *t,
					 unsigned int *n)
{
	struct tsession *first = NULL;

	*n = 0;
	for (struct tsession *p = d->pending_head; p; p = p->pending_next) {
		if (!same_source(p, t))
			continue;
		if (!first)
			first = p;
		(*n)++;
	}
	return first;
}

void pending_admit(struct tunneld *d, struct tsession *t)
{
	const struct tunnel_config *tc = &d->cfg->tunnel;
	struct tsession *victim;
	unsigned int n;

	/* Loops: a reload may have lowered a cap below what is pending. */
	while ((victim = oldest_of_source(d, t, &n)) &&
	       n >= tc->max_handshakes_per_source) {
		d->n.evicted_source++;
		tsession_evict(victim, "max_handshakes_per_source");
	}
	while (d->pending_head && d->pending >= tc->max_handshakes) {
		d->n.evicted_total++;
		tsession_evict(d->pending_head, "max_handshakes");
	}
	t->pending_next = NULL;
	t->pending_prev = d->pending_tail;
	if (d->pending_tail)
		d->pending_tail->pending_next = t;
	else
		d->pending_head = t;
	d->pending_tail = t;
	d->pending++;
}

void pending_remove(struct tunneld *d, struct tsession *t)
{
	if (t->pending_prev)
		t->pending_prev->pending_next = t->pending_next;
	else if (d->pending_head == t)
		d->pending_head = t->pending_next;
	else
		return;		/* not in the list */
	if (t->pending_next)
		t->pending_next->pending_prev = t->pending_prev;
	else
		d->pending_tail = t->pending_prev;
	t->pending_next = t->pending_prev = NULL;
	d->pending--;
}
