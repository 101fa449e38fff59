/*
 * nft/ against the running kernel, in a network namespace of this process's
 * own: the host's ruleset is never touched, and everything made here goes
 * away with the process. Sets are made and read back with nft(8). Needs root;
 * exits 77 (skipped) without it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "json.h"
#include "nft.h"
#include "test_util.h"

#define SKIP 77

static struct nft_conn *conn;
static enum nft_refresh kernel_refresh;	/* what nft_conn_open chose */

/* A command's standard output, malloc'd; NULL when it failed. */
static char *capture(const char *cmd)
{
	size_t len = 0, cap = 4096;
	char *out = malloc(cap);
	FILE *p = popen(cmd, "r");
	size_t n;

	assert_non_null(p);
	while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
		len += n;
		if (cap - len < 1024)
			out = realloc(out, cap *= 2);
	}
	out[len] = '\0';
	if (pclose(p) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* Feed a ruleset to nft -f -. */
static void nft_script(const char *text)
{
	FILE *p = popen("nft -f -", "w");

	assert_non_null(p);
	fputs(text, p);
	assert_int_equal(pclose(p), 0);
}

static int shell(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const enum nft_refresh strategies[] = {
	NFT_REFRESH_EXPIRATION, NFT_REFRESH_DESTROY, NFT_REFRESH_REPLACE,
};
#define N_STRATEGIES (sizeof(strategies) / sizeof(strategies[0]))

/* One element as nft -j shows it: "10.0.0.1 . 22", seconds. */
struct elem {
	char key[96];
	long timeout, expires;
};

static void val_text(const struct json *v, char *out, size_t len)
{
	const struct json *concat = v->type == JSON_OBJECT ?
				    json_get(v, "concat") : NULL;
	size_t off = 0;

	out[0] = '\0';
	if (!concat) {
		snprintf(out, len, "%s", v->text ? v->text : "?");
		return;
	}
	for (const struct json *f = concat->child; f && off < len; f = f->next)
		off += (size_t)snprintf(out + off, len - off, "%s%s",
					off ? " . " : "", f->text);
}

static long member_long(const struct json *o, const char *key)
{
	const struct json *m = json_get(o, key);

	return m && m->text ? strtol(m->text, NULL, 10) : -1;
}

/* The elements of a set, from nft -j list set; returns their count. */
static size_t list_set(const char *family, const char *table,
		       const char *set, struct elem *out, size_t max)
{
	const struct json *items, *elems = NULL;
	struct json *root;
	char cmd[1024], *text;
	size_t n = 0;

	snprintf(cmd, sizeof(cmd), "nft -j list set %s %s %s", family, table,
		 set);
	assert_non_null(text = capture(cmd));
	root = json_load(write_temp_file("set.json", text, 0600));
	free(text);
	assert_non_null(root);
	items = json_get(root, "nftables");
	for (const struct json *i = items ? items->child : NULL; i; i = i->next)
		if (json_get(i, "set"))
			elems = json_get(json_get(i, "set"), "elem");
	for (const struct json *e = elems ? elems->child : NULL;
	     e && n < max; e = e->next, n++) {
		const struct json *in = json_get(e, "elem");

		/* with a timeout: { "elem": { "val": ..., "timeout": ...,
		 * "expires": ... } }; without: the value itself */
		val_text(in ? json_get(in, "val") : e, out[n].key,
			 sizeof(out[n].key));
		out[n].timeout = in ? member_long(in, "timeout") : -1;
		out[n].expires = in ? member_long(in, "expires") : -1;
	}
	json_free(root);
	return n;
}

static const struct elem *find(const struct elem *e, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(e[i].key, key) == 0)
			return &e[i];
	return NULL;
}

static struct nft_element v4(const char *addr, uint16_t port)
{
	struct nft_element e = { .port = port };

	assert_int_equal(inet_pton(AF_INET, addr, e.addr), 1);
	return e;
}

static struct nft_element v6(const char *addr, uint16_t port)
{
	struct nft_element e = { .port = port };

	assert_int_equal(inet_pton(AF_INET6, addr, e.addr), 1);
	return e;
}

/* The command a check message proposes: everything after "with: ". */
static const char *proposed(const char *err)
{
	const char *p = strstr(err, " with: ");

	assert_non_null(p);
	return p + strlen(" with: ");
}

static void check_ok_v4_v6(void **state)
{
	/* kinds wrong on purpose: nft_set_check must fill them in */
	struct nft_set_ref s[] = {
		{ "inet", "t_ok", "a4p", AF_INET, NFT_SET_ADDR },
		{ "inet", "t_ok", "a4", AF_INET, NFT_SET_ADDR_PORT },
		{ "inet", "t_ok", "a6p", AF_INET6, NFT_SET_ADDR },
		{ "inet", "t_ok", "a6", AF_INET6, NFT_SET_ADDR_PORT },
		{ "inet", "t_ok", "ty4", AF_INET, NFT_SET_ADDR },
		{ "ip", "t_ok", "a4p", AF_INET, NFT_SET_ADDR },
		{ "ip6", "t_ok", "a6", AF_INET6, NFT_SET_ADDR_PORT },
	};
	const enum nft_set_kind want[] = {
		NFT_SET_ADDR_PORT, NFT_SET_ADDR, NFT_SET_ADDR_PORT, NFT_SET_ADDR,
		NFT_SET_ADDR_PORT, NFT_SET_ADDR_PORT, NFT_SET_ADDR,
	};
	char err[512];

	(void)state;
	nft_script(
	    "table inet t_ok {\n"
	    " set a4p { type ipv4_addr . inet_service; flags timeout; }\n"
	    " set a4 { type ipv4_addr; flags timeout; }\n"
	    " set a6p { type ipv6_addr . inet_service; flags timeout; }\n"
	    " set a6 { type ipv6_addr; flags timeout; }\n"
	    " set ty4 { typeof ip saddr . tcp dport; flags timeout; }\n"
	    "}\n"
	    "table ip t_ok {\n"
	    " set a4p { type ipv4_addr . inet_service; flags timeout; }\n"
	    "}\n"
	    "table ip6 t_ok {\n"
	    " set a6 { type ipv6_addr; flags timeout,dynamic; }\n"
	    "}\n");
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		err[0] = '\0';
		if (!nft_set_check(conn, &s[i], err, sizeof(err)))
			fail_msg("%s", err);
		assert_int_equal(s[i].kind, want[i]);
	}
}

