/*
 * nft_set_check: read a set's description once, at start, and say in nft's
 * own words what to create when it will not do.
 */
#include "nft_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <libnftnl/common.h>
#include <libnftnl/set.h>

/* nft's datatype numbers (its datatype.h); a concatenation packs one per
 * TYPE_BITS, the first field highest. The kernel keeps them for nft. */
#define TYPE_BITS 6
#define TYPE_IPADDR 7
#define TYPE_IP6ADDR 8
#define TYPE_INET_SERVICE 13

static const char *const type_names[] = {
	"invalid", "verdict", "nf_proto", "bitmask", "integer", "string",
	"ll_addr", "ipv4_addr", "ipv6_addr", "ether_addr", "ether_type",
	"arp_op", "inet_proto", "inet_service", "icmp_type", "tcp_flag",
	"dccp_pkttype", "mh_type", "time", "mark", "iface_index",
	"iface_type", "realm", "classid", "uid", "gid", "ct_state", "ct_dir",
	"ct_status", "icmpv6_type", "ct_label", "pkt_type", "icmp_code",
	"icmpv6_code", "icmpx_code", "devgroup", "dscp", "ecn",
	"fib_addrtype", "boolean", "ct_event", "ifname", "igmp_type",
};

/* "ipv4_addr . ipv4_addr" from a key type; "#N" for a field not named
 * above. */
static void type_name(uint32_t type, uint32_t key_len, char *out, size_t len)
{
	uint32_t field[32 / TYPE_BITS + 1];
	size_t n = 0, off = 0;

	out[0] = '\0';
	for (; type && n < sizeof(field) / sizeof(field[0]); type >>= TYPE_BITS)
		field[n++] = type & ((1u << TYPE_BITS) - 1);
	if (!n)
		snprintf(out, len, "unknown (a %u-byte key)", key_len);
	while (n-- > 0 && off < len) {
		uint32_t f = field[n];
		const char *name = f < sizeof(type_names) / sizeof(type_names[0])
				   ? type_names[f] : NULL;
		int w;

		if (name)
			w = snprintf(out + off, len - off, "%s%s",
				     off ? " . " : "", name);
		else
			w = snprintf(out + off, len - off, "%s#%u",
				     off ? " . " : "", f);
		off += w > 0 ? (size_t)w : 0;
	}
}

static uint32_t addr_type(int af)
{
	return af == AF_INET6 ? TYPE_IP6ADDR : TYPE_IPADDR;
}

static uint32_t addr_len(int af)
{
	return af == AF_INET6 ? 16 : 4;
}

static const char *want_type(int af, enum nft_set_kind kind)
{
	if (af == AF_INET6)
		return kind == NFT_SET_ADDR ? "ipv6_addr" :
					      "ipv6_addr . inet_service";
	return kind == NFT_SET_ADDR ? "ipv4_addr" : "ipv4_addr . inet_service";
}

/* "nft add set inet postern allow4 '{ type ...; flags timeout; }'" */
static void add_set_cmd(const struct nft_set_ref *s, enum nft_set_kind kind,
			char *out, size_t len)
{
	snprintf(out, len, "nft add set %s %s %s '{ type %s; flags timeout; }'",
		 s->family, s->table, s->set, want_type(s->af, kind));
}

/* A set that has to go: the kernel cannot change a set's type or flags. */
static bool refuse(const struct nft_set_ref *s, enum nft_set_kind kind,
		   const char *why, char *err, size_t err_len)
{
	char cmd[2 * NFT_NAME_MAXLEN + 128];

	add_set_cmd(s, kind, cmd, sizeof(cmd));
	snprintf(err, err_len, "set %s %s %s %s; recreate it with: "
		 "nft delete set %s %s %s && %s",
		 s->family, s->table, s->set, why,
		 s->family, s->table, s->set, cmd);
	return false;
}

/* Which of posternd's two key layouts the set has, if any. A key type of 0
 * (a set not made by nft) is judged by its length alone. */
static bool key_kind(const struct nft_set_ref *s, uint32_t type, uint32_t len,
		     enum nft_set_kind *kind)
{
	uint32_t at = addr_type(s->af), al = addr_len(s->af);

	if ((type == ((at << TYPE_BITS) | TYPE_INET_SERVICE) || !type) &&
	    len == al + 4)
		*kind = NFT_SET_ADDR_PORT;
	else if ((type == at || !type) && len == al)
		*kind = NFT_SET_ADDR;
	else
		return false;
	return true;
}

