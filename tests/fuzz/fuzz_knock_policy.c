/*
 * The knock policy behind the AEAD. Every knock here is real: built with
 * knock_build() from the fixed keys (or, to set its reserved bytes, by the
 * same Noise calls), so each one made to authenticate does, and the fuzzer
 * explores what comes after: unknown key, expiry, clock skew, replay and the
 * daemon's start floor, target, open_seconds, rate limit. It picks the
 * server's knock settings, the daemon's start, and a sequence of knocks:
 * who sends (ALICE, BOB, expired CAROL, unknown MALLORY, ALICE with another
 * fleet's PSK or for another server, or a resend of an earlier packet's
 * exact bytes), from which source, when, and every payload field; and
 * reloads between them (SIGHUP: the allowlist reversed, or without BOB),
 * which keep each remaining key's replay state.
 *
 * Input: settings u8 (bit 0 allow_target; bits 1-2 window 1, 30, 300 or
 * 3600 s; bits 3-5 open_seconds; bits 6-7 max_open_seconds above it) ‖
 * start s8 (the daemon's, in s from now) ‖ records of 12 bytes:
 *   who u8 (low 3 bits; bits 3-5: which earlier packet a resend takes,
 *   which allowlist a reload) ‖
 *   source u8 ‖ now step s16 ×10 ms ‖ timestamp − now s16 ×10 ms ‖
 *   target u8 ‖ open_seconds u16 ‖ flags u16 ‖ reserved u8 (last byte)
 *
 * Invariants: each verdict is what the design's checks, in their order,
 * give (a model: expect(), with its own copy of the replay memory: each
 * key's knocks by ephemeral key for two windows, at most replay_entries,
 * the floor they leave, and the fast path of lately accepted packets); in
 * particular nothing is accepted from an unknown or removed key, an
 * expired client, another fleet or for another server; an accepted knock
 * names its sender's entry in the current list; the same knock bytes are
 * never accepted twice; a non-zero target only with allow_target;
 * open_seconds in 1..max_open_seconds.
 */
#include <string.h>

#include "fuzz_util.h"
#include "ip_udp.h"
#include "knock_verify.h"

#define RECORD_LEN 12
#define MAX_KNOCKS 16
#define HISTORY 8

/* Sources: two IPv4, three IPv6 of which two share a /64. */
static struct ip_addr sources[5];
static uint8_t other_target[2][16];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const src_text[5] = {
		"198.51.100.7", "203.0.113.9", "2001:db8:1::7",
		"2001:db8:1::8", "2001:db8:2::7",
	};

	(void)argc;
	(void)argv;
	fuzz_init();
	for (int i = 0; i < 5; i++) {
		check(addr_from_text(sources[i].b, src_text[i]));
		ip_addr_from_wire(&sources[i], sources[i].b);
	}
	check(addr_from_text(other_target[0], "192.0.2.1"));
	check(addr_from_text(other_target[1], "2001:db8:ffff::1"));
	return 0;
}

/* A knock as the fuzzer wants it, and the packet made of it. */
struct knock {
	enum knock_sender who;
	uint8_t pick;		/* S_RESEND: which earlier packet */
	struct ip_addr src;
	uint64_t now;		/* the wall clock, which may step back */
	uint64_t boot;		/* the boot clock, which never does */
	struct knock_payload p;
	uint8_t reserved[4];
	uint8_t pkt[KNOCK_LEN];
	bool reserved_set;
};

/* The allowlists a reload may swap in: the base one, the same clients in
 * reverse order, and one without BOB. A key once removed stays removed
 * here (the verifier keeps a removed key's history: test_knock's
 * removed_key_keeps_history; the model does not). */
struct lists {
	struct server_config cfg[3];
	struct client_entry reversed[3], no_bob[2];
	const struct server_config *cur;
};

static void lists_init(struct lists *l, const struct knock_config *kc)
{
	const struct client_entry *c = fuzz_knock_cfg.clients;

	l->reversed[0] = c[CAROL];
	l->reversed[1] = c[BOB];
	l->reversed[2] = c[ALICE];
	l->no_bob[0] = c[ALICE];
	l->no_bob[1] = c[CAROL];
	for (int i = 0; i < 3; i++) {
		l->cfg[i] = fuzz_knock_cfg;
		l->cfg[i].knock = *kc;
	}
	l->cfg[1].clients = l->reversed;
	l->cfg[2].clients = l->no_bob;
	l->cfg[2].n_clients = 2;
	l->cur = &l->cfg[0];
}

/* who's entry in the current list, or NULL. */
static const struct client_entry *entry(const struct lists *l,
					enum knock_sender who)
{
	for (size_t i = 0; who <= S_CAROL && i < l->cur->n_clients; i++)
		if (!memcmp(l->cur->clients[i].public_key, fk.client[who].pub, KEY_LEN))
			return &l->cur->clients[i];
	return NULL;
}