static void check_missing_table(void **state)
{
	struct nft_set_ref s = { "inet", "t_nosuch", "allow4", AF_INET, 0 };
	char err[512];

	(void)state;
	assert_false(nft_set_check(conn, &s, err, sizeof(err)));
	assert_string_equal(err,
	    "set inet t_nosuch allow4 not found: no table inet t_nosuch; "
	    "create them with: nft add table inet t_nosuch && "
	    "nft add set inet t_nosuch allow4 "
	    "'{ type ipv4_addr . inet_service; flags timeout; }'");
	/* the command is exact: run it and the check passes */
	assert_int_equal(shell(proposed(err)), 0);
	assert_true(nft_set_check(conn, &s, err, sizeof(err)));
	assert_int_equal(s.kind, NFT_SET_ADDR_PORT);
}

static void check_missing_set(void **state)
{
	struct nft_set_ref s = { "inet", "t_ms", "allow6", AF_INET6, 0 };
	char err[512];

	(void)state;
	nft_script("table inet t_ms { }\n");
	assert_false(nft_set_check(conn, &s, err, sizeof(err)));
	assert_string_equal(err,
	    "set inet t_ms allow6 not found; create it with: "
	    "nft add set inet t_ms allow6 "
	    "'{ type ipv6_addr . inet_service; flags timeout; }'");
	assert_int_equal(shell(proposed(err)), 0);
	assert_true(nft_set_check(conn, &s, err, sizeof(err)));
	assert_int_equal(s.kind, NFT_SET_ADDR_PORT);
}

