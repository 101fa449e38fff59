/*
 * postern ls: each configured server, where it is, its gate as this
 * device last saw it (the memo of our last knock that opened it), and the
 * tunnels to it that running postern processes hold (client/gate_memo.h).
 * Nothing is sent.
 */
#include <stdio.h>

#include "context.h"
#include "gate_memo.h"
#include "subcommands.h"

static void last_knock(const struct server_entry *s, char *buf, size_t len)
{
	uint64_t age, connect_ms;

	if (!gate_memo_get(s, &age, &connect_ms))
		snprintf(buf, len, "-");
	else if (age < 120 * 1000)
		snprintf(buf, len, "%llu s ago", (unsigned long long)(age / 1000));
	else if (age < 2 * 3600 * 1000)
		snprintf(buf, len, "%llu min ago", (unsigned long long)(age / 60000));
	else
		snprintf(buf, len, "%llu h ago", (unsigned long long)(age / 3600000));
}

static void tunnels(const struct server_entry *s, char *buf, size_t len)
{
	unsigned int procs, n = gate_memo_tunnels_up(s, &procs);

	if (n == 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%u up (%u process%s)", n, procs,
			 procs == 1 ? "" : "es");
}

int ls_main(const struct cli_options *opt, int argc, char *argv[])
{
	struct client_ctx ctx;
	char when[32], up[48];

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "Usage: %s ls\n", PROG_NAME);
		return EXIT_USAGE;
	}
	if (!client_ctx_load(&ctx, opt))
		return EXIT_FAIL;
	printf("%-16s %-28s %6s %6s  %-26s %s\n", "NAME", "ADDRESS", "TUNNEL",
	       "KNOCK", "LAST KNOCK THAT OPENED IT", "TUNNELS");
	for (size_t i = 0; i < ctx.cfg.n_servers; i++) {
		const struct server_entry *s = &ctx.cfg.servers[i];

		last_knock(s, when, sizeof(when));
		tunnels(s, up, sizeof(up));
		printf("%-16s %-28s %6u %6u  %-26s %s\n", s->name, s->address,
		       s->tunnel_port, s->knock_port, when, up);
	}
	client_ctx_free(&ctx);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}