/* The model's memory: what the verifier should remember. */
struct model {
	uint64_t start;
	struct keymem {			/* per key, as replay.h describes it */
		struct { uint64_t ts, seen; uint8_t id[REPLAY_ID_LEN]; } k[MAX_KNOCKS];
		size_t n;
		uint64_t floor;
	} mem[MALLORY];
	struct bucket {
		struct ip_addr prefix;
		uint64_t updated;
		uint32_t millitokens;
		bool used;
	} buckets[5];
	struct recent {			/* the fast path, slot by slot */
		uint8_t mac1[KNOCK_MAC_LEN];
		enum knock_sender who;
		bool used;
	} recent[KNOCK_RECENT_SLOTS];
	struct accepted {
		uint8_t pkt[KNOCK_LEN];
		uint64_t now, boot;
	} accepted[MAX_KNOCKS];
	size_t n_accepted;
};

/* Built knocks, by sender, place in the input and payload: the fuzzer
 * mutates one record at a time, and two X25519 of the three a build costs
 * are saved when the others come from here. Verdicts never depend on the
 * ephemeral, so a crash reproduces without the cache. */
#define CACHE_SIZE 4096
static struct cached {
	uint8_t key[2 + KNOCK_PAYLOAD_LEN];
	uint8_t pkt[KNOCK_LEN];
	bool used;
} cache[CACHE_SIZE];

static void build(struct knock *k, size_t place)
{
	const struct noise_keypair *c =
		&fk.client[k->who <= S_MALLORY ? (int)k->who : ALICE];
	const uint8_t *server = k->who == S_OTHER_SERVER ? fk.other.pub : fk.server.pub;
	const uint8_t *psk = k->who == S_WRONG_PSK ? fk.wrong_psk : fk.psk;
	uint8_t key[2 + KNOCK_PAYLOAD_LEN];
	uint32_t h = 2166136261u;	/* FNV-1a */
	struct cached *e;

	key[0] = (uint8_t)k->who;
	key[1] = (uint8_t)place;
	knock_payload_encode(key + 2, &k->p);
	memcpy(key + 2 + 28, k->reserved, 4);
	for (size_t i = 0; i < sizeof(key); i++)
		h = (h ^ key[i]) * 16777619u;
	e = &cache[h % CACHE_SIZE];
	if (e->used && memcmp(e->key, key, sizeof(key)) == 0) {
		memcpy(k->pkt, e->pkt, KNOCK_LEN);
		return;
	}
	if (k->reserved_set)
		check(fuzz_knock_build(k->pkt, c, server, psk, key + 2, NULL));
	else
		check(knock_build(k->pkt, c, server, psk, &k->p));
	memcpy(e->key, key, sizeof(key));
	memcpy(e->pkt, k->pkt, KNOCK_LEN);
	e->used = true;
}

/* burst tokens per source (an IPv6 /64), rate back per second, as the
 * design has it; five sources never evict. */
static bool rate_allow(struct model *m, const struct knock_config *kc,
		       const struct ip_addr *src, uint64_t now)
{
	struct ip_addr prefix = *src;
	struct bucket *b = NULL;
	uint64_t burst = kc->burst * 1000ull;

	if (src->v6)
		memset(prefix.b + 8, 0, 8);
	for (int i = 0; i < 5 && !b; i++)
		if (!m->buckets[i].used ||
		    (m->buckets[i].prefix.v6 == prefix.v6 &&
		     !memcmp(m->buckets[i].prefix.b, prefix.b, 16)))
			b = &m->buckets[i];
	if (!b->used) {
		*b = (struct bucket){ .used = true, .millitokens = (uint32_t)burst,
				      .prefix = prefix };
	}
	if (now > b->updated) {
		uint64_t t = b->millitokens + (now - b->updated) * kc->rate;

		b->millitokens = t > burst ? (uint32_t)burst : (uint32_t)t;
	}
	b->updated = now;
	if (b->millitokens < 1000)
		return false;
	b->millitokens -= 1000;
	return true;
}

static struct recent *recent_slot(struct model *m, const uint8_t pkt[KNOCK_LEN])
{
	const uint8_t *mac1 = pkt + KNOCK_MAC_OFFSET;

	return &m->recent[(mac1[0] | mac1[1] << 8) % KNOCK_RECENT_SLOTS];
}