static void check_no_timeout(void **state)
{
	struct nft_set_ref p = { "inet", "t_nt", "p4", AF_INET, 0 };
	struct nft_set_ref a = { "inet", "t_nt", "a4", AF_INET, 0 };
	char err[512];

	(void)state;
	nft_script("table inet t_nt {\n"
		   " set p4 { type ipv4_addr . inet_service; }\n"
		   " set a4 { type ipv4_addr; }\n"
		   "}\n");
	assert_false(nft_set_check(conn, &p, err, sizeof(err)));
	assert_string_equal(err,
	    "set inet t_nt p4 has no flags timeout, so its elements would "
	    "never expire; recreate it with: nft delete set inet t_nt p4 && "
	    "nft add set inet t_nt p4 "
	    "'{ type ipv4_addr . inet_service; flags timeout; }'");
	assert_int_equal(shell(proposed(err)), 0);
	assert_true(nft_set_check(conn, &p, err, sizeof(err)));

	/* the proposal keeps an address-only set address-only */
	assert_false(nft_set_check(conn, &a, err, sizeof(err)));
	assert_non_null(strstr(err, "has no flags timeout"));
	assert_non_null(strstr(err, "'{ type ipv4_addr; flags timeout; }'"));
	assert_int_equal(shell(proposed(err)), 0);
	assert_true(nft_set_check(conn, &a, err, sizeof(err)));
	assert_int_equal(a.kind, NFT_SET_ADDR);
}

static void check_wrong_type(void **state)
{
	static const struct {
		const char *set;
		int af;
		const char *says;
	} cases[] = {
		{ "w_eth", AF_INET, "has type ether_addr; posternd needs "
		  "ipv4_addr . inet_service (or ipv4_addr, which opens every "
		  "port)" },
		{ "w_aa", AF_INET, "has type ipv4_addr . ipv4_addr;" },
		{ "w_pp", AF_INET, "has type ipv4_addr . inet_proto . "
		  "inet_service;" },
		{ "w_mk", AF_INET, "has type mark;" },
		{ "w_ifn", AF_INET, "has type ifname;" },
		{ "w_icmp", AF_INET, "has type icmp_type;" },
		/* a v4 set where a v6 one is expected */
		{ "w_v4", AF_INET6, "has type ipv4_addr . inet_service; posternd "
		  "needs ipv6_addr . inet_service (or ipv6_addr" },
		{ "w_map", AF_INET, "is a map, not a set;" },
		{ "w_iv", AF_INET, "has flags interval;" },
		{ "w_cst", AF_INET, "has flags constant;" },
	};
	char err[512];

	(void)state;
	nft_script(
	    "table inet t_wt {\n"
	    " set w_eth { type ether_addr; flags timeout; }\n"
	    " set w_aa { type ipv4_addr . ipv4_addr; flags timeout; }\n"
	    " set w_pp { type ipv4_addr . inet_proto . inet_service; "
	    "flags timeout; }\n"
	    " set w_mk { type mark; flags timeout; }\n"
	    " set w_ifn { type ifname; flags timeout; }\n"
	    " set w_icmp { type icmp_type; flags timeout; }\n"
	    " set w_v4 { type ipv4_addr . inet_service; flags timeout; }\n"
	    " map w_map { type ipv4_addr . inet_service : verdict; "
	    "flags timeout; }\n"
	    " set w_iv { type ipv4_addr; flags interval, timeout; }\n"
	    " set w_cst { type ipv4_addr; flags constant; }\n"
	    "}\n");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct nft_set_ref s = { "inet", "t_wt", cases[i].set,
					 cases[i].af, 0 };
		char head[64];

		assert_false(nft_set_check(conn, &s, err, sizeof(err)));
		snprintf(head, sizeof(head), "set inet t_wt %s ", cases[i].set);
		if (strncmp(err, head, strlen(head)) != 0 ||
		    !strstr(err, cases[i].says) ||
		    !strstr(err, "; recreate it with: nft delete set "))
			fail_msg("%s: %s", cases[i].set, err);
	}
}

