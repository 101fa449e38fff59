/* Warnings about a loadable server configuration: see config_lint.h. */
#include "config_lint.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool opens(const struct client_entry *e, uint16_t port)
{
	for (size_t i = 0; i < e->n_open; i++)
		if (e->open[i] == port)
			return true;
	return false;
}

static bool opens_a_tunnel_port(const struct server_config *c,
				const struct client_entry *e)
{
	for (size_t i = 0; i < c->tunnel.n_listen; i++)
		if (opens(e, config_listen_port(c->tunnel.listen[i])))
			return true;
	return false;
}

unsigned int server_config_lint(const struct server_config *c, int64_t now,
				void (*warn)(void *arg, const char *msg),
				void *arg)
{
	unsigned int n = 0;
	char msg[512];

	if (c->n_clients == 0) {
		warn(arg, "no clients: no knock opens anything (add one: "
		     "postern gate allow NAME PUBKEY)");
		n++;
	}
	for (size_t i = 0; i < c->tunnel.n_listen && c->n_clients; i++) {
		uint16_t p = config_listen_port(c->tunnel.listen[i]);
		size_t j;

		for (j = 0; j < c->n_clients && !opens(&c->clients[j], p); j++)
			;
		if (j == c->n_clients) {
			snprintf(msg, sizeof(msg), "tunnel.listen %s: no client's "
				 "open list has port %u, so no knock opens it",
				 c->tunnel.listen[i], p);
			warn(arg, msg);
			n++;
		}
	}
	for (size_t i = 0; i < c->n_clients; i++) {
		const struct client_entry *e = &c->clients[i];
		time_t last = (time_t)e->expires_at - 1;
		struct tm tm;
		char day[16];

		if (client_expired(e, now)) {
			strftime(day, sizeof(day), "%Y-%m-%d", gmtime_r(&last, &tm));
			snprintf(msg, sizeof(msg), "client \"%s\" (%s:%u) expired "
				 "after %s: its knocks are refused", e->name,
				 e->file, e->line, day);
			warn(arg, msg);
			n++;
		} else if (c->tunnel.n_listen && !opens_a_tunnel_port(c, e)) {
			snprintf(msg, sizeof(msg), "client \"%s\" (%s:%u): open "
				 "has no tunnel.listen port: its knock does not "
				 "open the tunnel", e->name, e->file, e->line);
			warn(arg, msg);
			n++;
		}
	}
	if (c->tunnel.n_egress == 0) {
		warn(arg, "tunnel.egress is empty: a tunnel reaches no port");
		n++;
	}
	return n;
}
