/* postern gate COMMAND: a plain table, as postern.c has. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "gate_cmd.h"

static const struct {
	const char *name;
	int (*main)(const struct cli_options *, int, char *[]);
	const char *description;
} commands[] = {
	{ "init", gate_init_main, "set up this server: init [--egress PORTS]" },
	{ "allow", gate_allow_main, "let an admin device in: allow NAME PUBKEY [--open PORTS] [--expires DATE]" },
	{ "revoke", gate_revoke_main, "shut an admin device out: revoke NAME" },
	{ "ls", gate_ls_main, "the admin devices, their expiry and last knock" },
	{ "status", gate_status_main, "the daemons' counters and last refusals" },
	{ "apply-nft", gate_apply_nft_main, "load --print-nft's ruleset, rolled back unless confirmed: apply-nft [--confirm-within S]" },
};

bool gate_config_path(const struct cli_options *opt, char *buf, size_t len)
{
	const char *home = getenv("POSTERN_HOME");
	int n;

	if (opt->config_path)
		n = snprintf(buf, len, "%s", opt->config_path);
	else if (home && *home)
		n = snprintf(buf, len, "%s/%s", home, POSTERN_CONFIG_NAME);
	else
		n = snprintf(buf, len, "%s", POSTERN_SERVER_CONFIG);
	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "%s: gate: configuration path too long\n",
			PROG_NAME);
		return false;
	}
	return true;
}

bool gate_config_load(const struct cli_options *opt, char *conf, size_t len,
		      struct server_config *cfg)
{
	char err[1024];

	if (!gate_config_path(opt, conf, len))
		return false;
	if (server_config_load(cfg, conf, err, sizeof(err)))
		return true;
	fprintf(stderr, "%s: %s\n", PROG_NAME, err);
	return false;
}

bool gate_parse_ports(const char *text, uint16_t *ports, size_t max,
		      size_t *n)
{
	const char *p = text;
	char *end;

	for (*n = 0; *p; p = end + (*end == ',')) {
		unsigned long v;

		errno = 0;
		/* strtoul takes a sign and blanks too: digits only */
		v = *p >= '0' && *p <= '9' ? strtoul(p, &end, 10) : 0;
		if (v == 0)
			end = (char *)p;
		if (end == p || errno || v < 1 || v > 65535 ||
		    (*end && *end != ',') || (*end == ',' && !end[1])) {
			fprintf(stderr, "%s: %s: not a list of ports (like "
				"22,8080)\n", PROG_NAME, text);
			return false;
		}
		for (size_t i = 0; i < *n; i++)
			if (ports[i] == v) {
				fprintf(stderr, "%s: %s: port %lu twice\n",
					PROG_NAME, text, v);
				return false;
			}
		if (*n == max) {
			fprintf(stderr, "%s: %s: more than %zu ports\n",
				PROG_NAME, text, max);
			return false;
		}
		ports[(*n)++] = (uint16_t)v;
	}
	if (*n == 0) {
		fprintf(stderr, "%s: no ports given\n", PROG_NAME);
		return false;
	}
	return true;
}

void gate_format_ports(char *buf, size_t len, const uint16_t *ports,
		       size_t n, const char *sep)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		int w = snprintf(buf + used, len - used, "%s%u",
				 i ? sep : "", ports[i]);

		if (w < 0)
			break;
		used += (size_t)w;
	}
}

bool gate_share(const char *path, uid_t uid, gid_t gid, mode_t mode)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	bool ok;

	if (fd < 0)
		return false;
	ok = fchown(fd, uid, gid) == 0 && fchmod(fd, mode) == 0;
	close(fd);
	return ok;
}

void gate_printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || (unsigned char)*s >= 0x7f)
			*s = '?';
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: %s [-c FILE] gate COMMAND [ARGS]\n\n", PROG_NAME);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name,
			commands[i].description);
}

int gate_main(const struct cli_options *opt, int argc, char *argv[])
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].main(opt, argc - 1, argv + 1);
	fprintf(stderr, "%s: gate: unknown command '%s'\n", PROG_NAME, argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
