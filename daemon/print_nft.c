/* posternd --print-nft: a complete, commented ruleset for this config. */
#include "print_nft.h"

#include <string.h>

#include "knock.h"

static void print_ports(FILE *f, const struct server_config *cfg)
{
	fputs("#   ", f);
	for (size_t i = 0; i < cfg->n_clients; i++) {
		const struct client_entry *c = &cfg->clients[i];

		fprintf(f, "%s%s:", i ? ", " : "", c->name);
		for (size_t j = 0; j < c->n_open; j++)
			fprintf(f, "%s%u", j ? "," : "", c->open[j]);
	}
	fputs(cfg->n_clients ? "\n" : "(no clients configured)\n", f);
}

void print_nft(FILE *f, const struct server_config *cfg)
{
	const struct knock_config *k = &cfg->knock;
	const char *fam = k->nft_family;
	bool v4 = strcmp(fam, "ip6") != 0, v6 = strcmp(fam, "ip") != 0;

	fprintf(f,
		"# nftables ruleset for posternd (%s)\n"
		"# Load it with: nft -f FILE. If you keep your own input chain,\n"
		"# copy the rules below into it instead: a packet must be accepted\n"
		"# by every base chain on the input hook, and a drop in any is final.\n"
		"#\n"
		"# Ports each client's knock opens:\n",
		cfg->path);
	print_ports(f, cfg);
	fprintf(f, "\ntable %s %s {\n", fam, k->nft_table);
	fprintf(f,
		"\t# Who knocked, and the ports they may reach. posternd adds\n"
		"\t# elements with a timeout; the kernel removes them when it ends.\n");
	if (v4)
		fprintf(f, "\tset %s {\n\t\ttype ipv4_addr . inet_service\n"
			"\t\tflags timeout\n\t}\n", k->nft_set4);
	if (v6)
		fprintf(f, "\tset %s {\n\t\ttype ipv6_addr . inet_service\n"
			"\t\tflags timeout\n\t}\n", k->nft_set6);
	fprintf(f,
		"\n\t# Per-source meters in front of the queue: the kernel, not\n"
		"\t# posternd, absorbs a flood from one address (an IPv6 /64).\n");
	if (v4)
		fprintf(f, "\tset knock_meter4 {\n\t\ttype ipv4_addr\n"
			"\t\tsize 65536\n\t\tflags dynamic, timeout\n"
			"\t\ttimeout 1m\n\t}\n");
	if (v6)
		fprintf(f, "\tset knock_meter6 {\n\t\ttype ipv6_addr\n"
			"\t\tsize 65536\n\t\tflags dynamic, timeout\n"
			"\t\ttimeout 1m\n\t}\n");
	fprintf(f,
		"\n\tchain input {\n"
		"\t\ttype filter hook input priority filter; policy drop;\n"
		"\n"
		"\t\tct state established,related accept\n"
		"\t\tct state invalid drop\n"
		"\t\tiif \"lo\" accept\n");
	if (v6)
		fprintf(f, "\t\t# IPv6 needs neighbour discovery to work at all\n"
			"\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, "
			"nd-router-advert } accept\n");
	fprintf(f, "\n\t\t# Opened by knocks: address . port, until the timeout\n");
	if (v4)
		fprintf(f, "\t\tmeta l4proto { tcp, udp } ip saddr . th dport @%s accept\n",
			k->nft_set4);
	if (v6)
		fprintf(f, "\t\tmeta l4proto { tcp, udp } ip6 saddr . th dport @%s accept\n",
			k->nft_set6);
	fprintf(f,
		"\n\t\t# Knocks: UDP %u, exactly %d bytes long (UDP length %d),\n"
		"\t\t# rate-limited per source, handed to posternd on queue %u.\n"
		"\t\t# No 'bypass': while posternd is not running the kernel\n"
		"\t\t# drops them. With it they would go on to the UDP stack,\n"
		"\t\t# whose port unreachable would show the port to a scan.\n",
		k->port, KNOCK_LEN, KNOCK_UDP_LEN, k->queue);
	if (v4)
		fprintf(f, "\t\tudp dport %u udp length %d meta nfproto ipv4 "
			"add @knock_meter4 { ip saddr limit rate 20/second burst 40 packets } "
			"queue num %u\n", k->port, KNOCK_UDP_LEN, k->queue);
	if (v6)
		fprintf(f, "\t\tudp dport %u udp length %d meta nfproto ipv6 "
			"add @knock_meter6 { ip6 saddr & ffff:ffff:ffff:ffff:: "
			"limit rate 20/second burst 40 packets } queue num %u\n",
			k->port, KNOCK_UDP_LEN, k->queue);
	fprintf(f, "\t}\n}\n");
}
