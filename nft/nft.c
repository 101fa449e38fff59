/*
 * The netlink side of nft/: one socket, batches with an ACK per message, and
 * the element refresh of nft_set_open. docs/NFT.md explains the strategies.
 */
#include "nft_int.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/utsname.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <libnftnl/common.h>

#define NFT_KEY_MAX 20		/* ipv6_addr . inet_service */
#define NFT_STR_(x) #x
#define NFT_STR(x) NFT_STR_(x)

/*
 * By version alone: a kernel that lacks DESTROYSETELEM says so (EINVAL) and
 * nft_set_open falls back, but one that ignores EXPIRATION on an existing
 * element says nothing, so EXPIRATION is only chosen where it is known to
 * work.
 */
static enum nft_refresh refresh_for_kernel(void)
{
	struct utsname u;
	unsigned int major, minor;

	if (uname(&u) < 0 || sscanf(u.release, "%u.%u", &major, &minor) != 2)
		return NFT_REFRESH_REPLACE;
	if (major > 6 || (major == 6 && minor >= 12))
		return NFT_REFRESH_EXPIRATION;
	if (major == 6 && minor >= 3)
		return NFT_REFRESH_DESTROY;
	return NFT_REFRESH_REPLACE;
}

bool nft_refresh_supported(enum nft_refresh r)
{
	return r >= refresh_for_kernel();	/* the enum goes from best to any */
}

struct nft_conn *nft_conn_open(char *err, size_t err_len)
{
	struct timeval tv = { .tv_sec = 2 };
	struct nft_conn *c;
	int one = 1;

	if (!(c = calloc(1, sizeof(*c)))) {
		snprintf(err, err_len, "nf_tables: %s", strerror(errno));
		return NULL;
	}
	c->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!c->nl || mnl_socket_bind(c->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		snprintf(err, err_len, "nf_tables netlink socket: %s",
			 strerror(errno));
		nft_conn_close(c);
		return NULL;
	}
	/* ACKs without a copy of the request, with the kernel's reason in
	 * words when it has one. Both are optional. */
	mnl_socket_setsockopt(c->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(c->nl, NETLINK_EXT_ACK, &one, sizeof(one));
	/* The kernel answers before sendmsg returns; this only bounds a wait
	 * for an answer that is not coming. */
	setsockopt(mnl_socket_get_fd(c->nl), SOL_SOCKET, SO_RCVTIMEO,
		   &tv, sizeof(tv));
	c->portid = mnl_socket_get_portid(c->nl);
	c->seq = (uint32_t)time(NULL);
	c->refresh = refresh_for_kernel();
	c->destroy_type = NFT_MSG_DESTROYSETELEM;
	return c;
}

void nft_conn_close(struct nft_conn *c)
{
	if (!c)
		return;
	if (c->nl)
		mnl_socket_close(c->nl);
	free(c);
}

enum nft_refresh nft_conn_refresh(const struct nft_conn *c)
{
	return c->refresh;
}

void nft_conn_set_refresh(struct nft_conn *c, enum nft_refresh r)
{
	c->refresh = r;
}

void nft_conn_set_destroy_type(struct nft_conn *c, uint16_t type)
{
	c->destroy_type = type;
}

const char *nft_refresh_name(enum nft_refresh r)
{
	switch (r) {
	case NFT_REFRESH_EXPIRATION:	return "expiration";
	case NFT_REFRESH_DESTROY:	return "destroy";
	case NFT_REFRESH_REPLACE:	return "replace";
	}
	return "?";
}

int nft_family_proto(const char *name)
{
	static const struct { const char *name; int proto; } families[] = {
		{ "ip", NFPROTO_IPV4 }, { "ip6", NFPROTO_IPV6 },
		{ "inet", NFPROTO_INET }, { "arp", NFPROTO_ARP },
		{ "bridge", NFPROTO_BRIDGE }, { "netdev", NFPROTO_NETDEV },
	};

	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		if (strcmp(name, families[i].name) == 0)
			return families[i].proto;
	return -1;
}

bool nft_names_ok(const struct nft_set_ref *s)
{
	size_t t = strlen(s->table), n = strlen(s->set);

	return t > 0 && t < NFT_NAME_MAXLEN && n > 0 && n < NFT_NAME_MAXLEN;
}

/* seq in first..last, across a wrap of the counter too. */
static bool seq_in(uint32_t seq, uint32_t first, uint32_t last)
{
	return seq - first <= last - first;
}

/* The kernel's extended ACK message, if it sent one. */
static void ack_text(const struct nlmsghdr *nlh, char *out, size_t len)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;
	size_t off = sizeof(*e);

