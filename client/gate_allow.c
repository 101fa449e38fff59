/*
 * postern gate allow, gate revoke: admin devices as drop-in files,
 * clients.d/NAME.conf beside the server's config, so that any
 * configuration management can add and remove them too. The whole
 * configuration is loaded before and after each change: a change that
 * would leave it unloadable is undone, and the daemons, which load it at
 * systemctl reload, never see it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "config_file.h"
#include "gate_cmd.h"
#include "keys.h"

#define APPLY "apply with: systemctl reload posternd postern-tunneld"

static bool load(const char *conf, struct server_config *cfg)
{
	char err[1024];

	if (server_config_load(cfg, conf, err, sizeof(err)))
		return true;
	fprintf(stderr, "%s: %s\n", PROG_NAME, err);
	return false;
}

static const struct client_entry *by_name(const struct server_config *cfg,
					  const char *name)
{
	for (size_t i = 0; i < cfg->n_clients; i++)
		if (!strcmp(cfg->clients[i].name, name))
			return &cfg->clients[i];
	return NULL;
}

static void dropin_path(const char *conf, const char *name, char *buf,
			size_t len)
{
	char dir[4096];

	config_file_dir(conf, dir, sizeof(dir));
	snprintf(buf, len, "%s/%s/%s.conf", dir, CLIENTS_DIR, name);
}

/* Readable by whoever may read the config (the daemons, as their users):
 * its group, its read bits, and for a directory the search bits to go
 * with them. */
static void like_config(const char *conf, const char *path, bool dir)
{
	struct stat st;
	mode_t mode;

	if (stat(conf, &st) != 0)
		return;
	mode = (st.st_mode & 0644) | 0600;
	if (dir)
		mode |= (mode & 0444) >> 2;
	gate_share(path, 0, st.st_gid, mode);
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The tunnel ports: what a knock must open for a device to get in. */
static size_t listen_ports(const struct server_config *cfg, uint16_t *ports)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->tunnel.n_listen; i++) {
		uint16_t p = config_listen_port(cfg->tunnel.listen[i]);
		size_t j;

		for (j = 0; j < n && ports[j] != p; j++)
			;
		if (j == n && n < CONFIG_MAX_OPEN)
			ports[n++] = p;
	}
	return n;
}

/* Another client of this key, of this name outside its drop-in, or in
 * the drop-in, which gate allow would replace whole. */
static bool conflicts(const struct server_config *cfg, const char *name,
		      const uint8_t key[KEY_LEN], const char *dropin)
{
	const struct client_entry *e = by_name(cfg, name);

	if (e && !same_file(e->file, dropin)) {
		fprintf(stderr, "%s: client \"%s\" is already in %s:%u; remove "
			"it there first\n", PROG_NAME, name, e->file, e->line);
		return true;
	}
	for (size_t i = 0; i < cfg->n_clients; i++) {
		e = &cfg->clients[i];
		if (strcmp(e->name, name) != 0 && same_file(e->file, dropin)) {
			fprintf(stderr, "%s: %s also holds client \"%s\" (line "
				"%u), which replacing it would remove; edit it "
				"by hand\n", PROG_NAME, dropin, e->name, e->line);
			return true;
		}
	}
	for (size_t i = 0; i < cfg->n_clients; i++) {
		e = &cfg->clients[i];
		if (strcmp(e->name, name) != 0 &&
		    memcmp(e->public_key, key, KEY_LEN) == 0) {
			fprintf(stderr, "%s: that key is client \"%s\"'s (%s:%u)\n",
				PROG_NAME, e->name, e->file, e->line);
			return true;
		}
	}
	return false;
}


struct allow_args {
	const char *name, *key_text, *open, *expires;
	uint8_t key[KEY_LEN];
};

static int allow_usage(void)
{
	fprintf(stderr, "Usage: %s gate allow NAME PUBKEY [--open PORTS] "
		"[--expires YYYY-MM-DD]\n", PROG_NAME);
	return EXIT_USAGE;
}

static int parse_allow(int argc, char *argv[], struct allow_args *a)
{
	int64_t expires_at;
	static const struct option longopts[] = {
		{ "open", required_argument, NULL, 'o' },
		{ "expires", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 0;	/* a full restart: options may follow the arguments */
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'o')
			a->open = optarg;
		else if (c == 'e')
			a->expires = optarg;
		else
			return allow_usage();
	}
	if (argc - optind != 2)
		return allow_usage();
	a->name = argv[optind];
	a->key_text = argv[optind + 1];
	if (!config_name_ok(a->name)) {
		fprintf(stderr, "%s: %s: not a valid name (letters, digits, '.', "
			"'_', '-', '@'; beginning with a letter or digit)\n",
			PROG_NAME, a->name);
		return EXIT_USAGE;
	}
	if (!key_from_base64(a->key, a->key_text)) {
		fprintf(stderr, "%s: %s: not a public key (44 characters of "
			"base64, as postern init prints)\n", PROG_NAME, a->key_text);
		return EXIT_USAGE;
	}
	if (a->expires && !config_date_parse(a->expires, &expires_at)) {
		fprintf(stderr, "%s: %s: not a date (YYYY-MM-DD, or RFC 3339 "
			"as 2027-06-30T12:00:00Z)\n", PROG_NAME, a->expires);
		return EXIT_USAGE;
	}
	if (a->expires && expires_at <= (int64_t)time(NULL))
		fprintf(stderr, "%s: warning: %s is past: %s's knocks will be "
			"refused\n", PROG_NAME, a->expires, a->name);
	return EXIT_OK;
}

