/*
 * nft_open: the cost of one nft_set_open, for docs/NFT.md, in a network
 * namespace of its own (the host's ruleset is never touched). For each
 * refresh strategy the kernel supports: new elements (a first knock) and
 * refreshes (a re-knock), 1 and 3 ports, ROUNDS calls each; then a batch
 * the kernel refuses followed by the REPLACE that recovers, the cost no
 * strategy may count on. Prints; asserts nothing. Needs root and nft(8).
 *
 *   sudo build/test/bench/nft_open [ROUNDS]      (default 5000)
 */
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nft.h"

static const enum nft_refresh strategies[] = {
	NFT_REFRESH_EXPIRATION, NFT_REFRESH_DESTROY, NFT_REFRESH_REPLACE,
};

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static bool run(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static bool make_set(struct nft_conn *c, struct nft_set_ref *s)
{
	char cmd[256], err[512];

	snprintf(cmd, sizeof(cmd), "nft add set inet t_bench %s "
		 "'{ type ipv4_addr . inet_service; flags timeout; }'", s->set);
	if (!run(cmd) || !nft_set_check(c, s, err, sizeof(err))) {
		fprintf(stderr, "nft_open: set %s: %s\n", s->set, err);
		return false;
	}
	return true;
}

/* Mean µs of rounds calls; elements new each round unless again. */
static double measure(struct nft_conn *c, const struct nft_set_ref *s,
		      size_t ports, int rounds, bool again)
{
	struct nft_element el[3];
	char err[512];
	double t = now_us();

	for (int r = 0; r < rounds; r++) {
		for (size_t p = 0; p < ports; p++)
			el[p] = (struct nft_element){
				.addr = { 10, (uint8_t)ports, (uint8_t)(again ? 0 : r >> 8),
					  (uint8_t)(again ? 1 : r) },
				.port = (uint16_t)(22 + p) };
		if (!nft_set_open(c, s, el, ports, 60000, err, sizeof(err))) {
			fprintf(stderr, "nft_open: %s\n", err);
			exit(1);
		}
	}
	return (now_us() - t) / rounds;
}

static void failed_batch(struct nft_conn *c)
{
	enum { ROUNDS = 20 };
	struct nft_set_ref s = { "inet", "t_bench", "s_fail", AF_INET, 0 };
	struct nft_element el = { .addr = { 10, 7, 0, 1 }, .port = 22 };
	char err[512];
	double t;

	if (!make_set(c, &s))
		exit(1);
	nft_conn_set_destroy_type(c, 250);	/* a type no kernel has */
	t = now_us();
	for (int r = 0; r < ROUNDS; r++) {
		nft_conn_set_refresh(c, NFT_REFRESH_DESTROY);
		if (!nft_set_open(c, &s, &el, 1, 60000, err, sizeof(err))) {
			fprintf(stderr, "nft_open: %s\n", err);
			exit(1);
		}
	}
	printf("failed batch + replace, 1 port: %.1f us (%d calls)\n",
	       (now_us() - t) / ROUNDS, ROUNDS);
}

int main(int argc, char *argv[])
{
	int rounds = argc > 1 ? atoi(argv[1]) : 5000;
	struct nft_conn *c;
	char err[512], set[32];

	if (rounds < 1 || geteuid() != 0 || unshare(CLONE_NEWNET) < 0 ||
	    !run("nft add table inet t_bench")) {
		fprintf(stderr, "usage: nft_open [ROUNDS]: as root, with nft(8)\n");
		return 2;
	}
	if (!(c = nft_conn_open(err, sizeof(err)))) {
		fprintf(stderr, "nft_open: %s\n", err);
		return 1;
	}
	printf("nft_set_open, mean of %d calls, 60 s timeout; chosen: %s\n",
	       rounds, nft_refresh_name(nft_conn_refresh(c)));
	for (size_t i = 0; i < sizeof(strategies) / sizeof(strategies[0]); i++) {
		struct nft_set_ref s = { "inet", "t_bench", set, AF_INET, 0 };

		if (!nft_refresh_supported(strategies[i]))
			continue;
		snprintf(set, sizeof(set), "s_%s", nft_refresh_name(strategies[i]));
		if (!make_set(c, &s))
			return 1;
		nft_conn_set_refresh(c, strategies[i]);
		for (size_t ports = 1; ports <= 3; ports += 2) {
			double fresh = measure(c, &s, ports, rounds, false);
			double again = measure(c, &s, ports, rounds, true);

			printf("%-10s %zu port%s: new %.1f us, refresh %.1f us\n",
			       nft_refresh_name(strategies[i]), ports,
			       ports == 1 ? " " : "s", fresh, again);
		}
	}
	failed_batch(c);
	nft_conn_close(c);
	return 0;
}
