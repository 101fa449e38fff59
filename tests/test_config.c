/*
 * The configuration loaders: every value of a full file, the defaults,
 * relative paths, and for each kind of mistake an error that names the
 * file, the right line and the option.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "addr.h"
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "keys.h"
#include "test_util.h"

#define K1 "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\""
#define K2 "\"ERERERERERERERERERERERERERERERERERERERERERE=\""
#define K3 "\"IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI=\""

static char conf_path[512];

/* Write text as postern.conf in the test directory; returns its path. */
static const char *conf(const char *text)
{
	snprintf(conf_path, sizeof(conf_path), "%s",
		 write_temp_file("postern.conf", text, 0644));
	return conf_path;
}

/* The directory write_temp_file uses, with no trailing slash. */
static void conf_dir(char *buf, size_t len)
{
	char *slash;

	snprintf(buf, len, "%s", conf("\n"));
	slash = strrchr(buf, '/');
	*slash = '\0';
}

static void key_of(uint8_t key[KEY_LEN], const char *quoted)
{
	char text[KEY_B64_LEN + 1];

	memcpy(text, quoted + 1, KEY_B64_LEN);
	text[KEY_B64_LEN] = '\0';
	assert_true(key_from_base64(key, text));
}

static void expect_error(const char *err, const char *path, int line,
			 const char *what)
{
	char want[1024];

	if (line)
		snprintf(want, sizeof(want), "%s:%d: %s", path, line, what);
	else
		snprintf(want, sizeof(want), "%s: %s", path, what);
	if (!strstr(err, want))
		fail_msg("error \"%s\" lacks \"%s\"", err, want);
	assert_null(strchr(err, '\n'));
}

static void server_fails(const char *text, int line, const char *what)
{
	struct server_config c;
	char err[512];
	const char *path = conf(text);

	memset(&c, 0xa5, sizeof(c));
	assert_false(server_config_load(&c, path, err, sizeof(err)));
	expect_error(err, path, line, what);
	/* A failed load leaves nothing behind. */
	assert_null(c.path);
	assert_null(c.clients);
	assert_int_equal(c.n_clients, 0);
	server_config_free(&c);
}

static void cli_fails(const char *text, int line, const char *what)
{
	struct cli_config c;
	char err[512];
	const char *path = conf(text);

	assert_false(cli_config_load(&c, path, err, sizeof(err)));
	expect_error(err, path, line, what);
	assert_null(c.servers);
	cli_config_free(&c);
}

