/*
 * The configuration files, both of them: the fuzzer's bytes are written
 * to a file that the server's loader (both daemons) and the CLI's loader
 * each read, through the pre-pass that blanks comments and counts braces
 * (config_text.c) into libconfuse and the checks after it. Seeds
 * (make_corpus) are valid server and CLI files; fuzz_config.dict holds the
 * option names and syntax.
 *
 * Invariants: a refusal is one printable line naming the file; a loaded
 * config holds what the loader promises (ranges, at least one listen
 * address, ports in range, paths made absolute, client keys and server
 * names unique, forwards naming a server); loading again gives the same
 * result and the same message (libconfuse keeps global state); no leak
 * (ASan), whether the load succeeds or not.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "fuzz_util.h"

static char dir[64], path[96];

static void remove_dir(void)
{
	unlink(path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "/tmp/postern-fuzz-config-XXXXXX");
	check(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/postern.conf", dir);
	atexit(remove_dir);
	return 0;
}

static void check_refusal(const char *err)
{
	size_t n = strlen(path);

	check(strncmp(err, path, n) == 0 && err[n] == ':');
	for (const char *p = err; *p; p++)
		check((unsigned char)*p >= ' ' && *p != 0x7f);
}

static bool absolute(const char *p)
{
	return p && p[0] == '/';
}

static void check_psk(const struct psk_source *psk)
{
	check(psk->value != NULL);
	check(psk->kind != PSK_FILE || absolute(psk->value));
}

static void check_address(const char *text)
{
	struct sockaddr_storage sa;
	socklen_t len;

	check(addr_parse(text, &sa, &len));
}

static void check_server(const struct server_config *c)
{
	const struct knock_config *k = &c->knock;

	check(strcmp(c->path, path) == 0 && absolute(c->private_key_file));
	check_psk(&c->psk);
	check(k->port >= 1 && k->window >= 1 && k->window <= 3600);
	check(k->open_seconds >= 1 && k->open_seconds <= k->max_open_seconds &&
	      k->max_open_seconds <= 86400);
	check(strcmp(k->nft_set4, k->nft_set6) != 0);
	check(c->tunnel.n_listen >= 1 && c->tunnel.n_egress <= CONFIG_MAX_EGRESS);
	for (size_t i = 0; i < c->tunnel.n_listen; i++)
		check_address(c->tunnel.listen[i]);
	for (size_t i = 0; i < c->tunnel.n_egress; i++)
		check(c->tunnel.egress[i] != 0);
	for (size_t i = 0; i < c->n_clients; i++) {
		const struct client_entry *e = &c->clients[i];

		check(e->name[0] != '\0' && e->expires_at >= 0);
		check(server_config_find_client(c, e->public_key) == e);
		for (size_t j = 0; j < e->n_open; j++)
			check(e->open[j] != 0);
	}
}

static void check_cli(const struct cli_config *c)
{
	check(strcmp(c->path, path) == 0 && absolute(c->private_key_file));
	check_psk(&c->psk);
	for (size_t i = 0; i < c->n_servers; i++) {
		const struct server_entry *e = &c->servers[i];

		check(e->address[0] != '\0' && e->tunnel_port && e->knock_port);
		check(cli_config_find_server(c, e->name) == e);
	}
	for (size_t i = 0; i < c->n_forwards; i++) {
		const struct forward_entry *f = &c->forwards[i];

		check(cli_config_find_server(c, f->server) != NULL && f->port);
		check_address(f->listen);
		for (size_t j = 0; j < i; j++)
			check(strcmp(c->forwards[j].listen, f->listen) != 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct server_config s;
	struct cli_config c;
	char err[512], again[512];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	bool ok;

	check(fd >= 0 && write(fd, data, size) == (ssize_t)size);
	close(fd);

	ok = server_config_load(&s, path, err, sizeof(err));
	if (ok)
		check_server(&s);
	else
		check_refusal(err);
	server_config_free(&s);
	check(server_config_load(&s, path, again, sizeof(again)) == ok);
	check(ok || strcmp(err, again) == 0);
	server_config_free(&s);

	ok = cli_config_load(&c, path, err, sizeof(err));
	if (ok)
		check_cli(&c);
	else
		check_refusal(err);
	cli_config_free(&c);
	check(cli_config_load(&c, path, again, sizeof(again)) == ok);
	check(ok || strcmp(err, again) == 0);
	cli_config_free(&c);
	unlink(path);
	return 0;
}