/* The replay check of one key (replay.h), and what it remembers. */
static bool model_replay_accept(struct model *m, enum knock_sender who,
				const struct knock *k, uint64_t window, size_t cap)
{
	struct keymem *km = &m->mem[who];
	uint64_t ts = k->p.timestamp_ms;

	for (size_t j = 0; j < km->n;)
		if (k->boot - km->k[j].seen > 2 * window)
			km->k[j] = km->k[--km->n];
		else
			j++;
	if (ts <= km->floor)
		return false;
	for (size_t j = 0; j < km->n; j++)
		if (!memcmp(km->k[j].id, k->pkt + 1, REPLAY_ID_LEN))
			return false;
	if (km->n == cap) {
		size_t o = 0;

		for (size_t j = 1; j < km->n; j++)
			if (km->k[j].ts < km->k[o].ts)
				o = j;
		if (km->k[o].ts > km->floor)
			km->floor = km->k[o].ts;
		km->k[o] = km->k[--km->n];
	}
	km->k[km->n].ts = ts;
	km->k[km->n].seen = k->boot;
	memcpy(km->k[km->n].id, k->pkt + 1, REPLAY_ID_LEN);
	km->n++;
	return true;
}

/* The verdict the design gives, its checks in their order, and the state
 * it leaves. who is the sender the packet was built for. */
static enum knock_reason expect(struct model *m, const struct lists *l,
				const struct knock *k, enum knock_sender who)
{
	const struct knock_config *kc = &l->cur->knock;
	const struct client_entry *c = entry(l, who);
	uint64_t ts = k->p.timestamp_ms, skew, window = kc->window * 1000ull;
	struct recent *rs = recent_slot(m, k->pkt);

	/* mac1 is keyed with the server's key and the PSK */
	if (who == S_OTHER_SERVER || who == S_WRONG_PSK)
		return KNOCK_BAD_MAC1;
	if (rs->used && !memcmp(rs->mac1, k->pkt + KNOCK_MAC_OFFSET, KNOCK_MAC_LEN))
		return KNOCK_REPLAY;
	if (!rate_allow(m, kc, &k->src, k->boot))
		return KNOCK_RATE_LIMITED;
	if (k->p.flags != 0 || (k->reserved_set &&
				(k->reserved[0] | k->reserved[1] |
				 k->reserved[2] | k->reserved[3])))
		return KNOCK_BAD_PAYLOAD;
	if (!c)
		return KNOCK_UNKNOWN_KEY;
	if (c->expires_at != 0 && (int64_t)(k->now / 1000) >= c->expires_at)
		return KNOCK_EXPIRED;
	skew = ts > k->now ? ts - k->now : k->now - ts;
	if (skew > window)
		return KNOCK_SKEW;
	/* no state was loaded: the start floor applies, the start as the
	 * wall clock reads now (it follows a step) */
	if (ts < k->now - (k->boot - m->start) ||
	    !model_replay_accept(m, who, k, window, kc->replay_entries))
		return KNOCK_REPLAY;
	memcpy(rs->mac1, k->pkt + KNOCK_MAC_OFFSET, KNOCK_MAC_LEN);
	rs->who = who;
	rs->used = true;
	if (!is_zero_ct(k->p.target, 16) && !kc->allow_target)
		return KNOCK_TARGET_REFUSED;
	return KNOCK_OK;
}

static void check_accepted(struct model *m, const struct lists *l,
			   const struct knock *k, enum knock_sender who,
			   const struct knock_decision *d)
{
	const struct knock_config *kc = &l->cur->knock;
	unsigned int want = k->p.open_seconds ? k->p.open_seconds : kc->open_seconds;

	check(who == S_ALICE || who == S_BOB);
	check(d->client == entry(l, who));
	check(d->timestamp_ms == k->p.timestamp_ms);
	if (is_zero_ct(k->p.target, 16))
		check(d->target.v6 == k->src.v6 && memcmp(d->target.b, k->src.b, 16) == 0);
	else
		check(kc->allow_target && memcmp(d->target.b, k->p.target, 16) == 0);
	check(d->open_seconds >= 1 && d->open_seconds <= kc->max_open_seconds);
	check(d->open_seconds == (want < kc->max_open_seconds ? want
							       : kc->max_open_seconds));
	/* The same bytes twice only in the gap replay.h owns to: more than
	 * two windows later, with the wall clock fallen behind the boot clock
	 * by more than a window since. */
	for (size_t i = 0; i < m->n_accepted; i++) {
		const struct accepted *a = &m->accepted[i];
		int64_t boot = (int64_t)(k->boot - a->boot);
		int64_t wall = (int64_t)(k->now - a->now);
		int64_t w = (int64_t)kc->window * 1000;

		check(memcmp(a->pkt, k->pkt, KNOCK_LEN) != 0 ||
		      (boot > 2 * w && boot - wall > w));
	}
	memcpy(m->accepted[m->n_accepted].pkt, k->pkt, KNOCK_LEN);
	m->accepted[m->n_accepted].now = k->now;
	m->accepted[m->n_accepted++].boot = k->boot;
}