	out[0] = '\0';
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
		if (e->msg.nlmsg_len < sizeof(e->msg))
			return;
		off += e->msg.nlmsg_len - sizeof(e->msg);
	}
	if (off > mnl_nlmsg_get_payload_len(nlh))
		return;
	mnl_attr_for_each(a, nlh, off) {
		if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
		    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0) {
			snprintf(out, len, "%s", mnl_attr_get_str(a));
			return;
		}
	}
}

/*
 * One NLMSG_ERROR of ours. Returns 1 when it acknowledges one of the
 * messages sent with NLM_F_ACK, 0 to ignore it, -1 when the kernel refused
 * the batch as a whole (an error about its begin or end message).
 */
static int on_ack(const struct nlmsghdr *nlh, uint32_t ack_first,
		  uint32_t ack_last, struct nft_reply *r)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	int error;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e))) {
		if (!r->err) {
			r->err = EBADMSG;
			r->err_seq = nlh->nlmsg_seq;
		}
		return -1;
	}
	error = -e->error;
	if (!seq_in(nlh->nlmsg_seq, ack_first, ack_last) && !error)
		return 0;
	if (error && !r->err) {
		r->err = error;
		r->err_seq = nlh->nlmsg_seq;
		ack_text(nlh, r->msg, sizeof(r->msg));
	}
	if (!seq_in(nlh->nlmsg_seq, ack_first, ack_last))
		return -1;
	if (r->errs)
		r->errs[nlh->nlmsg_seq - ack_first] = error;
	return 1;
}

const char *nft_step_name(enum nft_step step)
{
	switch (step) {
	case NFT_STEP_SEND: return "netlink send";
	case NFT_STEP_RECEIVE: return "netlink receive";
	case NFT_STEP_LOOKUP: return "look up";
	case NFT_STEP_DELETE: return "delete";
	case NFT_STEP_DESTROY: return "destroy";
	case NFT_STEP_ADD: return "add";
	case NFT_STEP_NONE:
	case NFT_STEP_BATCH:
		break;
	}
	return "batch";
}

static bool sock_fail(struct nft_reply *r, enum nft_step step)
{
	r->sock = true;
	r->step = step;
	r->err = errno;
	return false;
}

bool nft_exchange(struct nft_conn *c, const void *buf, size_t len,
		  uint32_t first, uint32_t last,
		  uint32_t ack_first, uint32_t ack_last, struct nft_reply *r)
{
	size_t want = (size_t)(ack_last - ack_first) + 1, got = 0;

	r->sock = false;
	r->step = NFT_STEP_NONE;
	r->err = 0;
	r->err_seq = 0;
	r->msg[0] = '\0';
	if (mnl_socket_sendto(c->nl, buf, len) < 0)
		return sock_fail(r, NFT_STEP_SEND);
	while (got < want) {
		const struct nlmsghdr *nlh = (const void *)c->in;
		ssize_t n = mnl_socket_recvfrom(c->nl, c->in, sizeof(c->in));
		int rest = (int)n;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sock_fail(r, NFT_STEP_RECEIVE);
		for (; mnl_nlmsg_ok(nlh, rest); nlh = mnl_nlmsg_next(nlh, &rest)) {
			/* Answers to an exchange given up on (a timeout)
			 * carry older seqs: skip them. */
			if (nlh->nlmsg_pid != c->portid ||
			    !seq_in(nlh->nlmsg_seq, first, last))
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				int k = on_ack(nlh, ack_first, ack_last, r);

				if (k < 0)
					return false;
				got += (size_t)k;
			} else if (nlh->nlmsg_type >= NLMSG_MIN_TYPE &&
				   r->data_cb) {
				r->data_cb(nlh, r->data);
			}
		}
	}
	return r->err == 0;
}