static void server_full(void **state)
{
	struct server_config c;
	const struct client_entry *alice, *bob;
	uint8_t k1[KEY_LEN], k2[KEY_LEN], k3[KEY_LEN];
	char err[512];
	const char *path = conf(
		"private_key_file = \"/etc/postern/server.key\"\n"
		"psk_env = \"FLEET_PSK\"\n"
		"knock {\n"
		"  port = 40000\n"
		"  queue = 7\n"
		"  window = 60\n"
		"  open_seconds = 45\n"
		"  max_open_seconds = 600\n"
		"  nft_family = \"ip6\"\n"
		"  nft_table = \"gate\"\n"
		"  nft_set4 = \"in4\"\n"
		"  nft_set6 = \"in_6\"\n"
		"  allow_target = true\n"
		"  state_file = \"/var/lib/gate/knocks\"\n"
		"  rate = 5\n"
		"  burst = 20\n"
		"  rate_sources = 100000\n"
		"  replay_entries = 200\n"
		"}\n"
		"tunnel {\n"
		"  listen = {\"127.0.0.1:9443\", \"[::1]:9443\", \"192.0.2.1:443\"}\n"
		"  egress = {22, 5432}\n"
		"}\n"
		"client \"alice\" {\n"
		"  public_key = " K1 "\n"
		"  open = {8443, 22}\n"
		"  expires = \"2027-06-30\"\n"
		"}\n"
		"client \"bob@laptop\" {\n"
		"  public_key = " K2 "\n"
		"}\n"
		"user = \"gatekeeper\"\n");

	(void)state;
	key_of(k1, K1);
	key_of(k2, K2);
	key_of(k3, K3);
	if (!server_config_load(&c, path, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(c.path, path);
	assert_string_equal(c.private_key_file, "/etc/postern/server.key");
	assert_int_equal(c.psk.kind, PSK_ENV);
	assert_string_equal(c.psk.value, "FLEET_PSK");
	assert_string_equal(c.user, "gatekeeper");

	assert_int_equal(c.knock.port, 40000);
	assert_int_equal(c.knock.queue, 7);
	assert_int_equal(c.knock.window, 60);
	assert_int_equal(c.knock.open_seconds, 45);
	assert_int_equal(c.knock.max_open_seconds, 600);
	assert_string_equal(c.knock.nft_family, "ip6");
	assert_string_equal(c.knock.nft_table, "gate");
	assert_string_equal(c.knock.nft_set4, "in4");
	assert_string_equal(c.knock.nft_set6, "in_6");
	assert_true(c.knock.allow_target);
	assert_string_equal(c.knock.state_file, "/var/lib/gate/knocks");
	assert_int_equal(c.knock.rate, 5);
	assert_int_equal(c.knock.burst, 20);
	assert_int_equal(c.knock.rate_sources, 100000);
	assert_int_equal(c.knock.replay_entries, 200);

	assert_int_equal(c.tunnel.n_listen, 3);
	assert_string_equal(c.tunnel.listen[0], "127.0.0.1:9443");
	assert_string_equal(c.tunnel.listen[1], "[::1]:9443");
	assert_string_equal(c.tunnel.listen[2], "192.0.2.1:443");
	assert_int_equal(c.tunnel.n_egress, 2);
	assert_int_equal(c.tunnel.egress[0], 22);
	assert_int_equal(c.tunnel.egress[1], 5432);

	assert_int_equal(c.n_clients, 2);
	alice = &c.clients[0];
	assert_string_equal(alice->name, "alice");
	assert_memory_equal(alice->public_key, k1, KEY_LEN);
	assert_int_equal(alice->n_open, 2);
	assert_int_equal(alice->open[0], 8443);
	assert_int_equal(alice->open[1], 22);
	/* Valid through 2027-06-30 UTC: refused from 2027-07-01T00:00:00Z. */
	assert_int_equal(alice->expires_at, 1814400000);
	assert_false(client_expired(alice, 1814400000 - 1));
	assert_true(client_expired(alice, 1814400000));
	assert_int_equal(alice->line, 24);

	bob = &c.clients[1];
	assert_string_equal(bob->name, "bob@laptop");
	assert_memory_equal(bob->public_key, k2, KEY_LEN);
	assert_int_equal(bob->n_open, 1);
	assert_int_equal(bob->open[0], 8443);
	assert_int_equal(bob->expires_at, 0);
	assert_false(client_expired(bob, INT64_MAX));
	assert_int_equal(bob->line, 29);

	assert_ptr_equal(server_config_find_client(&c, k1), alice);
	assert_ptr_equal(server_config_find_client(&c, k2), bob);
	assert_null(server_config_find_client(&c, k3));
	server_config_free(&c);
	assert_null(c.clients);
}

static void server_defaults(void **state)
{
	struct server_config c;
	char err[512], dir[512], want[1024];
	const char *path;

	(void)state;
	conf_dir(dir, sizeof(dir));
	path = conf("");
	if (!server_config_load(&c, path, err, sizeof(err)))
		fail_msg("%s", err);
	snprintf(want, sizeof(want), "%s/server.key", dir);
	assert_string_equal(c.private_key_file, want);
	assert_int_equal(c.psk.kind, PSK_FILE);
	snprintf(want, sizeof(want), "%s/psk", dir);
	assert_string_equal(c.psk.value, want);
	assert_string_equal(c.user, "postern-knock");
	assert_int_equal(c.knock.port, 62201);
	assert_int_equal(c.knock.queue, 0);
	assert_int_equal(c.knock.window, 30);
	assert_int_equal(c.knock.open_seconds, 30);
	assert_int_equal(c.knock.max_open_seconds, 300);
	assert_string_equal(c.knock.nft_family, "inet");
	assert_string_equal(c.knock.nft_table, "postern");
	assert_string_equal(c.knock.nft_set4, "allow4");
	assert_string_equal(c.knock.nft_set6, "allow6");
	assert_false(c.knock.allow_target);
	assert_null(c.knock.state_file);	/* posternd picks one */
	assert_int_equal(c.knock.rate, 2);
	assert_int_equal(c.knock.burst, 10);
	assert_int_equal(c.knock.rate_sources, 4096);
	assert_int_equal(c.knock.replay_entries, 64);
	assert_int_equal(c.tunnel.n_listen, 2);
	assert_string_equal(c.tunnel.listen[0], "0.0.0.0:8443");
	assert_string_equal(c.tunnel.listen[1], "[::]:8443");
	assert_int_equal(c.tunnel.n_egress, 1);
	assert_int_equal(c.tunnel.egress[0], 22);
	assert_int_equal(c.tunnel.handshake_timeout, 5);
	assert_int_equal(c.tunnel.max_handshakes, 1024);
	assert_int_equal(c.tunnel.max_handshakes_per_source, 256);
	assert_int_equal(c.tunnel.max_sessions, 1024);
	assert_int_equal(c.tunnel.max_sessions_per_client, 128);
	assert_int_equal(c.tunnel.max_streams, 256);
	assert_int_equal(c.tunnel.stream_open_timeout, 10);
	assert_int_equal(c.tunnel.stream_buffer, 1048576);
	assert_int_equal(c.n_clients, 0);
	server_config_free(&c);
}

static void relative_paths(void **state)
{
	struct server_config c;
	char err[512], dir[512], cwd[512], want[1024], old[512];

	(void)state;
	conf_dir(dir, sizeof(dir));
	conf("private_key_file = \"keys/server.key\"\n"
	     "psk_file = \"/run/postern/psk\"\n");
	if (!server_config_load(&c, conf_path, err, sizeof(err)))
		fail_msg("%s", err);
	snprintf(want, sizeof(want), "%s/keys/server.key", dir);
	assert_string_equal(c.private_key_file, want);
	assert_string_equal(c.psk.value, "/run/postern/psk");
	server_config_free(&c);
	conf("knock { state_file = \"state/knock.state\" }\n");
	if (!server_config_load(&c, conf_path, err, sizeof(err)))
		fail_msg("%s", err);
	snprintf(want, sizeof(want), "%s/state/knock.state", dir);
	assert_string_equal(c.knock.state_file, want);
	server_config_free(&c);

	/* A relative config path: still stored absolute. */
	conf("psk_file = \"fleet.psk\"\n");
	assert_non_null(getcwd(old, sizeof(old)));
	assert_int_equal(chdir(dir), 0);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_true(server_config_load(&c, "postern.conf", err, sizeof(err)));
	snprintf(want, sizeof(want), "%s/fleet.psk", cwd);
	assert_string_equal(c.psk.value, want);
	snprintf(want, sizeof(want), "%s/server.key", cwd);
	assert_string_equal(c.private_key_file, want);
	assert_string_equal(c.path, "postern.conf");
	server_config_free(&c);
	assert_int_equal(chdir("/"), 0);
	assert_int_equal(chdir(old), 0);
}

/* libconfuse 3.3 miscounts lines after comments and refuses comments in
 * lists; the loader works around both. */
static void comments(void **state)
{
	struct server_config c;
	char err[512];

	(void)state;
	server_fails("# one\n"
		     "// two\n"
		     "/* three\n"
		     "   four */\n"
		     "knock { # five\n"
		     "  window = 0 // six\n"
		     "}\n", 6, "knock: window: must be between 1 and 3600");
	conf("tunnel {\n"
	     "  egress = {22, # ssh\n"
	     "            443 /* https */}\n"
	     "  listen = {\"[::]:8443\" # a '#' \"in\" a comment\n"
	     "  }\n"
	     "}\n");
	if (!server_config_load(&c, conf_path, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(c.tunnel.n_egress, 2);
	assert_int_equal(c.tunnel.egress[1], 443);
	assert_int_equal(c.tunnel.n_listen, 1);
	server_config_free(&c);
	/* Inside a string, "#" is no comment: the whole name is checked. */
	server_fails("knock { nft_table = \"a#b\" }\n", 1,
		     "knock: nft_table: not a valid nftables name");
	server_fails("knock { nft_table = \"a//b\" }\n", 1,
		     "knock: nft_table: not a valid nftables name");
}

static void syntax_errors(void **state)
{
	(void)state;
	server_fails("windw = 3\n", 1, "no such option 'windw'");
	server_fails("knock {\n  queue = 1\n  windw = 3\n}\n", 3,
		     "no such option 'windw'");
	server_fails("\n\nkncok {\n}\n", 3, "no such option 'kncok'");
	server_fails("knock {\n  window = \"abc\"\n}\n", 2,
		     "knock: window: not a number");
	server_fails("knock {\n  window = 0x10\n}\n", 2,
		     "knock: window: not a number");
	server_fails("knock {\n  allow_target = maybe\n}\n", 2,
		     "invalid boolean value for option 'allow_target'");
	server_fails("psk_file = \"psk\n\n", 1, "unterminated string");
	server_fails("\n/* never\n closed\n", 2, "unterminated comment");
	server_fails("knock {\n", 1, "'{' is never closed");
	server_fails("client \"a\" {\n  public_key = " K1 "\n  open = {22,\n",
		     3, "'{' is never closed");
	server_fails("knock {\n}\n}\n", 3, "unexpected closing brace");
	/* ${VAR} is libconfuse's, and its braces are no section. */
	server_fails("psk_env = ${POSTERN_NO_SUCH_VAR:-1x}\n", 1,
		     "psk_env: not a valid environment variable name");
}

/* 481 egress ports fit in the server hello; 482 do not. */
static void too_many_egress_ports(void)
{
	char text[4096], *p = text;
	struct server_config c;
	char err[512];

	p += sprintf(p, "tunnel {\n  egress = {");
	for (int port = 1; port <= 481; port++)
		p += sprintf(p, "%s%d", port > 1 ? "," : "", port);
	sprintf(p, "}\n}\n");
	assert_true(server_config_load(&c, conf(text), err, sizeof(err)));
	assert_int_equal(c.tunnel.n_egress, 481);
	server_config_free(&c);
	sprintf(p, ",482}\n}\n");
	server_fails(text, 2, "tunnel: egress: at most 481 ports");
}

/* A knock opens all of a client's ports in one nf_tables batch, which
 * holds 256 elements: 257 ports are an error, not a silent cut. */
static void too_many_open_ports(void)
{
	char text[4096], *p = text;
	struct server_config c;
	char err[512];

	p += sprintf(p, "client \"a\" {\n  public_key = " K1 "\n  open = {");
	for (int port = 1; port <= 256; port++)
		p += sprintf(p, "%s%d", port > 1 ? "," : "", port);
	sprintf(p, "}\n}\n");
	assert_true(server_config_load(&c, conf(text), err, sizeof(err)));
	assert_int_equal(c.clients[0].n_open, 256);
	server_config_free(&c);
	sprintf(p, ",257}\n}\n");
	server_fails(text, 3, "client \"a\": open: at most 256 ports (one knock "
		     "opens them in one nf_tables batch)");
}

static void range_errors(void **state)
{
	(void)state;
	server_fails("knock {\n  window = 0\n}\n", 2,
		     "knock: window: must be between 1 and 3600");
	server_fails("knock { window = 3601 }\n", 1,
		     "knock: window: must be between 1 and 3600");
	server_fails("knock {\n  port = 0\n}\n", 2,
		     "knock: port: must be between 1 and 65535");
	server_fails("knock {\n\n  port = 65536\n}\n", 3,
		     "knock: port: must be between 1 and 65535");
	server_fails("knock {\n  queue = -1\n}\n", 2,
		     "knock: queue: must be between 0 and 65535");
	server_fails("knock {\n  queue = 99999999999999999999999\n}\n", 2,
		     "knock: queue: must be between 0 and 65535");
	server_fails("knock {\n  max_open_seconds = 10\n}\n", 2,
		     "knock: max_open_seconds: must be at least open_seconds (30)");
	server_fails("knock {\n  max_open_seconds = 100\n  open_seconds = 200\n}\n",
		     3, "knock: open_seconds: must not exceed max_open_seconds (100)");
	server_fails("tunnel {\n  egress = {22,\n    70000}\n}\n", 3,
		     "tunnel: egress: must be between 1 and 65535");
	server_fails("client \"a\" {\n  public_key = " K1 "\n  open = {0}\n}\n",
		     3, "client \"a\": open: must be between 1 and 65535");
	server_fails("knock {\n  rate = 0\n}\n", 2,
		     "knock: rate: must be between 1 and 1000");
	server_fails("knock {\n  burst = 1001\n}\n", 2,
		     "knock: burst: must be between 1 and 1000");
	server_fails("knock {\n  rate_sources = 15\n}\n", 2,
		     "knock: rate_sources: must be between 16 and 16777216");
	server_fails("knock {\n  replay_entries = 0\n}\n", 2,
		     "knock: replay_entries: must be between 1 and 1024");
	server_fails("knock {\n  state_file = \"\"\n}\n", 2,
		     "knock: state_file: must not be empty");
	too_many_egress_ports();
	too_many_open_ports();
}

static void value_errors(void **state)
{
	static const char *bad_listen[] = {
		"0.0.0.0", "1.2.3.4:0", "1.2.3.4:65536", "[::1]8443",
		"::1:8443", "localhost:8443", "300.1.1.1:1", "[1.2.3.4]:5",
		"1.2.3.4:+5", "1.2.3.4:", ":22", "[::1]:22x",
	};
	char text[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_listen) / sizeof(bad_listen[0]); i++) {
		snprintf(text, sizeof(text), "tunnel {\n  listen = "
			 "{\"0.0.0.0:1\",\n    \"%s\"}\n}\n", bad_listen[i]);
		server_fails(text, 3, "tunnel: listen: not ADDRESS:PORT or "
			     "[IPV6]:PORT");
	}
	server_fails("tunnel {\n  listen = {}\n}\n", 3,
		     "tunnel: listen: must name at least one address");
	server_fails("knock {\n  nft_family = \"bridge\"\n}\n", 2,
		     "knock: nft_family: must be one of inet, ip, ip6");
	server_fails("knock {\n  nft_table = \"a b\"\n}\n", 2,
		     "knock: nft_table: not a valid nftables name");
	server_fails("knock {\n  nft_set4 = \"\"\n}\n", 2,
		     "knock: nft_set4: not a valid nftables name");
	server_fails("knock {\n  nft_set6 = \"allow4\"\n}\n", 2,
		     "knock: nft_set6: must differ from nft_set4");
	server_fails("private_key_file = \"\"\n", 1,
		     "private_key_file: must not be empty");
	server_fails("psk_env = \"1BAD\"\n", 1,
		     "psk_env: not a valid environment variable name");
	server_fails("psk_credential = \"../psk\"\n", 1,
		     "psk_credential: not a valid credential name");
	server_fails("psk_passphrase_salt = \"short\"\n", 1,
		     "psk_passphrase_salt: must be at least 8 bytes long");
}

static void key_errors(void **state)
{
	struct server_config c;
	char err[512];
	/* 43 characters of what could be a private key: never echoed. */
	const char *secretish = "ERERERERERERERERERERERERERERERERERERERERERE";
	char text[256];

	(void)state;
	snprintf(text, sizeof(text), "\nclient \"alice\" {\n  public_key = "
		 "\"%s\"\n}\n", secretish);
	server_fails(text, 3, "client \"alice\": public_key: not a valid key");
	assert_false(server_config_load(&c, conf(text), err, sizeof(err)));
	assert_null(strstr(err, "ERERERER"));
	server_config_free(&c);

	server_fails("client \"alice\" {\n  open = {22}\n}\n", 1,
		     "client \"alice\": public_key: missing");
	server_fails("client \"alice\" {\n\n}\n", 1,
		     "client \"alice\": public_key: missing");
	server_fails("client \"alice\" {\n  public_key = " K1 "\n}\n"
		     "client \"bob\" {\n  open = {22}\n  public_key = " K1 "\n}\n",
		     6, "client \"bob\": public_key: same key as client \"alice\" "
		     "(line 2)");
	server_fails("client \"alice\" {\n  public_key = " K1 "\n}\n"
		     "\n"
		     "client \"alice\" {\n  public_key = " K2 "\n}\n",
		     5, "client \"alice\": defined twice (first on line 1)");
	server_fails("client \"-alice\" {\n  public_key = " K1 "\n}\n", 1,
		     "client: not a valid name");
	server_fails("client \"al ice\" {\n  public_key = " K1 "\n}\n", 1,
		     "client: not a valid name");
}

static void date_errors(void **state)
{
	static const char *bad[] = {
		"2027-02-29", "2027-13-01", "2027-00-10", "2027-6-30",
		"2028-02-30", "2027-04-31", "1969-12-31", "2027-06-30x",
		"27-06-30", "2027/06/30", "",
		"2027-06-30T12:00:00", "2027-06-30T24:00:00Z",
		"2027-06-30T12:60:00Z", "2027-06-30T12:00:60Z",
		"2027-06-30 12:00:00Z", "2027-06-30T12:00:00.5Z",
		"2027-06-30T12:00:00+2:00", "2027-06-30T12:00:00+24:00",
		"2027-06-30T12:00Z", "2027-06-30T",
	};
	struct server_config c;
	char text[256], err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "client \"alice\" {\n  public_key = "
			 K1 "\n  expires = \"%s\"\n}\n", bad[i]);
		server_fails(text, 3, "client \"alice\": expires: not a valid "
			     "date (expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)");
	}
	/* A leap day is a day, through its end. */
	conf("client \"alice\" {\n  public_key = " K1 "\n"
	     "  expires = \"2028-02-29\"\n}\n"
	     "client \"bob\" {\n  public_key = " K2 "\n"
	     "  expires = \"1970-01-01\"\n}\n");
	if (!server_config_load(&c, conf_path, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(c.clients[0].expires_at, 1835481600);
	assert_int_equal(c.clients[1].expires_at, 86400);
	server_config_free(&c);
}

/* An RFC 3339 timestamp is the first instant refused, to the second. */
static void timestamp_expiry(void **state)
{
	struct server_config c;
	char err[512];

	(void)state;
	conf("client \"alice\" {\n  public_key = " K1 "\n"
	     "  expires = \"2027-06-30T12:00:00Z\"\n}\n"
	     "client \"bob\" {\n  public_key = " K2 "\n"
	     "  expires = \"2027-06-30T14:30:05+02:30\"\n}\n"
	     "client \"carol\" {\n  public_key = " K3 "\n"
	     "  expires = \"2027-06-30t00:00:00-01:00\"\n}\n");
	if (!server_config_load(&c, conf_path, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(c.clients[0].expires_at, 1814356800);
	assert_int_equal(c.clients[1].expires_at, 1814356805);
	assert_int_equal(c.clients[2].expires_at, 1814317200);
	assert_false(client_expired(&c.clients[0], 1814356799));
	assert_true(client_expired(&c.clients[0], 1814356800));
	server_config_free(&c);
}

static void tunnel_limits(void **state)
{
	struct server_config c;
	char err[512];

	(void)state;
	conf("tunnel {\n  handshake_timeout = 2\n  max_handshakes = 10\n"
	     "  max_handshakes_per_source = 3\n  max_sessions = 7\n"
	     "  max_sessions_per_client = 1\n  max_streams = 5\n"
	     "  stream_open_timeout = 4\n  stream_buffer = 262144\n}\n");
	if (!server_config_load(&c, conf_path, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(c.tunnel.handshake_timeout, 2);
	assert_int_equal(c.tunnel.max_handshakes, 10);
	assert_int_equal(c.tunnel.max_handshakes_per_source, 3);
	assert_int_equal(c.tunnel.max_sessions, 7);
	assert_int_equal(c.tunnel.max_sessions_per_client, 1);
	assert_int_equal(c.tunnel.max_streams, 5);
	assert_int_equal(c.tunnel.stream_open_timeout, 4);
	assert_int_equal(c.tunnel.stream_buffer, 262144);
	server_config_free(&c);
	server_fails("tunnel {\n  handshake_timeout = 0\n}\n", 2,
		     "tunnel: handshake_timeout: must be between 1 and 120");
	server_fails("tunnel {\n  max_handshakes_per_source = 0\n}\n", 2,
		     "tunnel: max_handshakes_per_source: must be between 1 and 100000");
	server_fails("tunnel {\n  stream_buffer = 65536\n}\n", 2,
		     "tunnel: stream_buffer: must be between 262144 and 16777216");
	server_fails("tunnel {\n  max_streams = 65537\n}\n", 2,
		     "tunnel: max_streams: must be between 1 and 65536");
}

static void psk_conflicts(void **state)
{
	(void)state;
	server_fails("psk_file = \"a\"\n# two\npsk_env = \"PSK\"\n", 3,
		     "psk_env: conflicts with psk_file on line 1");
	/* Line order, not table order, decides which one is blamed. */
	server_fails("psk_passphrase_salt = \"0123456789\"\npsk_credential = \"psk\"\n",
		     2, "psk_credential: conflicts with psk_passphrase_salt on line 1");
}

/* clients.d/ beside the config: *.conf in name order, hidden files
 * skipped, client sections only, checked across files, not writable by
 * others. Removed at the end: other tests load from the same directory. */
static void clients_dropins(void **state)
{
	struct server_config c;
	char err[512], dir[512], a[600], b[600], hidden[600], want[1400];
	const char *path = conf("client \"main\" { public_key = " K1 " }\n");

	(void)state;
	snprintf(dir, sizeof(dir), "%s/" CLIENTS_DIR, temp_dir_path());
	snprintf(a, sizeof(a), "%s/b-second.conf", dir);
	snprintf(b, sizeof(b), "%s/a-first.conf", dir);
	snprintf(hidden, sizeof(hidden), "%s/.tmp.conf", dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	write_temp_file(CLIENTS_DIR "/b-second.conf",
			"client \"bob\" { public_key = " K3 " open = {22} }\n", 0644);
	write_temp_file(CLIENTS_DIR "/a-first.conf",
			"client \"alice\" { public_key = " K2 " }\n", 0644);
	write_temp_file(CLIENTS_DIR "/.tmp.conf", "not even a config\n", 0644);
	write_temp_file(CLIENTS_DIR "/notes.txt", "nor this\n", 0644);
	assert_true(server_config_load(&c, path, err, sizeof(err)));
	assert_int_equal(c.n_clients, 3);
	assert_string_equal(c.clients[0].name, "main");
	assert_string_equal(c.clients[0].file, path);
	assert_string_equal(c.clients[1].name, "alice");
	assert_string_equal(c.clients[1].file, b);
	assert_string_equal(c.clients[2].name, "bob");
	assert_string_equal(c.clients[2].file, a);
	assert_int_equal(c.clients[2].n_open, 1);
	assert_int_equal(c.clients[2].open[0], 22);
	server_config_free(&c);

	/* A name or a key twice, across files: both places named. */
	write_temp_file(CLIENTS_DIR "/b-second.conf",
			"client \"main\" { public_key = " K3 " }\n", 0644);
	assert_false(server_config_load(&c, path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:1: client \"main\": same name as "
		 "client \"main\" (%s:1)", a, path);
	assert_string_equal(err, want);
	write_temp_file(CLIENTS_DIR "/b-second.conf",
			"client \"bob\" { public_key = " K2 " }\n", 0644);
	assert_false(server_config_load(&c, path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:1: client \"bob\": same key as "
		 "client \"alice\" (%s:1)", a, b);
	assert_string_equal(err, want);

	/* Nothing but client sections; errors name the drop-in. */
	write_temp_file(CLIENTS_DIR "/b-second.conf", "knock { port = 1 }\n", 0644);
	assert_false(server_config_load(&c, path, err, sizeof(err)));
	assert_non_null(strstr(err, a));
	assert_null(c.clients);

	/* A FIFO or a directory where a drop-in should be: refused at once,
	 * not waited on (a reload must not hang). */
	unlink(a);
	assert_int_equal(mkfifo(a, 0644), 0);
	assert_false(server_config_load(&c, path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: not a regular file", a);
	assert_string_equal(err, want);
	unlink(a);
	assert_int_equal(mkdir(a, 0755), 0);
	assert_false(server_config_load(&c, path, err, sizeof(err)));
	assert_non_null(strstr(err, "Is a directory"));
	rmdir(a);

	/* Another user's file decides nothing (root can give it away). */
	if (geteuid() == 0) {
		write_temp_file(CLIENTS_DIR "/b-second.conf",
				"client \"bob\" { public_key = " K3 " }\n", 0644);
		assert_int_equal(chown(a, 65534, 65534), 0);
		assert_false(server_config_load(&c, path, err, sizeof(err)));
		snprintf(want, sizeof(want), "%s: owned by uid 65534, neither "
			 "root nor this user; fix with: chown root %s", a, a);
		assert_string_equal(err, want);
		unlink(a);
	}

	/* Whoever may write in it decides who gets in. */
	assert_int_equal(chmod(dir, 0775), 0);
	assert_false(server_config_load(&c, path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: writable by group or others; fix "
		 "with: chmod go-w %s", dir, dir);
	assert_string_equal(err, want);
	unlink(b);
	unlink(hidden);
	snprintf(b, sizeof(b), "%s/notes.txt", dir);
	unlink(b);
	assert_int_equal(rmdir(dir), 0);
}

/* Under systemd both daemons read the server key as a credential. */
static void private_key_credential(void **state)
{
	struct server_config c;
	uint8_t key[KEY_LEN], want[KEY_LEN];
	char err[512], dir[512];
	const char *path = conf("private_key_credential = \"server.key\"\n");

	(void)state;
	assert_true(server_config_load(&c, path, err, sizeof(err)));
	assert_string_equal(c.private_key_credential, "server.key");

	/* Run by hand (no CREDENTIALS_DIRECTORY): the file of that name
	 * beside the config, where the units' LoadCredential= reads it. */
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_false(server_config_load_key(&c, key, err, sizeof(err)));
	snprintf(dir, sizeof(dir), "%s/server.key", temp_dir_path());
	assert_non_null(strstr(err, dir));
	write_temp_file("server.key", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", 0400);
	assert_true(server_config_load_key(&c, key, err, sizeof(err)));
	key_of(want, K1);
	assert_memory_equal(key, want, KEY_LEN);

	/* Under systemd, the credential and nothing else. */
	snprintf(dir, sizeof(dir), "%s/no-such-dir", temp_dir_path());
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	assert_false(server_config_load_key(&c, key, err, sizeof(err)));
	assert_non_null(strstr(err, dir));
	snprintf(dir, sizeof(dir), "%s", temp_dir_path());
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	assert_true(server_config_load_key(&c, key, err, sizeof(err)));
	assert_memory_equal(key, want, KEY_LEN);
	unsetenv("CREDENTIALS_DIRECTORY");
	server_config_free(&c);

	/* The PSK's credential has its file beside the config too. */
	path = conf("psk_credential = \"fleet\"\n");
	assert_true(server_config_load(&c, path, err, sizeof(err)));
	snprintf(dir, sizeof(dir), "%s/fleet", temp_dir_path());
	assert_string_equal(c.psk.value, "fleet");
	assert_string_equal(c.psk.file, dir);
	server_config_free(&c);

	server_fails("private_key_file = \"k\"\nprivate_key_credential = \"k\"\n", 2,
		     "private_key_credential: conflicts with private_key_file on line 1");
	server_fails("private_key_credential = \"../etc/shadow\"\n", 1,
		     "private_key_credential: not a valid credential name");
}

static void file_errors(void **state)
{
	struct server_config c;
	char err[512], dir[512], path[1024];

	(void)state;
	conf_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/missing.conf", dir);
	assert_false(server_config_load(&c, path, err, sizeof(err)));
	expect_error(err, path, 0, "No such file or directory");
	assert_false(server_config_load(&c, dir, err, sizeof(err)));
	expect_error(err, dir, 0, "Is a directory");
	snprintf(path, sizeof(path), "%s",
		 write_temp_file("open.conf", "", 0664));
	assert_false(server_config_load(&c, path, err, sizeof(err)));
	expect_error(err, path, 0, "writable by group or others; fix with: "
		     "chmod go-w");
	server_config_free(&c);
}

static void cli_full(void **state)
{
	struct cli_config c;
	uint8_t k1[KEY_LEN], k2[KEY_LEN];
	char err[512], dir[512], want[1024];
	const struct server_entry *web1, *db;

	(void)state;
	conf_dir(dir, sizeof(dir));
	key_of(k1, K1);
	key_of(k2, K2);
	conf("private_key_file = \"keys/admin.key\"\n"
	     "psk_passphrase_salt = \"acme-fleet-2026\"\n"
	     "connect_timeout = 45\n"
	     "server \"web1\" {\n"
	     "  address = \"203.0.113.10\"\n"
	     "  public_key = " K1 "\n"
	     "}\n"
	     "server \"db\" {\n"
	     "  address = \"db.example.net\"\n"
	     "  tunnel_port = 9443\n"
	     "  knock_port = 40000\n"
	     "  public_key = " K2 "\n"
	     "}\n"
	     "forward {\n"
	     "  listen = \"127.0.0.1:2201\"\n"
	     "  server = \"web1\"\n"
	     "  port = 22\n"
	     "}\n"
	     "forward { listen = \"[::1]:5432\"  server = \"db\"  port = 5432 }\n");
	if (!cli_config_load(&c, conf_path, err, sizeof(err)))
		fail_msg("%s", err);
	snprintf(want, sizeof(want), "%s/keys/admin.key", dir);
	assert_string_equal(c.private_key_file, want);
	assert_int_equal(c.psk.kind, PSK_PASSPHRASE);
	assert_string_equal(c.psk.value, "acme-fleet-2026");
	assert_int_equal(c.connect_timeout, 45);
	assert_int_equal(c.n_servers, 2);
	web1 = cli_config_find_server(&c, "web1");
	db = cli_config_find_server(&c, "db");
	assert_ptr_equal(web1, &c.servers[0]);
	assert_ptr_equal(db, &c.servers[1]);
	assert_null(cli_config_find_server(&c, "web2"));
	assert_string_equal(web1->address, "203.0.113.10");
	assert_int_equal(web1->tunnel_port, 8443);
	assert_int_equal(web1->knock_port, 62201);
	assert_memory_equal(web1->public_key, k1, KEY_LEN);
	assert_string_equal(db->address, "db.example.net");
	assert_int_equal(db->tunnel_port, 9443);
	assert_int_equal(db->knock_port, 40000);
	assert_memory_equal(db->public_key, k2, KEY_LEN);
	assert_int_equal(c.n_forwards, 2);
	assert_string_equal(c.forwards[0].listen, "127.0.0.1:2201");
	assert_string_equal(c.forwards[0].server, "web1");
	assert_int_equal(c.forwards[0].port, 22);
	assert_string_equal(c.forwards[1].listen, "[::1]:5432");
	assert_string_equal(c.forwards[1].server, "db");
	assert_int_equal(c.forwards[1].port, 5432);
	cli_config_free(&c);

	/* Defaults of an empty file. */
	conf("");
	assert_true(cli_config_load(&c, conf_path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s/admin.key", dir);
	assert_string_equal(c.private_key_file, want);
	assert_int_equal(c.psk.kind, PSK_FILE);
	snprintf(want, sizeof(want), "%s/psk", dir);
	assert_string_equal(c.psk.value, want);
	assert_int_equal(c.n_servers, 0);
	assert_int_equal(c.n_forwards, 0);
	assert_int_equal(c.connect_timeout, 10);
	cli_config_free(&c);
}

static void cli_errors(void **state)
{
	const char *web1 = "server \"web1\" {\n"
			   "  address = \"203.0.113.10\"\n"
			   "  public_key = " K1 "\n"
			   "}\n";
	char text[512];

	(void)state;
	snprintf(text, sizeof(text), "%sforward {\n  listen = \"127.0.0.1:2201\"\n"
		 "  server = \"web9\"\n  port = 22\n}\n", web1);
	cli_fails(text, 7, "forward: server: no server \"web9\" is configured");
	snprintf(text, sizeof(text), "%sforward {\n  listen = \"127.0.0.1:2201\"\n"
		 "  server = \"web1\"\n}\n", web1);
	cli_fails(text, 5, "forward: port: missing");
	snprintf(text, sizeof(text), "%sforward { listen = \"127.0.0.1:1\" "
		 "server = \"web1\" port = 22 }\n"
		 "forward { listen = \"127.0.0.1:1\" server = \"web1\" port = 80 }\n",
		 web1);
	cli_fails(text, 6, "forward: listen: already used by the forward on "
		  "line 5");
	snprintf(text, sizeof(text), "%sforward {\n  listen = \"127.0.0.1\"\n}\n",
		 web1);
	cli_fails(text, 6, "forward: listen: not ADDRESS:PORT");
	cli_fails("server \"web1\" {\n  public_key = " K1 "\n}\n", 1,
		  "server \"web1\": address: missing");
	cli_fails("server \"web1\" {\n  address = \"a b\"\n}\n", 2,
		  "server \"web1\": address: not a valid host name or address");
	cli_fails("server \"web1\" {\n  adress = \"x\"\n}\n", 2,
		  "no such option 'adress'");
	cli_fails("server \"web1\" {\n  knock_port = 0\n}\n", 2,
		  "server \"web1\": knock_port: must be between 1 and 65535");
	snprintf(text, sizeof(text), "%s%s", web1, web1);
	cli_fails(text, 5, "server \"web1\": defined twice (first on line 1)");
	/* Server-only sections are unknown to the CLI, and the reverse. */
	cli_fails("knock {\n}\n", 1, "no such option 'knock'");
	server_fails("forward {\n}\n", 1, "no such option 'forward'");
	cli_fails("psk_env = \"A\"\npsk_file = \"p\"\n", 2,
		  "psk_file: conflicts with psk_env on line 1");
	cli_fails("\nconnect_timeout = 0\n", 2,
		  "connect_timeout: must be between 1 and 600");
	server_fails("connect_timeout = 10\n", 1, "no such option 'connect_timeout'");
}

/* Mistakes whose plain error would mislead: the message names the fix. */
static void hint_errors(void **state)
{
	(void)state;
	cli_fails("server \"web1\" {\n  address = \"203.0.113.10:8443\"\n}\n", 2,
		  "server \"web1\": address: \"203.0.113.10:8443\" holds a port: "
		  "write address = \"203.0.113.10\" and tunnel_port = 8443");
	cli_fails("server \"web1\" {\n  address = \"[2001:db8::1]:8443\"\n}\n", 2,
		  "server \"web1\": address: \"[2001:db8::1]:8443\" holds a port: "
		  "write address = \"2001:db8::1\" and tunnel_port = 8443");
	cli_fails("server \"web1\" {\n  address = \"db.example.net:22\"\n}\n", 2,
		  "server \"web1\": address: \"db.example.net:22\" holds a port: "
		  "write address = \"db.example.net\" and tunnel_port = 22");
	/* A bare IPv6 address is a host. */
	cli_fails("server \"web1\" {\n  address = \"2001:db8::1\"\n}\n", 1,
		  "server \"web1\": public_key: missing");
	/* Unquoted, a key ends at '+', '/' or '=', or opens a comment. */
	cli_fails("server \"web1\" {\n  address = \"h\"\n"
		  "  public_key = XZHscqWH5W6pmmqXNoqAKvD9jPhTC+AyvkdsBfETn30=\n}\n", 3,
		  "public_key: not quoted: write public_key = \"KEY\" (unquoted, "
		  "a key's '+', '/' and '=' end the value or start a comment)");
	cli_fails("server \"web1\" { address = \"h\"  public_key = "
		  "AAAAAAAAAAAAAAAAAAAA/*AAAAAAAAAAAAAAAAAAAAA= }\n", 1,
		  "public_key: not quoted");
	server_fails("\nclient \"alice\" {\n\tpublic_key=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n}\n",
		     3, "public_key: not quoted");
}

static void default_path(void **state)
{
	char buf[256];

	(void)state;
	setenv("POSTERN_HOME", "/srv/p", 1);
	setenv("XDG_CONFIG_HOME", "/x/cfg", 1);
	setenv("HOME", "/home/alice", 1);
	assert_true(cli_config_default_path(buf, sizeof(buf)));
	assert_string_equal(buf, "/srv/p/postern.conf");
	assert_false(cli_config_default_path(buf, 10));

	setenv("POSTERN_HOME", "", 1);	/* empty is unset */
	assert_true(cli_config_default_path(buf, sizeof(buf)));
	assert_string_equal(buf, "/x/cfg/postern/postern.conf");

	unsetenv("POSTERN_HOME");
	setenv("XDG_CONFIG_HOME", "relative", 1);	/* ignored, as XDG says */
	assert_true(cli_config_default_path(buf, sizeof(buf)));
	assert_string_equal(buf, "/home/alice/.config/postern/postern.conf");

	unsetenv("XDG_CONFIG_HOME");
	assert_true(cli_config_default_path(buf, sizeof(buf)));
	assert_string_equal(buf, "/home/alice/.config/postern/postern.conf");
}

static void parse_address(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t len = 0;

	(void)state;
	assert_true(addr_parse("192.0.2.7:2201", &ss, &len));
	assert_int_equal(s4->sin_family, AF_INET);
	assert_int_equal(ntohs(s4->sin_port), 2201);
	assert_int_equal(ntohl(s4->sin_addr.s_addr), 0xc0000207);
	assert_int_equal(len, sizeof(*s4));

	assert_true(addr_parse("[2001:db8::1]:65535", &ss, &len));
	assert_int_equal(s6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(s6->sin6_port), 65535);
	assert_int_equal(s6->sin6_addr.s6_addr[0], 0x20);
	assert_int_equal(s6->sin6_addr.s6_addr[15], 0x01);
	assert_int_equal(len, sizeof(*s6));

	assert_false(addr_parse("192.0.2.7:0", &ss, &len));
	assert_false(addr_parse("2001:db8::1:22", &ss, &len));
	assert_false(addr_parse("[fe80::1%eth0]:22", &ss, &len));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(server_full),
		cmocka_unit_test(server_defaults),
		cmocka_unit_test(relative_paths),
		cmocka_unit_test(comments),
		cmocka_unit_test(syntax_errors),
		cmocka_unit_test(range_errors),
		cmocka_unit_test(value_errors),
		cmocka_unit_test(key_errors),
		cmocka_unit_test(date_errors),
		cmocka_unit_test(psk_conflicts),
		cmocka_unit_test(private_key_credential),
		cmocka_unit_test(clients_dropins),
		cmocka_unit_test(file_errors),
		cmocka_unit_test(timestamp_expiry),
		cmocka_unit_test(tunnel_limits),
		cmocka_unit_test(cli_full),
		cmocka_unit_test(cli_errors),
		cmocka_unit_test(hint_errors),
		cmocka_unit_test(default_path),
		cmocka_unit_test(parse_address),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
