/*
 * postern gate ls: the admin devices the server lets in, from the config
 * and clients.d/: ports, expiry, where each is defined, and its last
 * accepted knock from posternd's status file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "gate_cmd.h"

static void expiry(char *buf, size_t len, const struct client_entry *e)
{
	char day[40];
	time_t last = (time_t)e->expires_at - 1;	/* its last instant */
	struct tm tm;

	if (!e->expires_at) {
		snprintf(buf, len, "never");
		return;
	}
	strftime(day, sizeof(day), "%Y-%m-%d", gmtime_r(&last, &tm));
	snprintf(buf, len, "%s%s", client_expired(e, (int64_t)time(NULL)) ?
		 "EXPIRED " : "", day);
}

int gate_ls_main(const struct cli_options *opt, int argc, char *argv[])
{
	struct server_config cfg;
	char conf[4096], key[128], seen[96], when[40], exp[64];
	char ports[CONFIG_MAX_OPEN * 7], file[4096], *status;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "Usage: %s gate ls\n", PROG_NAME);
		return EXIT_USAGE;
	}
	if (!gate_config_load(opt, conf, sizeof(conf), &cfg))
		return EXIT_FAIL;
	status = gate_status_read(cfg.knock.status_file);
	printf("%-16s %-12s %-18s %-34s %s\n", "NAME", "OPEN", "EXPIRES",
	       "LAST KNOCK", "FILE");
	for (size_t i = 0; i < cfg.n_clients; i++) {
		const struct client_entry *e = &cfg.clients[i];

		gate_format_ports(ports, sizeof(ports), e->open, e->n_open, ",");
		expiry(exp, sizeof(exp), e);
		snprintf(key, sizeof(key), "client.%s.accepted", e->name);
		snprintf(when, sizeof(when), status ? "-" : "(no status)");
		if (status && gate_status_get(status, key, seen, sizeof(seen))) {
			char *src = strchr(seen, ' ');

			gate_format_time(when, sizeof(when),
					 strtoull(seen, NULL, 10));
			if (src)
				snprintf(when + strlen(when),
					 sizeof(when) - strlen(when), " %s",
					 src + 1);
		}
		snprintf(file, sizeof(file), "%s", e->file);
		gate_printable(file);
		printf("%-16s %-12s %-18s %-34s %s:%u\n", e->name, ports, exp,
		       when, file, e->line);
	}
	free(status);
	server_config_free(&cfg);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}