/* The keys of a request, each distinct once, as the set stores them. */
struct keys {
	uint8_t k[NFT_MAX_ELEMENTS][NFT_KEY_MAX];
	size_t n, len;
};

static void make_keys(struct keys *k, const struct nft_set_ref *s,
		      const struct nft_element *el, size_t n)
{
	size_t alen = s->af == AF_INET6 ? 16 : 4;

	/* inet_service is big-endian and, in a concatenation, padded to
	 * the 4-byte register. */
	k->len = s->kind == NFT_SET_ADDR ? alen : alen + 4;
	k->n = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t key[NFT_KEY_MAX] = { 0 };
		bool dup = false;

		memcpy(key, el[i].addr, alen);
		if (s->kind == NFT_SET_ADDR_PORT) {
			key[alen] = (uint8_t)(el[i].port >> 8);
			key[alen + 1] = (uint8_t)el[i].port;
		}
		for (size_t j = 0; j < k->n && !dup; j++)
			dup = memcmp(k->k[j], key, k->len) == 0;
		if (!dup)
			memcpy(k->k[k->n++], key, k->len);
	}
}

/* A set element message for s; NLM_F_ACK is always added to flags. */
static struct nlmsghdr *elem_msg(void *buf, uint16_t type, int proto,
				 uint16_t flags, uint32_t seq,
				 const struct nft_set_ref *s)
{
	struct nlmsghdr *nlh;

	nlh = nftnl_nlmsg_build_hdr(buf, type, (uint16_t)proto,
				    flags | NLM_F_ACK, seq);
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, s->table);
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, s->set);
	return nlh;
}

/*
 * One element of a list: its key, a timeout when timeout_ms is not 0 and an
 * expiration equal to it when expiration is set.
 */
static void put_element(struct nlmsghdr *nlh, const uint8_t *key, size_t len,
			uint32_t timeout_ms, bool expiration)
{
	struct nlattr *el, *k;

	el = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
	k = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);
	mnl_attr_put(nlh, NFTA_DATA_VALUE, len, key);
	mnl_attr_nest_end(nlh, k);
	if (timeout_ms)
		mnl_attr_put_u64(nlh, NFTA_SET_ELEM_TIMEOUT, htobe64(timeout_ms));
	if (expiration)
		mnl_attr_put_u64(nlh, NFTA_SET_ELEM_EXPIRATION,
				 htobe64(timeout_ms));
	mnl_attr_nest_end(nlh, el);
}

/* The element list: key i for each i with pick[i], all when pick is NULL. */
static void put_elements(struct nlmsghdr *nlh, const struct keys *k,
			 const bool *pick, uint32_t timeout_ms, bool expiration)
{
	struct nlattr *list;

	list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
	for (size_t i = 0; i < k->n; i++)
		if (!pick || pick[i])
			put_element(nlh, k->k[i], k->len, timeout_ms,
				    expiration);
	mnl_attr_nest_end(nlh, list);
}

/*
 * Which keys the set holds now: one GETSETELEM each. These are plain
 * requests, not a batch, so ENOENT costs nothing. The kernel answers all
 * the requests of one write before we read a byte, so a write carries
 * NFT_GET_CHUNK of them: their answers (a few KiB each, in truesize) stay
 * well inside the socket's default receive buffer.
 */
#define NFT_GET_CHUNK 16

static bool find_keys(struct nft_conn *c, const struct nft_set_ref *s,
		      int proto, const struct keys *k, bool *found,
		      struct nft_reply *r)
{
	int errs[NFT_MAX_ELEMENTS];
	size_t i = 0;

	while (i < k->n) {
		size_t start = i, off = 0;
		uint32_t first = c->seq;

		/* each GET < 1024 bytes (names < 256, a key): out holds 16 */
		for (; i < k->n && i - start < NFT_GET_CHUNK; i++) {
			struct nlmsghdr *nlh;
			struct nlattr *list;

			nlh = elem_msg(c->out + off, NFT_MSG_GETSETELEM, proto,
				       0, c->seq++, s);
			list = mnl_attr_nest_start(nlh,
						   NFTA_SET_ELEM_LIST_ELEMENTS);
			put_element(nlh, k->k[i], k->len, 0, false);
			mnl_attr_nest_end(nlh, list);
			off += NLMSG_ALIGN(nlh->nlmsg_len);
		}
		r->errs = errs + start;
		nft_exchange(c, c->out, off, first, c->seq - 1, first,
			     c->seq - 1, r);
		r->errs = NULL;
		if (r->sock)
			return false;
		for (size_t j = start; j < i; j++) {
			if (errs[j] && errs[j] != ENOENT) {
				r->err = errs[j];
				r->err_seq = first + (uint32_t)(j - start);
				r->step = NFT_STEP_LOOKUP;
				return false;
			}
			found[j] = errs[j] == 0;
		}
	}
	r->err = 0;
	return true;
}