static char *dropin_text(const struct allow_args *a, const uint16_t *ports,
			 size_t n)
{
	char list[CONFIG_MAX_OPEN * 7], day[16], expires[64] = "", *text;
	time_t now = time(NULL);
	struct tm tm;

	gate_format_ports(list, sizeof(list), ports, n, ", ");
	strftime(day, sizeof(day), "%Y-%m-%d", gmtime_r(&now, &tm));
	if (a->expires)
		snprintf(expires, sizeof(expires), "\texpires = \"%s\"\n",
			 a->expires);
	if (asprintf(&text, "# postern gate allow, %s\n"
		     "client \"%s\" {\n"
		     "\tpublic_key = \"%s\"\n"
		     "\topen = {%s}\n"
		     "%s"
		     "}\n", day, a->name, a->key_text, list, expires) < 0)
		return NULL;
	return text;
}

/* Write the drop-in, then load everything again; undo on failure. */
static bool write_dropin(const char *conf, const char *path, const char *text)
{
	size_t old_len = 0;
	char *old = NULL;
	struct server_config cfg;
	bool ok;

	if (access(path, F_OK) == 0 && !(old = config_file_read(path, &old_len)))
		return false;
	ok = config_file_replace(path, text, strlen(text));
	if (ok) {
		like_config(conf, path, false);
		ok = load(conf, &cfg);
		if (ok) {
			server_config_free(&cfg);
		} else if (old) {
			config_file_replace(path, old, old_len);
			like_config(conf, path, false);
		} else {
			unlink(path);
		}
	}
	free(old);
	return ok;
}

int gate_allow_main(const struct cli_options *opt, int argc, char *argv[])
{
	struct allow_args a = { 0 };
	struct server_config cfg;
	uint16_t ports[CONFIG_MAX_OPEN];
	char conf[4096], path[4400], dir[4300], *text;
	size_t n;
	int rc = parse_allow(argc, argv, &a);
	bool replaced;

	if (rc != EXIT_OK)
		return rc;
	if (a.open && !gate_parse_ports(a.open, ports, CONFIG_MAX_OPEN, &n))
		return EXIT_USAGE;
	if (!gate_config_load(opt, conf, sizeof(conf), &cfg))
		return EXIT_FAIL;
	dropin_path(conf, a.name, path, sizeof(path));
	if (conflicts(&cfg, a.name, a.key, path)) {
		server_config_free(&cfg);
		return EXIT_FAIL;
	}
	replaced = by_name(&cfg, a.name) != NULL;
	if (!a.open)
		n = listen_ports(&cfg, ports);
	server_config_free(&cfg);
	config_file_dir(path, dir, sizeof(dir));
	if (mkdir(dir, 0700) == 0)
		like_config(conf, dir, true);
	text = dropin_text(&a, ports, n);
	if (!text || !write_dropin(conf, path, text)) {
		free(text);
		return EXIT_FAIL;
	}
	free(text);
	printf("%s client \"%s\" (%s); " APPLY "\n",
	       replaced ? "Replaced" : "Allowed", a.name, path);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}

int gate_revoke_main(const struct cli_options *opt, int argc, char *argv[])
{
	struct server_config cfg;
	const struct client_entry *e;
	char conf[4096], path[4400];
	size_t others = 0;
	int rc = EXIT_FAIL;

	if (argc != 2) {
		fprintf(stderr, "Usage: %s gate revoke NAME\n", PROG_NAME);
		return EXIT_USAGE;
	}
	if (!gate_config_load(opt, conf, sizeof(conf), &cfg))
		return EXIT_FAIL;
	if (!(e = by_name(&cfg, argv[1]))) {
		fprintf(stderr, "%s: no client \"%s\" in %s or its %s/\n",
			PROG_NAME, argv[1], conf, CLIENTS_DIR);
		goto out;
	}
	for (size_t i = 0; i < cfg.n_clients; i++)
		others += cfg.clients[i].file == e->file && &cfg.clients[i] != e;
	snprintf(path, sizeof(path), "%s", e->file);
	if (e->file == cfg.client_files[0] || others) {
		/* Not a file of its own: the admin's hand edit, kept. */
		fprintf(stderr, "%s: client \"%s\" is in %s:%u with other "
			"settings; remove its block there\n", PROG_NAME,
			e->name, e->file, e->line);
		goto out;
	}
	if (unlink(path) != 0) {
		fprintf(stderr, "%s: %s: %s\n", PROG_NAME, path, strerror(errno));
		goto out;
	}
	printf("Revoked client \"%s\" (removed %s); " APPLY ".\n"
	       "Its tunnels end at the reload; the ports its last knock opened "
	       "close within %u s.\n", argv[1], path, cfg.knock.max_open_seconds);
	rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
out:
	server_config_free(&cfg);
	return rc;
}
