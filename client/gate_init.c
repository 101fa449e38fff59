/*
 * postern gate init: a server set up. A new server.key and fleet PSK, and
 * a postern.conf that works as it is under the shipped units (the secrets
 * reach the daemons as credentials); then the server's public key and the
 * line to run on each admin device. Never overwrites.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_file.h"
#include "gate_cmd.h"
#include "keys.h"

static const char conf_head[] =
	"# postern's server configuration: postern.conf(5).\n"
	"# Under the shipped units the secrets arrive as systemd credentials\n"
	"# (LoadCredential= in posternd.service and postern-tunneld.service);\n"
	"# run by hand, the daemons read the files of those names here.\n"
	"private_key_credential = \"server.key\"\n"
	"psk_credential = \"psk\"\n"
	"\n"
	"knock {\n"
	"\tport = %u\n"
	"}\n"
	"\n"
	"tunnel {\n"
	"\tlisten = {\"0.0.0.0:%u\", \"[::]:%u\"}\n"
	"\tegress = {%s}\n"
	"}\n"
	"\n"
	"# Admin devices: postern gate allow NAME PUBKEY writes one file each\n"
	"# in clients.d/; systemctl reload posternd postern-tunneld applies them.\n";

/* Readable by the daemons' group, if the package made it. */
static void share_with_daemons(const char *path, mode_t mode)
{
	struct group *g = getgrnam(POSTERN_GROUP);

	if (g)
		gate_share(path, 0, g->gr_gid, mode);
}

/* The address this server sends from by default: what an admin device
 * most likely reaches it at (behind NAT, it is not). No packet leaves:
 * connect() on UDP only chooses a route. */
static void guess_address(char *buf, size_t len)
{
	struct sockaddr_in dst = { .sin_family = AF_INET,
				   .sin_port = htons(9) }, src;
	socklen_t slen = sizeof(src);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	snprintf(buf, len, "HOST");
	inet_pton(AF_INET, "192.0.2.1", &dst.sin_addr);	/* TEST-NET-1 */
	if (fd >= 0 && connect(fd, (struct sockaddr *)&dst, sizeof(dst)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&src, &slen) == 0)
		inet_ntop(AF_INET, &src.sin_addr, buf, (socklen_t)len);
	if (fd >= 0)
		close(fd);
}

static int usage(void)
{
	fprintf(stderr, "Usage: %s gate init [--egress PORTS]\n", PROG_NAME);
	return EXIT_USAGE;
}

static bool write_files(const char *dir, const char *conf, const char *egress,
			uint8_t pub[KEY_LEN])
{
	char key[4200], psk[4200], drop[4200], *text = NULL;
	uint8_t unused[KEY_LEN];
	int n;

	snprintf(key, sizeof(key), "%s/server.key", dir);
	snprintf(psk, sizeof(psk), "%s/psk", dir);
	snprintf(drop, sizeof(drop), "%s/%s", dir, CLIENTS_DIR);
	/* All checked first: nothing is written unless all are new. */
	if (config_file_exists(conf) | config_file_exists(key) |
	    config_file_exists(psk))
		return false;
	if (mkdir(dir, 0750) == 0)
		share_with_daemons(dir, 0750);
	else if (errno != EEXIST) {
		fprintf(stderr, "%s: %s: %s\n", PROG_NAME, dir, strerror(errno));
		return false;
	}
	n = asprintf(&text, conf_head, DEFAULT_KNOCK_PORT, DEFAULT_TUNNEL_PORT,
		     DEFAULT_TUNNEL_PORT, egress);
	if (n < 0 || !config_file_new_key(key, true, pub))
		goto fail_key;
	if (!config_file_new_key(psk, false, unused))
		goto fail_psk;
	if (!config_file_write(conf, text, (size_t)n, true))
		goto fail_conf;
	if (mkdir(drop, 0750) != 0 && errno != EEXIST) {
		fprintf(stderr, "%s: %s: %s\n", PROG_NAME, drop, strerror(errno));
		goto fail_drop;
	}
	share_with_daemons(conf, 0640);
	share_with_daemons(drop, 0750);
	free(text);
	return true;
fail_drop:
	unlink(conf);
fail_conf:
	unlink(psk);
fail_psk:
	unlink(key);
fail_key:
	free(text);
	return false;
}

int gate_init_main(const struct cli_options *opt, int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "egress", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	char conf[4096], dir[4096], egress[CONFIG_MAX_EGRESS * 7] = "22";
	char pub_text[KEY_B64_LEN + 1], name[256], host[INET_ADDRSTRLEN + 8];
	uint16_t ports[CONFIG_MAX_EGRESS];
	uint8_t pub[KEY_LEN];
	size_t n_ports;
	int c;

	optind = 0;	/* a full restart: options may follow the arguments */
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c != 'e')
			return usage();
		if (!gate_parse_ports(optarg, ports, CONFIG_MAX_EGRESS, &n_ports))
			return EXIT_USAGE;
		gate_format_ports(egress, sizeof(egress), ports, n_ports, ", ");
	}
	if (optind != argc)
		return usage();
	if (!gate_config_path(opt, conf, sizeof(conf)))
		return EXIT_FAIL;
	config_file_dir(conf, dir, sizeof(dir));
	umask(077);
	if (!write_files(dir, conf, egress, pub))
		return EXIT_FAIL;
	key_to_base64(pub_text, pub);
	config_file_host_name(name, sizeof(name), "server");
	guess_address(host, sizeof(host));
	printf("Wrote %s/server.key, %s/psk and %s.\n"
	       "Server public key: %s\n"
	       "On each admin device: copy %s/psk to the device's postern directory\n"
	       "(beside its postern.conf, mode 0600), then run, with the address the\n"
	       "device reaches this server at:\n"
	       "  postern add-server %s %s %s --knock-port %u --tunnel-port %u\n"
	       "Next: review the firewall rules (posternd --print-nft), load them with\n"
	       "postern gate apply-nft, and allow each admin device: postern gate allow\n",
	       dir, dir, conf, pub_text, dir, name, host, pub_text,
	       DEFAULT_KNOCK_PORT, DEFAULT_TUNNEL_PORT);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}