/*
 * One transaction: when remove_type is not 0, a message of that type for
 * the keys picked by remove (all when NULL), then NEWSETELEM for every key.
 * On failure r->step names the step the kernel refused.
 */
static bool send_batch(struct nft_conn *c, const struct nft_set_ref *s,
		       int proto, const struct keys *k, uint16_t remove_type,
		       const bool *remove, uint32_t timeout_ms, bool expiration,
		       struct nft_reply *r)
{
	struct mnl_nlmsg_batch *b;
	struct nlmsghdr *nlh;
	uint32_t first = c->seq, ack_first, remove_seq = 0;
	bool fits = true;

	if (!(b = mnl_nlmsg_batch_start(c->out, NFT_BATCH_LIMIT))) {
		r->sock = true;
		r->step = NFT_STEP_BATCH;
		r->err = errno;
		return false;
	}
	nftnl_batch_begin(mnl_nlmsg_batch_current(b), c->seq++);
	fits &= mnl_nlmsg_batch_next(b);
	ack_first = c->seq;
	if (remove_type) {
		remove_seq = c->seq;
		nlh = elem_msg(mnl_nlmsg_batch_current(b), remove_type, proto,
			       0, c->seq++, s);
		put_elements(nlh, k, remove, 0, false);
		fits &= mnl_nlmsg_batch_next(b);
	}
	/* No NLM_F_EXCL: an element already there is not an error. */
	nlh = elem_msg(mnl_nlmsg_batch_current(b), NFT_MSG_NEWSETELEM, proto,
		       NLM_F_CREATE, c->seq++, s);
	put_elements(nlh, k, NULL, timeout_ms, expiration);
	fits &= mnl_nlmsg_batch_next(b);
	nftnl_batch_end(mnl_nlmsg_batch_current(b), c->seq++);
	fits &= mnl_nlmsg_batch_next(b);

	if (!fits) {
		/* NFT_BATCH_LIMIT is sized for NFT_MAX_ELEMENTS */
		r->sock = false;
		r->step = NFT_STEP_BATCH;
		r->err = EMSGSIZE;
		mnl_nlmsg_batch_stop(b);
		return false;
	}
	nft_exchange(c, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b),
		     first, c->seq - 1, ack_first, c->seq - 2, r);
	mnl_nlmsg_batch_stop(b);
	if (r->sock || !r->err)
		return !r->err;
	if (remove_type && r->err_seq == remove_seq)
		r->step = remove_type == NFT_MSG_DELSETELEM ? NFT_STEP_DELETE :
							   NFT_STEP_DESTROY;
	else if (seq_in(r->err_seq, ack_first, c->seq - 2))
		r->step = NFT_STEP_ADD;
	else
		r->step = NFT_STEP_BATCH;
	return false;
}

/* Delete the keys the set holds, then add all, in one transaction. */
static bool replace(struct nft_conn *c, const struct nft_set_ref *s,
		    int proto, const struct keys *k, uint32_t timeout_ms,
		    struct nft_reply *r)
{
	bool found[NFT_MAX_ELEMENTS], any = false;

	if (!find_keys(c, s, proto, k, found, r))
		return false;
	for (size_t i = 0; i < k->n; i++)
		any |= found[i];
	return send_batch(c, s, proto, k, any ? NFT_MSG_DELSETELEM : 0,
			  found, timeout_ms, false, r);
}