static bool judge(struct nft_set_ref *s, const struct nftnl_set *set,
		  char *err, size_t err_len)
{
	uint32_t flags = nftnl_set_get_u32(set, NFTNL_SET_FLAGS);
	uint32_t type = nftnl_set_get_u32(set, NFTNL_SET_KEY_TYPE);
	uint32_t len = nftnl_set_get_u32(set, NFTNL_SET_KEY_LEN);
	enum nft_set_kind kind = NFT_SET_ADDR_PORT;
	char why[256], name[128];

	if (flags & (NFT_SET_MAP | NFT_SET_OBJECT))
		return refuse(s, kind, "is a map, not a set", err, err_len);
	if (!key_kind(s, type, len, &kind)) {
		type_name(type, len, name, sizeof(name));
		snprintf(why, sizeof(why), "has type %s; posternd needs %s "
			 "(or %s, which opens every port)", name,
			 want_type(s->af, NFT_SET_ADDR_PORT),
			 want_type(s->af, NFT_SET_ADDR));
		return refuse(s, NFT_SET_ADDR_PORT, why, err, err_len);
	}
	/* posternd writes single elements: no interval ends, and a
	 * constant set takes none at all */
	if (flags & NFT_SET_INTERVAL)
		return refuse(s, kind, "has flags interval", err, err_len);
	if (flags & NFT_SET_CONSTANT)
		return refuse(s, kind, "has flags constant", err, err_len);
	if (!(flags & NFT_SET_TIMEOUT))
		return refuse(s, kind, "has no flags timeout, so its elements "
			      "would never expire", err, err_len);
	s->kind = kind;
	return true;
}

static void on_set(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_set *set = data;

	if ((nlh->nlmsg_type & 0xff) == NFT_MSG_NEWSET)
		nftnl_set_nlmsg_parse(nlh, set);
}

/* Ask for one set (or, with set NULL, one table); the kernel's errno, 0
 * when it is there, -1 when the socket failed. */
static int get(struct nft_conn *c, int proto, const char *table,
	       const char *set, struct nftnl_set *into, struct nft_reply *r)
{
	struct nlmsghdr *nlh;
	uint32_t seq = c->seq++;

	nlh = nftnl_nlmsg_build_hdr(c->out, set ? NFT_MSG_GETSET :
				    NFT_MSG_GETTABLE, (uint16_t)proto,
				    NLM_F_ACK, seq);
	if (set) {
		mnl_attr_put_strz(nlh, NFTA_SET_TABLE, table);
		mnl_attr_put_strz(nlh, NFTA_SET_NAME, set);
	} else {
		mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, table);
	}
	r->data_cb = into ? on_set : NULL;
	r->data = into;
	nft_exchange(c, nlh, nlh->nlmsg_len, seq, seq, seq, seq, r);
	r->data_cb = NULL;
	if (r->sock)
		return -1;
	return r->err;
}

/* ENOENT for the set: is it the set or its whole table that is missing? */
static bool missing(struct nft_conn *c, const struct nft_set_ref *s, int proto,
		    struct nft_reply *r, char *err, size_t err_len)
{
	char cmd[2 * NFT_NAME_MAXLEN + 128];
	int e = get(c, proto, s->table, NULL, NULL, r);

	add_set_cmd(s, NFT_SET_ADDR_PORT, cmd, sizeof(cmd));
	if (e == ENOENT)
		snprintf(err, err_len, "set %s %s %s not found: no table %s %s; "
			 "create them with: nft add table %s %s && %s",
			 s->family, s->table, s->set, s->family, s->table,
			 s->family, s->table, cmd);
	else
		snprintf(err, err_len, "set %s %s %s not found; "
			 "create it with: %s",
			 s->family, s->table, s->set, cmd);
	return false;
}

static bool read_failed(const struct nft_set_ref *s,
			const struct nft_reply *r, char *err, size_t err_len)
{
	snprintf(err, err_len, "set %s %s %s: cannot read it: %s%s%s%s%s%s",
		 s->family, s->table, s->set, r->sock ? nft_step_name(r->step) : "",
		 r->sock ? ": " : "", strerror(r->err),
		 r->msg[0] ? " (kernel: " : "", r->msg, r->msg[0] ? ")" : "");
	return false;
}

bool nft_set_check(struct nft_conn *c, struct nft_set_ref *s,
		   char *err, size_t err_len)
{
	struct nft_reply r = { 0 };
	struct nftnl_set *set;
	int proto, e;
	bool ok;

	if ((proto = nft_family_proto(s->family)) < 0) {
		snprintf(err, err_len, "set %s %s %s: unknown family %s "
			 "(ip, ip6, inet, arp, bridge, netdev)",
			 s->family, s->table, s->set, s->family);
		return false;
	}
	if (!nft_names_ok(s) || (s->af != AF_INET && s->af != AF_INET6)) {
		snprintf(err, err_len, "set %s %s %s: %s", s->family, s->table,
			 s->set, nft_names_ok(s) ? "address family is neither "
			 "AF_INET nor AF_INET6" :
			 "table or set name empty or too long");
		return false;
	}
	if (!(set = nftnl_set_alloc())) {
		snprintf(err, err_len, "set %s %s %s: %s", s->family, s->table,
			 s->set, strerror(errno));
		return false;
	}
	e = get(c, proto, s->table, s->set, set, &r);
	if (e == ENOENT)
		ok = missing(c, s, proto, &r, err, err_len);
	else if (e != 0)
		ok = read_failed(s, &r, err, err_len);
	else if (!nftnl_set_is_set(set, NFTNL_SET_KEY_LEN))
		ok = snprintf(err, err_len, "set %s %s %s: the kernel's answer "
			      "has no key length", s->family, s->table,
			      s->set) < 0;
	else
		ok = judge(s, set, err, err_len);
	nftnl_set_free(set);
	return ok;
}