static void check_bad_family(void **state)
{
	struct nft_set_ref s = { "inet4", "t", "s", AF_INET, 0 };
	char err[512];

	(void)state;
	assert_false(nft_set_check(conn, &s, err, sizeof(err)));
	assert_string_equal(err, "set inet4 t s: unknown family inet4 "
			    "(ip, ip6, inet, arp, bridge, netdev)");
}

static void open_three_ports(void **state)
{
	struct nft_element el[] = {
		v4("192.0.2.7", 22), v4("192.0.2.7", 443), v4("192.0.2.7", 8443),
	};
	struct elem got[8];
	char err[512], set[32];

	(void)state;
	nft_script("table inet t_3p { }\n");
	for (size_t i = 0; i < N_STRATEGIES; i++) {
		struct nft_set_ref s = { "inet", "t_3p", set, AF_INET, 0 };
		char cmd[256];
		size_t n;

		if (!nft_refresh_supported(strategies[i]))
			continue;
		snprintf(set, sizeof(set), "s_%s",
			 nft_refresh_name(strategies[i]));
		snprintf(cmd, sizeof(cmd), "nft add set inet t_3p %s "
			 "'{ type ipv4_addr . inet_service; flags timeout; }'",
			 set);
		assert_int_equal(shell(cmd), 0);
		assert_true(nft_set_check(conn, &s, err, sizeof(err)));
		nft_conn_set_refresh(conn, strategies[i]);
		if (!nft_set_open(conn, &s, el, 3, 30000, err, sizeof(err)))
			fail_msg("%s: %s", set, err);
		n = list_set("inet", "t_3p", set, got, 8);
		assert_int_equal(n, 3);
		for (size_t j = 0; j < 3; j++) {
			const char *keys[] = { "192.0.2.7 . 22",
				"192.0.2.7 . 443", "192.0.2.7 . 8443" };
			const struct elem *e = find(got, n, keys[j]);

			assert_non_null(e);
			assert_int_equal(e->timeout, 30);
			assert_in_range(e->expires, 28, 30);
		}
	}
}