static bool refresh(struct nft_conn *c, const struct nft_set_ref *s,
		    int proto, const struct keys *k, uint32_t timeout_ms,
		    struct nft_reply *r)
{
	switch (c->refresh) {
	case NFT_REFRESH_EXPIRATION:
		return send_batch(c, s, proto, k, 0, NULL, timeout_ms, true, r);
	case NFT_REFRESH_DESTROY:
		return send_batch(c, s, proto, k, c->destroy_type, NULL,
				  timeout_ms, false, r);
	case NFT_REFRESH_REPLACE:
		break;
	}
	return replace(c, s, proto, k, timeout_ms, r);
}

static bool open_args_ok(const struct nft_set_ref *s, size_t n,
			 uint32_t timeout_ms, int *proto,
			 char *err, size_t err_len)
{
	const char *why = NULL;

	if ((*proto = nft_family_proto(s->family)) < 0)
		why = "unknown family";
	else if (!nft_names_ok(s))
		why = "table or set name empty or too long";
	else if (s->af != AF_INET && s->af != AF_INET6)
		why = "address family is neither AF_INET nor AF_INET6";
	else if (n > NFT_MAX_ELEMENTS)
		why = "too many elements at once (at most "
		      NFT_STR(NFT_MAX_ELEMENTS) ")";
	else if (!timeout_ms)
		why = "timeout of 0 ms";
	if (why)
		snprintf(err, err_len, "set %s %s %s: %s",
			 s->family, s->table, s->set, why);
	return !why;
}

/*
 * "set inet postern allow4: add 3 elements: No such file or directory; ..."
 * for a step the kernel refused, "set ...: netlink send: ..." for the
 * socket, "set ...: batch: ..." for the transaction as a whole.
 */
static void open_error(const struct nft_set_ref *s, const struct nft_reply *r,
		       size_t n, char *err, size_t err_len)
{
	const char *op = nft_step_name(r->step);
	bool whole = r->sock || r->step == NFT_STEP_BATCH ||
		     r->step == NFT_STEP_NONE;
	bool gone = r->err == ENOENT && (r->step == NFT_STEP_ADD ||
					 r->step == NFT_STEP_DESTROY);
	const char *hint = "";
	char what[64];

	if (gone)
		hint = "; was the set or its table deleted since posternd "
		       "started?";
	else if (r->err == ENFILE && r->step == NFT_STEP_ADD)
		hint = "; the set is full: raise its size or leave it unset";
	else if (r->err == EINVAL && !whole)
		hint = "; was the set recreated with another type since "
		       "posternd started?";

	if (whole)
		snprintf(what, sizeof(what), "%s", op);
	else
		snprintf(what, sizeof(what), "%s %zu element%s", op, n,
			 n == 1 ? "" : "s");
	snprintf(err, err_len, "set %s %s %s: %s: %s%s%s%s%s",
		 s->family, s->table, s->set, what, strerror(r->err),
		 r->msg[0] ? " (kernel: " : "", r->msg, r->msg[0] ? ")" : "",
		 hint);
}

bool nft_set_open(struct nft_conn *c, const struct nft_set_ref *s,
		  const struct nft_element *el, size_t n, uint32_t timeout_ms,
		  char *err, size_t err_len)
{
	struct nft_reply r = { 0 };
	struct keys k;
	int proto;

	if (!open_args_ok(s, n, timeout_ms, &proto, err, err_len))
		return false;
	if (n == 0)
		return true;
	make_keys(&k, s, el, n);
	/* At most: a DESTROY the kernel lacks, then REPLACE twice. */
	for (int attempt = 0; attempt < 3; attempt++) {
		enum nft_refresh how = c->refresh;

		if (refresh(c, s, proto, &k, timeout_ms, &r))
			return true;
		if (r.sock)
			break;
		if (how == NFT_REFRESH_DESTROY && r.step == NFT_STEP_DESTROY &&
		    (r.err == EINVAL || r.err == EOPNOTSUPP)) {
			/* older than its version says: costs one aborted
			 * transaction, once per connection */
			c->refresh = NFT_REFRESH_REPLACE;
			continue;
		}
		/* an element expired between our GET and the DELETE */
		if (how == NFT_REFRESH_REPLACE && r.step == NFT_STEP_DELETE &&
		    r.err == ENOENT)
			continue;
		break;
	}
	open_error(s, &r, k.n, err, err_len);
	return false;
}
