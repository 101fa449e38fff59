/*
 * postern add-server NAME HOST PUBKEY [--tunnel-port P] [--knock-port K]:
 * a server block appended to the configuration file, which is otherwise
 * left as the admin wrote it (comments, order, hand edits).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "config_file.h"
#include "keys.h"
#include "subcommands.h"

static int usage(void)
{
	fprintf(stderr, "Usage: %s add-server NAME HOST PUBKEY [--tunnel-port P] "
		"[--knock-port K]\n", PROG_NAME);
	return EXIT_USAGE;
}

int add_server_main(const struct cli_options *opt, int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "tunnel-port", required_argument, NULL, 't' },
		{ "knock-port", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 }
	};
	uint16_t tport = 8443, kport = 62201;
	uint8_t key[KEY_LEN];
	char path[4096], block[1024], *text, *out;
	const char *name, *host, *pub;
	size_t len, blen, at, end;
	int c, status = EXIT_FAIL;

	optind = 0;	/* a full restart: options may follow the arguments */
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if ((c == 't' && addr_parse_port(optarg, &tport)) ||
		    (c == 'k' && addr_parse_port(optarg, &kport)))
			continue;
		if (c == 't' || c == 'k')
			fprintf(stderr, "%s: add-server: bad port '%s'\n", PROG_NAME, optarg);
		return usage();
	}
	if (argc - optind != 3)
		return usage();
	name = argv[optind];
	host = argv[optind + 1];
	pub = argv[optind + 2];
	if (!config_file_word_ok(name) || strchr(name, ':')) {
		fprintf(stderr, "%s: add-server: bad name '%s': letters, digits, . _ - only\n",
			PROG_NAME, name);
		return EXIT_USAGE;
	}
	if (!config_file_word_ok(host)) {
		fprintf(stderr, "%s: add-server: bad host '%s': a name or a numeric address, "
			"without a port (that is --tunnel-port)\n", PROG_NAME, host);
		return EXIT_USAGE;
	}
	if (!key_from_base64(key, pub)) {
		fprintf(stderr, "%s: add-server: '%s' is not a public key (44 characters "
			"of base64, as postern pubkey prints)\n", PROG_NAME, pub);
		return EXIT_USAGE;
	}
	if (!config_file_path(opt, path, sizeof(path)) ||
	    !(text = config_file_read(path, &len)))
		return EXIT_FAIL;
	if (config_file_find_server(text, name, &at, &end)) {
		fprintf(stderr, "%s: %s already has a server \"%s\"\n", PROG_NAME, path, name);
		free(text);
		return EXIT_FAIL;
	}
	blen = (size_t)snprintf(block, sizeof(block),
		"%sserver \"%s\" {\n\taddress = \"%s\"\n\ttunnel_port = %u\n"
		"\tknock_port = %u\n\tpublic_key = \"%s\"\n}\n",
		len && text[len - 1] != '\n' ? "\n" : "", name, host, tport, kport, pub);
	out = malloc(len + blen);
	if (out) {
		memcpy(out, text, len);
		memcpy(out + len, block, blen);
		if (config_file_replace(path, out, len + blen)) {
			printf("%s added to %s\n", name, path);
			status = EXIT_OK;
		}
	}
	free(out);
	free(text);
	return status;
}