static void read_record(struct fuzz_in *in, struct knock *k, uint64_t *now,
			uint64_t *boot)
{
	int64_t step;
	uint8_t target;

	memset(k, 0, sizeof(*k));
	target = fz_u8(in);
	k->who = (enum knock_sender)(target & 7);
	k->pick = target >> 3 & 7;
	k->src = sources[fz_u8(in) % 5];
	step = (int64_t)(int16_t)fz_u16(in) * 10;
	*now += (uint64_t)step;
	*boot += step > 0 ? (uint64_t)step : 0;
	k->now = *now;
	k->boot = *boot;
	k->p.timestamp_ms = *now + (uint64_t)((int64_t)(int16_t)fz_u16(in) * 10);
	target = fz_u8(in);
	if (target % 4 == 1)
		memcpy(k->p.target, other_target[0], 16);
	else if (target % 4 == 2)
		memcpy(k->p.target, other_target[1], 16);
	else if (target % 4 == 3)
		memcpy(k->p.target, k->src.b, 16);
	k->p.open_seconds = fz_u16(in);
	k->p.flags = fz_u16(in);
	k->reserved[3] = fz_u8(in);
	k->reserved_set = k->reserved[3] != 0;
}

/* A SIGHUP: the verifier takes list i (same key, PSK, window); the
 * fast path starts afresh, each key keeps its memory. */
static void reload(struct knock_verifier *v, struct model *m, struct lists *l,
		   unsigned int i, uint64_t now, uint64_t boot)
{
	struct knock_clock t = { .wall_ms = now, .boot_ms = boot };

	if (l->cur == &l->cfg[2])
		return;		/* BOB stays removed */
	check(knock_verifier_reload(v, &l->cfg[i], &fk.server, fk.psk, &t));
	l->cur = &l->cfg[i];
	memset(m->recent, 0, sizeof(m->recent));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned int windows[4] = { 1, 30, 300, 3600 };
	struct fuzz_in in = { data, size };
	struct knock_config kc = fuzz_knock_cfg.knock;
	struct knock history[HISTORY];
	struct knock_verifier v;
	static struct model m;
	struct knock_clock t;
	struct lists l;
	uint64_t now = FUZZ_NOW_MS, boot;
	uint8_t settings;
	size_t n = 0, built = 0;

	if (size < 2 || (size - 2) / RECORD_LEN > MAX_KNOCKS)
		return 0;
	settings = fz_u8(&in);
	kc.allow_target = settings & 1;
	kc.window = windows[settings >> 1 & 3];
	kc.open_seconds = 1u + (settings >> 3 & 7) * 10;
	kc.max_open_seconds = kc.open_seconds + (settings >> 6) * 100;
	lists_init(&l, &kc);
	memset(&m, 0, sizeof(m));
	m.start = FUZZ_NOW_MS + (uint64_t)((int64_t)(int8_t)fz_u8(&in) * 1000);
	/* one clock for both: wall and boot run together here */
	t = (struct knock_clock){ .wall_ms = m.start, .boot_ms = m.start };
	boot = m.start > now ? m.start : now;	/* the boot clock from there on */
	check(knock_verifier_init(&v, &fk.server, fk.psk, l.cur, &t));

	while (in.n >= RECORD_LEN) {
		struct knock k;
		struct knock_decision d;
		enum knock_sender who;
		enum knock_reason r, want;

		read_record(&in, &k, &now, &boot);
		if (k.who == S_RELOAD) {
			reload(&v, &m, &l, k.pick % 3, now, boot);
			continue;
		}
		if (k.who == S_RESEND && n > 0) {
			/* The bytes of an earlier knock, now, from here. */
			const struct knock *old = &history[k.pick % n];

			memcpy(k.pkt, old->pkt, KNOCK_LEN);
			k.p = old->p;
			memcpy(k.reserved, old->reserved, 4);
			k.reserved_set = old->reserved_set;
			who = old->who;
		} else {
			if (k.who == S_RESEND)
				k.who = S_ALICE;
			build(&k, built++);
			who = k.who;
			if (n < HISTORY)
				history[n++] = k;
		}
		struct knock_packet pkt = { .src = k.src, .len = KNOCK_LEN,
					    .captured = KNOCK_LEN };

		memcpy(pkt.data, k.pkt, KNOCK_LEN);
		t = (struct knock_clock){ .wall_ms = k.now, .boot_ms = k.boot };
		r = knock_verify(&v, &pkt, &t, &d);
		want = expect(&m, &l, &k, who);
		check(r == want);
		if (r == KNOCK_OK)
			check_accepted(&m, &l, &k, who, &d);
		else if (r >= KNOCK_UNKNOWN_KEY && entry(&l, who))
			check(d.client == entry(&l, who));
		else
			check(d.client == NULL);
	}
	knock_verifier_free(&v);
	return 0;
}
