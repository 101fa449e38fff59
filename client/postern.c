/* postern: the administrator's command line. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "nocore.h"
#include "subcommands.h"

static const struct {
	const char *name;
	int (*main)(const struct cli_options *, int, char *[]);
	const char *description;
} commands[] = {
	{ "genkey", genkey_main, "generate a private key" },
	{ "pubkey", pubkey_main, "read a private key on stdin, write its public key" },
	{ "genpsk", genpsk_main, "generate a pre-shared key" },
	{ "init", init_main, "set up this device: admin.key and postern.conf" },
	{ "add-server", add_server_main, "add a server: add-server NAME HOST PUBKEY [--tunnel-port P] [--knock-port K]" },
	{ "rm-server", rm_server_main, "remove a server: rm-server NAME" },
	{ "ls", ls_main, "the servers, and when a knock of ours last opened each" },
	{ "gate", gate_main, "on a server, as root: gate init | allow | revoke | ls | status | apply-nft" },
	{ "knock", knock_main, "open servers' gates: knock NAME... | --all [--target ADDR] [--wait]" },
	{ "pipe", pipe_main, "join stdin/stdout to a port on a server: pipe NAME PORT" },
	{ "forward", forward_main, "forward local ports: forward [-L [BIND:]LPORT:NAME:RPORT]... | forward [NAME]" },
	{ "socks", socks_main, "a SOCKS5 proxy onto the servers' ports: socks [BIND:]PORT" },
	{ "doctor", doctor_main, "check each step to servers, say what is wrong: doctor [NAME...]" },
};

/* Started with fd 0, 1 or 2 closed, the next file opened would take its
 * place: a lock that a later dup2 onto stdin closes, a secret written as
 * "output". /dev/null fills them first. */
static bool std_fds_open(void)
{
	int fd;

	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
		;
	if (fd < 0) {
		fprintf(stderr, "%s: /dev/null: %s\n", PROG_NAME, strerror(errno));
		return false;
	}
	close(fd);
	return true;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: %s [-c FILE] COMMAND [ARGS]\n\n", PROG_NAME);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].description);
	fprintf(f, "\nOptions:\n"
		"  -c FILE       configuration file (default: $POSTERN_HOME/postern.conf,\n"
		"                $XDG_CONFIG_HOME/postern/postern.conf or\n"
		"                ~/.config/postern/postern.conf)\n"
		"  -h, --help    show this help\n"
		"  -V, --version show the version\n");
}

int main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_options opt = { 0 };
	int c;

	if (!std_fds_open())
		return EXIT_FAIL;
	/* '+': stop at the command, whose own options follow it. */
	while ((c = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			opt.config_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("%s %s\n", PROG_NAME, POSTERN_VERSION);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	/* Every command handles a private key or the PSK: no dump may
	 * carry one. */
	no_core_dumps();
	if (!crypto_init()) {
		fprintf(stderr, "%s: libgcrypt is too old\n", PROG_NAME);
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[optind], commands[i].name))
			return commands[i].main(&opt, argc - optind, argv + optind);
	fprintf(stderr, "%s: unknown command '%s'\n", PROG_NAME, argv[optind]);
	usage(stderr);
	return EXIT_USAGE;
}
