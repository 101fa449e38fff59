/*
 * postern init: an administrator's device set up. A new admin.key and a
 * postern.conf that names it and the fleet's PSK file beside it; then the
 * public key, and the line to run on each server. Never overwrites.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_file.h"
#include "keys.h"
#include "subcommands.h"

static const char conf_text[] =
	"# postern's configuration: postern.conf(5).\n"
	"private_key_file = \"admin.key\"\n"
	"# The fleet's pre-shared key: the file psk from a server's /etc/postern.\n"
	"psk_file = \"psk\"\n"
	"\n"
	"# Servers: postern add-server NAME HOST PUBKEY\n";

/* mkdir -p, the directories it makes private. */
static bool make_dirs(const char *dir)
{
	char buf[4096];

	if ((size_t)snprintf(buf, sizeof(buf), "%s", dir) >= sizeof(buf))
		return false;
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, 0700) < 0 && errno != EEXIST)
				return false;
			*p = c;
			if (c == '\0')
				return true;
		}
	}
}

int init_main(const struct cli_options *opt, int argc, char *argv[])
{
	char conf[4096], dir[4096], key_path[4200], name[256];
	char pub_text[KEY_B64_LEN + 1];
	uint8_t pub[KEY_LEN];

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "Usage: %s init\n", PROG_NAME);
		return EXIT_USAGE;
	}
	if (!config_file_path(opt, conf, sizeof(conf)))
		return EXIT_FAIL;
	config_file_dir(conf, dir, sizeof(dir));
	snprintf(key_path, sizeof(key_path), "%s/admin.key", dir);
	/* Both checked first: nothing is written unless both are new. */
	if (config_file_exists(conf) || config_file_exists(key_path))
		return EXIT_FAIL;
	if (!make_dirs(dir)) {
		fprintf(stderr, "%s: %s: %s\n", PROG_NAME, dir, strerror(errno));
		return EXIT_FAIL;
	}
	if (!config_file_new_key(key_path, true, pub))
		return EXIT_FAIL;
	if (!config_file_write(conf, conf_text, sizeof(conf_text) - 1, true)) {
		unlink(key_path);
		return EXIT_FAIL;
	}
	key_to_base64(pub_text, pub);
	config_file_host_name(name, sizeof(name), "admin");
	printf("Wrote %s and %s.\n"
	       "Public key: %s\n"
	       "On each server, as root:\n"
	       "  postern gate allow %s %s\n"
	       "Then copy the fleet's psk (a server's /etc/postern/psk) to %s/psk, and add each\n"
	       "server: postern add-server NAME HOST SERVER_PUBKEY\n",
	       key_path, conf, pub_text, name, pub_text, dir);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}