static void open_v6(void **state)
{
	struct nft_set_ref p = { "inet", "t_v6", "p6", AF_INET6, 0 };
	struct nft_set_ref a = { "inet", "t_v6", "a6", AF_INET6, 0 };
	struct nft_element el[] = {
		v6("2001:db8::1", 22), v6("2001:db8::1", 8443),
	};
	struct elem got[4];
	char err[512];

	(void)state;
	nft_script("table inet t_v6 {\n"
		   " set p6 { type ipv6_addr . inet_service; flags timeout; }\n"
		   " set a6 { type ipv6_addr; flags timeout; }\n"
		   "}\n");
	assert_true(nft_set_check(conn, &p, err, sizeof(err)));
	assert_true(nft_set_check(conn, &a, err, sizeof(err)));
	if (!nft_set_open(conn, &p, el, 2, 20000, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(list_set("inet", "t_v6", "p6", got, 4), 2);
	assert_non_null(find(got, 2, "2001:db8::1 . 22"));
	assert_non_null(find(got, 2, "2001:db8::1 . 8443"));
	assert_int_equal(got[0].timeout, 20);
	if (!nft_set_open(conn, &a, el, 2, 20000, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(list_set("inet", "t_v6", "a6", got, 4), 1);
	assert_string_equal(got[0].key, "2001:db8::1");
}

static void open_addr_only_once(void **state)
{
	struct nft_set_ref s = { "ip", "t_ao", "a4", AF_INET, 0 };
	struct nft_element el[] = {
		v4("198.51.100.9", 22), v4("198.51.100.9", 80),
		v4("198.51.100.9", 443),
	};
	struct elem got[4];
	char err[512];

	(void)state;
	nft_script("table ip t_ao {\n"
		   " set a4 { type ipv4_addr; flags timeout; }\n"
		   "}\n");
	assert_true(nft_set_check(conn, &s, err, sizeof(err)));
	assert_int_equal(s.kind, NFT_SET_ADDR);
	if (!nft_set_open(conn, &s, el, 3, 30000, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(list_set("ip", "t_ao", "a4", got, 4), 1);
	assert_string_equal(got[0].key, "198.51.100.9");
	assert_int_equal(got[0].timeout, 30);
}

/*
 * The point of the strategies: a re-knock moves the expiry forward, with the
 * same timeout (what a plain re-add leaves alone) and with another one. All
 * strategies the kernel has, side by side, so that one sleep serves them all.
 */
static void reopen_extends_expiry(void **state)
{
	struct nft_element same = v4("203.0.113.1", 22);
	struct nft_element other = v4("203.0.113.2", 22);
	struct elem before[N_STRATEGIES][2], after[2];
	char err[512], set[N_STRATEGIES][32];
	struct nft_set_ref s[N_STRATEGIES];

	(void)state;
	nft_script("table inet t_rx { }\n");
	for (size_t i = 0; i < N_STRATEGIES; i++) {
		char cmd[256];

		snprintf(set[i], sizeof(set[i]), "s_%s",
			 nft_refresh_name(strategies[i]));
		s[i] = (struct nft_set_ref){ "inet", "t_rx", set[i], AF_INET, 0 };
		if (!nft_refresh_supported(strategies[i]))
			continue;
		snprintf(cmd, sizeof(cmd), "nft add set inet t_rx %s "
			 "'{ type ipv4_addr . inet_service; flags timeout; }'",
			 set[i]);
		assert_int_equal(shell(cmd), 0);
		assert_true(nft_set_check(conn, &s[i], err, sizeof(err)));
		nft_conn_set_refresh(conn, strategies[i]);
		assert_true(nft_set_open(conn, &s[i], &same, 1, 30000, err,
					 sizeof(err)));
		assert_true(nft_set_open(conn, &s[i], &other, 1, 30000, err,
					 sizeof(err)));
	}
	sleep(2);
	for (size_t i = 0; i < N_STRATEGIES; i++) {
		const struct elem *b, *a;

		if (!nft_refresh_supported(strategies[i]))
			continue;
		assert_int_equal(list_set("inet", "t_rx", set[i], before[i], 2), 2);
		nft_conn_set_refresh(conn, strategies[i]);
		assert_true(nft_set_open(conn, &s[i], &same, 1, 30000, err,
					 sizeof(err)));
		assert_true(nft_set_open(conn, &s[i], &other, 1, 40000, err,
					 sizeof(err)));
		assert_int_equal(list_set("inet", "t_rx", set[i], after, 2), 2);

		b = find(before[i], 2, "203.0.113.1 . 22");
		a = find(after, 2, "203.0.113.1 . 22");
		assert_non_null(b);
		assert_non_null(a);
		print_message("%-10s same timeout: expires %lds before, %lds "
			      "after\n", nft_refresh_name(strategies[i]),
			      b->expires, a->expires);
		assert_true(a->expires > b->expires + 1);
		assert_int_equal(a->timeout, 30);

		b = find(before[i], 2, "203.0.113.2 . 22");
		a = find(after, 2, "203.0.113.2 . 22");
		assert_non_null(b);
		assert_non_null(a);
		assert_int_equal(a->timeout, 40);
		assert_true(a->expires >= 38);
	}
}

/* A re-knock right after a knock: whatever the strategy, no batch fails. */
static void open_twice_in_a_row(void **state)
{
	struct nft_element el[] = { v4("192.0.2.50", 22), v4("192.0.2.50", 23) };
	struct elem got[4];
	char err[512], set[32];

	(void)state;
	nft_script("table inet t_2x { }\n");
	for (size_t i = 0; i < N_STRATEGIES; i++) {
		struct nft_set_ref s = { "inet", "t_2x", set, AF_INET, 0 };
		char cmd[256];

		if (!nft_refresh_supported(strategies[i]))
			continue;
		snprintf(set, sizeof(set), "s_%s",
			 nft_refresh_name(strategies[i]));
		snprintf(cmd, sizeof(cmd), "nft add set inet t_2x %s "
			 "'{ type ipv4_addr . inet_service; flags timeout; }'",
			 set);
		assert_int_equal(shell(cmd), 0);
		assert_true(nft_set_check(conn, &s, err, sizeof(err)));
		nft_conn_set_refresh(conn, strategies[i]);
		for (int k = 0; k < 5; k++)
			if (!nft_set_open(conn, &s, el, 2, 10000, err,
					  sizeof(err)))
				fail_msg("%s, open %d: %s", set, k, err);
		/* one old, one new */
		el[1].port = 24;
		if (!nft_set_open(conn, &s, el, 2, 10000, err, sizeof(err)))
			fail_msg("%s: %s", set, err);
		el[1].port = 23;
		assert_int_equal(list_set("inet", "t_2x", set, got, 4), 3);
		assert_int_equal(nft_conn_refresh(conn), strategies[i]);
	}
}

static void set_deleted_after_check(void **state)
{
	struct nft_set_ref gone = { "inet", "t_del", "gone4", AF_INET, 0 };
	struct nft_set_ref kept = { "inet", "t_del", "kept4", AF_INET, 0 };
	struct nft_element el = v4("192.0.2.99", 22);
	struct elem got[2];
	char err[512];

	(void)state;
	nft_script("table inet t_del {\n"
		   " set gone4 { type ipv4_addr . inet_service; flags timeout; }\n"
		   " set kept4 { type ipv4_addr . inet_service; flags timeout; }\n"
		   "}\n");
	assert_true(nft_set_check(conn, &gone, err, sizeof(err)));
	assert_true(nft_set_check(conn, &kept, err, sizeof(err)));
	assert_int_equal(shell("nft delete set inet t_del gone4"), 0);
	for (size_t i = 0; i < N_STRATEGIES; i++) {
		if (!nft_refresh_supported(strategies[i]))
			continue;
		nft_conn_set_refresh(conn, strategies[i]);
		err[0] = '\0';
		assert_false(nft_set_open(conn, &gone, &el, 1, 10000, err,
					  sizeof(err)));
		print_message("%-10s %s\n", nft_refresh_name(strategies[i]),
			      err);
		assert_non_null(strstr(err, "set inet t_del gone4: "));
		assert_non_null(strstr(err, "No such file or directory"));
		/* and the connection goes on working */
		assert_true(nft_set_open(conn, &kept, &el, 1, 10000, err,
					 sizeof(err)));
		assert_int_equal(nft_conn_refresh(conn), strategies[i]);
	}
	assert_int_equal(list_set("inet", "t_del", "kept4", got, 2), 1);
}

static void set_full(void **state)
{
	struct nft_set_ref s = { "inet", "t_full", "s4", AF_INET, 0 };
	struct nft_element el[] = {
		v4("192.0.2.1", 22), v4("192.0.2.2", 22), v4("192.0.2.3", 22),
	};
	struct elem got[4];
	char err[512];

	(void)state;
	nft_script("table inet t_full {\n"
		   " set s4 { type ipv4_addr . inet_service; flags timeout; "
		   "size 2; }\n"
		   "}\n");
	assert_true(nft_set_check(conn, &s, err, sizeof(err)));
	for (size_t i = 0; i < N_STRATEGIES; i++) {
		if (!nft_refresh_supported(strategies[i]))
			continue;
		nft_conn_set_refresh(conn, strategies[i]);
		assert_false(nft_set_open(conn, &s, el, 3, 10000, err,
					  sizeof(err)));
		assert_string_equal(err, "set inet t_full s4: add 3 elements: "
				    "Too many open files in system; the set is "
				    "full: raise its size or leave it unset");
		/* all or nothing */
		assert_int_equal(list_set("inet", "t_full", "s4", got, 4), 0);
	}
	assert_true(nft_set_open(conn, &s, el, 2, 10000, err, sizeof(err)));
	assert_int_equal(list_set("inet", "t_full", "s4", got, 4), 2);
}

static void batch_of_ten(void **state)
{
	struct nft_set_ref s = { "inet", "t_10", "s4", AF_INET, 0 };
	struct nft_element el[10];
	struct elem got[12];
	char err[512], key[64];

	(void)state;
	nft_script("table inet t_10 {\n"
		   " set s4 { type ipv4_addr . inet_service; flags timeout; }\n"
		   "}\n");
	assert_true(nft_set_check(conn, &s, err, sizeof(err)));
	for (int i = 0; i < 10; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "10.1.%d.%d", i / 2, i);
		el[i] = v4(addr, (uint16_t)(1000 + i));
	}
	for (size_t i = 0; i < N_STRATEGIES; i++) {
		if (!nft_refresh_supported(strategies[i]))
			continue;
		nft_conn_set_refresh(conn, strategies[i]);
		if (!nft_set_open(conn, &s, el, 10, 15000, err, sizeof(err)))
			fail_msg("%s", err);
		assert_int_equal(list_set("inet", "t_10", "s4", got, 12), 10);
	}
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "10.1.%d.%d . %d", i / 2, i, 1000 + i);
		assert_non_null(find(got, 10, key));
	}
}

static void open_refuses_bad_arguments(void **state)
{
	struct nft_set_ref s = { "inet", "t_args", "s4", AF_INET, 0 };
	static struct nft_element many[NFT_MAX_ELEMENTS + 1];
	char err[512];

	(void)state;
	nft_script("table inet t_args {\n"
		   " set s4 { type ipv4_addr . inet_service; flags timeout; }\n"
		   "}\n");
	assert_true(nft_set_check(conn, &s, err, sizeof(err)));
	assert_false(nft_set_open(conn, &s, many, NFT_MAX_ELEMENTS + 1, 1000,
				  err, sizeof(err)));
	assert_string_equal(err, "set inet t_args s4: too many elements at "
			    "once (at most 256)");
	assert_false(nft_set_open(conn, &s, many, 1, 0, err, sizeof(err)));
	assert_string_equal(err, "set inet t_args s4: timeout of 0 ms");
	/* nothing to open is not an error */
	assert_true(nft_set_open(conn, &s, many, 0, 1000, err, sizeof(err)));
}

/*
 * The most a call takes, with the longest names the kernel allows: the
 * batch buffer's bound, and REPLACE's lookups spread over several writes.
 * Twice each: all new, then all there.
 */
static void largest_batch_longest_names(void **state)
{
	static struct nft_element el[NFT_MAX_ELEMENTS];
	char table[256], set[256], script[1024], err[1024];
	static struct elem got[NFT_MAX_ELEMENTS + 1];

	(void)state;
	memset(table, 'T', 255);
	table[255] = '\0';
	memset(set, 'S', 255);
	set[255] = '\0';
	for (size_t i = 0; i < N_STRATEGIES; i++) {
		struct nft_set_ref s = { "inet", table, set, AF_INET, 0 };

		if (!nft_refresh_supported(strategies[i]))
			continue;
		set[0] = (char)('a' + i);
		snprintf(script, sizeof(script), "table inet %s {\n set %s "
			 "{ type ipv4_addr . inet_service; flags timeout; }\n}\n",
			 table, set);
		nft_script(script);
		assert_true(nft_set_check(conn, &s, err, sizeof(err)));
		nft_conn_set_refresh(conn, strategies[i]);
		for (int i_el = 0; i_el < NFT_MAX_ELEMENTS; i_el++)
			el[i_el] = (struct nft_element){
				.addr = { 10, 9, (uint8_t)i, (uint8_t)i_el },
				.port = 22 };
		for (int round = 0; round < 2; round++)
			if (!nft_set_open(conn, &s, el, NFT_MAX_ELEMENTS, 10000,
					  err, sizeof(err)))
				fail_msg("%s, round %d: %s",
					 nft_refresh_name(strategies[i]), round,
					 err);
		assert_int_equal(list_set("inet", table, set, got,
					  NFT_MAX_ELEMENTS + 1),
				 NFT_MAX_ELEMENTS);
	}
}

/* A kernel without DESTROYSETELEM, played by a message type no kernel has:
 * the first open falls back to REPLACE and succeeds. */
static void destroy_rejected_falls_back(void **state)
{
	struct nft_set_ref s = { "inet", "t_fb", "s4", AF_INET, 0 };
	struct nft_element el = v4("192.0.2.77", 22);
	struct nft_conn *c;
	struct elem got[2];
	char err[512];

	(void)state;
	nft_script("table inet t_fb {\n"
		   " set s4 { type ipv4_addr . inet_service; flags timeout; }\n"
		   "}\n");
	assert_non_null(c = nft_conn_open(err, sizeof(err)));
	assert_true(nft_set_check(c, &s, err, sizeof(err)));
	nft_conn_set_refresh(c, NFT_REFRESH_DESTROY);
	nft_conn_set_destroy_type(c, 250);
	if (!nft_set_open(c, &s, &el, 1, 10000, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(nft_conn_refresh(c), NFT_REFRESH_REPLACE);
	assert_true(nft_set_open(c, &s, &el, 1, 10000, err, sizeof(err)));
	assert_int_equal(list_set("inet", "t_fb", "s4", got, 2), 1);
	nft_conn_close(c);
}

/* Each test starts with the strategy nft_conn_open chose. */
static int default_refresh(void **state)
{
	(void)state;
	nft_conn_set_refresh(conn, kernel_refresh);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(check_ok_v4_v6, default_refresh),
		cmocka_unit_test_setup(check_missing_table, default_refresh),
		cmocka_unit_test_setup(check_missing_set, default_refresh),
		cmocka_unit_test_setup(check_no_timeout, default_refresh),
		cmocka_unit_test_setup(check_wrong_type, default_refresh),
		cmocka_unit_test_setup(check_bad_family, default_refresh),
		cmocka_unit_test_setup(open_three_ports, default_refresh),
		cmocka_unit_test_setup(open_v6, default_refresh),
		cmocka_unit_test_setup(open_addr_only_once, default_refresh),
		cmocka_unit_test_setup(reopen_extends_expiry, default_refresh),
		cmocka_unit_test_setup(open_twice_in_a_row, default_refresh),
		cmocka_unit_test_setup(set_deleted_after_check, default_refresh),
		cmocka_unit_test_setup(set_full, default_refresh),
		cmocka_unit_test_setup(batch_of_ten, default_refresh),
		cmocka_unit_test_setup(open_refuses_bad_arguments, default_refresh),
		cmocka_unit_test_setup(largest_batch_longest_names, default_refresh),
		cmocka_unit_test_setup(destroy_rejected_falls_back, default_refresh),
	};
	char err[512];
	int rc;

	if (geteuid() != 0) {
		printf("test_nft: skipped: needs root, to make a network "
		       "namespace and change nf_tables in it\n");
		return SKIP;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		printf("test_nft: skipped: unshare(CLONE_NEWNET): %s\n",
		       strerror(errno));
		return SKIP;
	}
	if (shell("nft list ruleset >/dev/null 2>&1") != 0) {
		printf("test_nft: skipped: nft(8) missing or nf_tables "
		       "unavailable\n");
		return SKIP;
	}
	if (!(conn = nft_conn_open(err, sizeof(err)))) {
		printf("test_nft: %s\n", err);
		return 1;
	}
	kernel_refresh = nft_conn_refresh(conn);
	printf("test_nft: kernel refresh strategy: %s\n",
	       nft_refresh_name(kernel_refresh));
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	nft_conn_close(conn);
	return rc;
}
