/*
 * Configuration files through libconfuse 3.3.
 *
 * Every value is checked while libconfuse parses it, from a validate
 * callback, because that is the only moment it knows the value's line.
 * Checks that need the whole file (required options, duplicates, names that
 * must resolve) run afterwards, on lines noted during the parse.
 */
#include "config.h"

#include <confuse.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "config_text.h"
#include "keys.h"
#include "psk.h"

#define CONFIG_MAX_SIZE (1 << 20)
#define NAME_MAX_LEN 64		/* client and server names */
#define NFT_NAME_MAX_LEN 255	/* NFT_NAME_MAXLEN less its NUL */
#define HOST_MAX_LEN 255
#define SECONDS_PER_DAY 86400

enum check {
	CHECK_RANGE,		/* integers, each value of a list */
	CHECK_FILE,		/* a file name */
	CHECK_ENV,		/* an environment variable's name */
	CHECK_CREDENTIAL,	/* a systemd credential's name */
	CHECK_SALT,
	CHECK_FAMILY,		/* an nftables family */
	CHECK_NFT_NAME,		/* an nftables table or set */
	CHECK_ADDRESS,		/* addr_parse */
	CHECK_KEY,		/* a public key in base64 */
	CHECK_DATE,		/* YYYY-MM-DD */
	CHECK_HOST,		/* a host name or address to resolve later */
	CHECK_NAME,		/* a client or server name */
};

struct rule {
	const char *section;	/* libconfuse calls the top level "root" */
	const char *option;
	enum check check;
	long min, max;
};

static const struct rule rules[] = {
	{ "root", "private_key_file", CHECK_FILE, 0, 0 },
	{ "root", "private_key_credential", CHECK_CREDENTIAL, 0, 0 },
	{ "root", "psk_file", CHECK_FILE, 0, 0 },
	{ "root", "psk_env", CHECK_ENV, 0, 0 },
	{ "root", "psk_credential", CHECK_CREDENTIAL, 0, 0 },
	{ "root", "psk_passphrase_salt", CHECK_SALT, 0, 0 },
	{ "root", "connect_timeout", CHECK_RANGE, 1, 600 },
	{ "knock", "port", CHECK_RANGE, 1, 65535 },
	{ "knock", "queue", CHECK_RANGE, 0, 65535 },
	{ "knock", "window", CHECK_RANGE, 1, 3600 },
	{ "knock", "open_seconds", CHECK_RANGE, 1, SECONDS_PER_DAY },
	{ "knock", "max_open_seconds", CHECK_RANGE, 1, SECONDS_PER_DAY },
	{ "knock", "nft_family", CHECK_FAMILY, 0, 0 },
	{ "knock", "nft_table", CHECK_NFT_NAME, 0, 0 },
	{ "knock", "nft_set4", CHECK_NFT_NAME, 0, 0 },
	{ "knock", "nft_set6", CHECK_NFT_NAME, 0, 0 },
	{ "knock", "state_file", CHECK_FILE, 0, 0 },
	{ "knock", "status_file", CHECK_FILE, 0, 0 },
	{ "tunnel", "status_file", CHECK_FILE, 0, 0 },
	{ "knock", "rate", CHECK_RANGE, 1, 1000 },
	{ "knock", "burst", CHECK_RANGE, 1, 1000 },
	{ "knock", "rate_sources", CHECK_RANGE, 16, 1 << 24 },
	{ "knock", "replay_entries", CHECK_RANGE, 1, 1024 },
	{ "tunnel", "listen", CHECK_ADDRESS, 0, 0 },
	{ "tunnel", "egress", CHECK_RANGE, 1, 65535 },
	{ "tunnel", "handshake_timeout", CHECK_RANGE, 1, 120 },
	{ "tunnel", "max_handshakes", CHECK_RANGE, 1, 100000 },
	{ "tunnel", "max_handshakes_per_source", CHECK_RANGE, 1, 100000 },
	{ "tunnel", "max_sessions", CHECK_RANGE, 1, 100000 },
	{ "tunnel", "max_sessions_per_client", CHECK_RANGE, 1, 100000 },
	{ "tunnel", "max_streams", CHECK_RANGE, 1, 65536 },
	{ "tunnel", "stream_open_timeout", CHECK_RANGE, 1, 300 },
	/* At least the protocol's window: a peer may send that much at once. */
	{ "tunnel", "stream_buffer", CHECK_RANGE, 262144, 16777216 },
	{ "client", "public_key", CHECK_KEY, 0, 0 },
	{ "client", "open", CHECK_RANGE, 1, 65535 },
	{ "client", "expires", CHECK_DATE, 0, 0 },
	{ "server", "address", CHECK_HOST, 0, 0 },
	{ "server", "tunnel_port", CHECK_RANGE, 1, 65535 },
	{ "server", "knock_port", CHECK_RANGE, 1, 65535 },
	{ "server", "public_key", CHECK_KEY, 0, 0 },
	{ "forward", "listen", CHECK_ADDRESS, 0, 0 },
	{ "forward", "server", CHECK_NAME, 0, 0 },
	{ "forward", "port", CHECK_RANGE, 1, 65535 },
};

static int parse_number(cfg_t *sec, cfg_opt_t *opt, const char *value,
			void *result);

/* The PSK options, at most one of which may be set. */
#define PSK_OPTS \
	CFG_STR("psk_file", NULL, CFGF_NODEFAULT), \
	CFG_STR("psk_env", NULL, CFGF_NODEFAULT), \
	CFG_STR("psk_credential", NULL, CFGF_NODEFAULT), \
	CFG_STR("psk_passphrase_salt", NULL, CFGF_NODEFAULT)

static const struct {
	const char *option;
	enum psk_kind kind;
} psk_options[] = {
	{ "psk_file", PSK_FILE },
	{ "psk_env", PSK_ENV },
	{ "psk_credential", PSK_CREDENTIAL },
	{ "psk_passphrase_salt", PSK_PASSPHRASE },
};

static cfg_opt_t knock_opts[] = {
	CFG_INT_CB("port", DEFAULT_KNOCK_PORT, CFGF_NONE, parse_number),
	CFG_INT_CB("queue", 0, CFGF_NONE, parse_number),
	CFG_INT_CB("window", 30, CFGF_NONE, parse_number),
	CFG_INT_CB("open_seconds", 30, CFGF_NONE, parse_number),
	CFG_INT_CB("max_open_seconds", 300, CFGF_NONE, parse_number),
	CFG_STR("nft_family", "inet", CFGF_NONE),
	CFG_STR("nft_table", "postern", CFGF_NONE),
	CFG_STR("nft_set4", "allow4", CFGF_NONE),
	CFG_STR("nft_set6", "allow6", CFGF_NONE),
	CFG_BOOL("allow_target", cfg_false, CFGF_NONE),
	CFG_STR("state_file", NULL, CFGF_NODEFAULT),
	CFG_STR("status_file", POSTERND_STATUS_FILE, CFGF_NONE),
	CFG_INT_CB("rate", 2, CFGF_NONE, parse_number),
	CFG_INT_CB("burst", 10, CFGF_NONE, parse_number),
	CFG_INT_CB("rate_sources", 4096, CFGF_NONE, parse_number),
	CFG_INT_CB("replay_entries", 64, CFGF_NONE, parse_number),
	CFG_END()
};

static cfg_opt_t tunnel_opts[] = {
	CFG_STR_LIST("listen", "{\"0.0.0.0:8443\", \"[::]:8443\"}", CFGF_NONE),
	CFG_INT_LIST_CB("egress", "{22}", CFGF_NONE, parse_number),
	CFG_INT_CB("handshake_timeout", 5, CFGF_NONE, parse_number),
	CFG_INT_CB("max_handshakes", 1024, CFGF_NONE, parse_number),
	CFG_INT_CB("max_handshakes_per_source", 256, CFGF_NONE, parse_number),
	CFG_INT_CB("max_sessions", 1024, CFGF_NONE, parse_number),
	CFG_INT_CB("max_sessions_per_client", 128, CFGF_NONE, parse_number),
	CFG_INT_CB("max_streams", 256, CFGF_NONE, parse_number),
	CFG_INT_CB("stream_open_timeout", 10, CFGF_NONE, parse_number),
	CFG_INT_CB("stream_buffer", 1048576, CFGF_NONE, parse_number),
	CFG_STR("status_file", TUNNELD_STATUS_FILE, CFGF_NONE),
	CFG_END()
};

static cfg_opt_t client_opts[] = {
	CFG_STR("public_key", NULL, CFGF_NODEFAULT),
	CFG_INT_LIST_CB("open", "{8443}", CFGF_NONE, parse_number),
	CFG_STR("expires", NULL, CFGF_NODEFAULT),
	CFG_END()
};

static cfg_opt_t server_file_opts[] = {
	CFG_STR("private_key_file", "server.key", CFGF_NONE),
	CFG_STR("private_key_credential", NULL, CFGF_NODEFAULT),
	CFG_STR("user", POSTERN_KNOCK_USER, CFGF_NONE),
	PSK_OPTS,
	CFG_SEC("knock", knock_opts, CFGF_NONE),
	CFG_SEC("tunnel", tunnel_opts, CFGF_NONE),
	CFG_SEC("client", client_opts,
		CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
	CFG_END()
};

/* A drop-in of clients.d/: client sections and nothing else. */
static cfg_opt_t clients_file_opts[] = {
	CFG_SEC("client", client_opts,
		CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
	CFG_END()
};

static cfg_opt_t server_opts[] = {
	CFG_STR("address", NULL, CFGF_NODEFAULT),
	CFG_INT_CB("tunnel_port", DEFAULT_TUNNEL_PORT, CFGF_NONE, parse_number),
	CFG_INT_CB("knock_port", DEFAULT_KNOCK_PORT, CFGF_NONE, parse_number),
	CFG_STR("public_key", NULL, CFGF_NODEFAULT),
	CFG_END()
};

static cfg_opt_t forward_opts[] = {
	CFG_STR("listen", NULL, CFGF_NODEFAULT),
	CFG_STR("server", NULL, CFGF_NODEFAULT),
	CFG_INT_CB("port", 0, CFGF_NODEFAULT, parse_number),
	CFG_END()
};

static cfg_opt_t cli_file_opts[] = {
	CFG_STR("private_key_file", "admin.key", CFGF_NONE),
	PSK_OPTS,
	CFG_INT_CB("connect_timeout", 10, CFGF_NONE, parse_number),
	CFG_SEC("server", server_opts,
		CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
	CFG_SEC("forward", forward_opts, CFGF_MULTI),
	CFG_END()
};

/* Where a value was set: opt NULL marks where its section began. */
struct note {
	const cfg_t *sec;
	const char *opt;
	int line;
};

/*
 * The state of one load. libconfuse's callbacks carry no pointer of ours,
 * and its lexer is global anyway, so this is too.
 */
static struct {
	const char *path;
	const char *titled;	/* the file's kind of titled section */
	char *err;
	size_t err_len;
	cfg_t *root;		/* NULL while cfg_init parses the defaults */
	struct note *notes;
	size_t n_notes, cap;
	bool oom;
} ctx;

static void note(const cfg_t *sec, const char *opt, int line)
{
	if (ctx.n_notes == ctx.cap) {
		size_t cap = ctx.cap ? 2 * ctx.cap : 64;
		struct note *n = reallocarray(ctx.notes, cap, sizeof(*n));

		if (!n) {
			ctx.oom = true;
			return;
		}
		ctx.notes = n;
		ctx.cap = cap;
	}
	ctx.notes[ctx.n_notes++] = (struct note){ sec, opt, line };
}

/* True when the file itself set opt in sec (not only its default). */
static bool set_in_file(const cfg_t *sec, const char *opt)
{
	for (size_t i = 0; i < ctx.n_notes; i++)
		if (ctx.notes[i].sec == sec && ctx.notes[i].opt &&
		    strcmp(ctx.notes[i].opt, opt) == 0)
			return true;
	return false;
}

/* Where opt was last set in sec; else where sec began; else where it
 * ended (a section in which no value was set). */
static int line_of(const cfg_t *sec, const char *opt)
{
	size_t i;

	for (i = ctx.n_notes; opt && i-- > 0;)
		if (ctx.notes[i].sec == sec && ctx.notes[i].opt &&
		    strcmp(ctx.notes[i].opt, opt) == 0)
			return ctx.notes[i].line;
	for (i = ctx.n_notes; i-- > 0;)
		if (ctx.notes[i].sec == sec && !ctx.notes[i].opt)
			return ctx.notes[i].line;
	return sec->line;
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* Names appear in logs and on command lines: a small alphabet, and no
 * leading '-' that would read as an option. */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NAME_MAX_LEN || !name_char(s[0]))
		return false;
	for (; *s; s++)
		if (!name_char(*s) && *s != '.' && *s != '_' && *s != '-' &&
		    *s != '@')
			return false;
	return true;
}

/* "knock: ", "client \"alice\": ", or nothing at the top level. A title
 * that is not a valid name is left out: it may hold anything. */
static void section_label(char *buf, size_t len, const cfg_t *sec)
{
	if (!sec || sec == ctx.root)
		buf[0] = '\0';
	else if (sec->title && name_ok(sec->title))
		snprintf(buf, len, "%s \"%s\": ", sec->name, sec->title);
	else
		snprintf(buf, len, "%s: ", sec->name);
}

/* The first error wins: what follows is usually a consequence. */
__attribute__((format(printf, 4, 0)))
static void verror(const cfg_t *sec, int line, const char *opt,
		   const char *fmt, va_list ap)
{
	char msg[256], label[NAME_MAX_LEN + 32], where[32] = "";
	char *p;

	if (ctx.err_len == 0 || ctx.err[0])
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	section_label(label, sizeof(label), sec);
	if (line > 0)
		snprintf(where, sizeof(where), "%d:", line);
	snprintf(ctx.err, ctx.err_len, "%s:%s %s%s%s%s", ctx.path, where,
		 label, opt ? opt : "", opt ? ": " : "", msg);
	/* One line, whatever a quoted token held. */
	for (p = ctx.err; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			*p = '?';
}

__attribute__((format(printf, 4, 5)))
static void fail(const cfg_t *sec, int line, const char *opt,
		 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(sec, line, opt, fmt, ap);
	va_end(ap);
}

/*
 * libconfuse's own messages name the option already, except the one for a
 * second section of the same title (without CFGF_NO_TITLE_DUPES it would
 * silently replace the first): say which kind, and where the first is.
 */
__attribute__((format(printf, 2, 0)))
static void on_confuse_error(cfg_t *cfg, const char *fmt, va_list ap)
{
	const char *title;
	cfg_t *first;

	if (cfg == ctx.root && ctx.titled &&
	    strcmp(fmt, "found duplicate title '%s'") == 0) {
		title = va_arg(ap, const char *);
		first = cfg_gettsec(cfg, ctx.titled, title);
		if (first) {
			fail(first, cfg->line, NULL, "defined twice (first on "
			     "line %d)", line_of(first, NULL));
			return;
		}
	}
	verror(NULL, cfg ? cfg->line : 0, NULL, fmt, ap);
}

static const struct rule *find_rule(const char *section, const char *option)
{
	size_t i;

	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (strcmp(rules[i].section, section) == 0 &&
		    strcmp(rules[i].option, option) == 0)
			return &rules[i];
	return NULL;
}

/*
 * Integers in decimal only: libconfuse's own strtol(…, 0) would read
 * "0022" as octal 18. Too many digits saturate, to fail the range check.
 */
static int parse_number(cfg_t *sec, cfg_opt_t *opt, const char *value,
			void *result)
{
	const char *p = value;
	bool neg = *p == '-';
	long v = 0;

	if (neg)
		p++;
	if (!*p) {
		fail(sec, sec->line, opt->name, "not a number");
		return -1;
	}
	for (; *p; p++) {
		if (*p < '0' || *p > '9') {
			fail(sec, sec->line, opt->name, "not a number");
			return -1;
		}
		v = v <= (LONG_MAX - 9) / 10 ? 10 * v + (*p - '0') : LONG_MAX;
	}
	*(long *)result = neg ? -v : v;
	return 0;
}

static bool leap(long y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil), without the process's time zone. */
static int64_t days_from_civil(long y, long m, long d)
{
	long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (int64_t)era * 146097 + doe - 719468;
}

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* n decimal digits at s, already checked. */
static long number_at(const char *s, size_t n)
{
	long v = 0;

	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* "YYYY-MM-DD": days since the epoch, or -1. */
static int64_t parse_day(const char *s)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
				     30, 31 };
	long y, m, d;

	if (!digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
	    !digits(s + 8, 2))
		return -1;
	y = number_at(s, 4);
	m = number_at(s + 5, 2);
	d = number_at(s + 8, 2);
	if (y < 1970 || m < 1 || m > 12 || d < 1 ||
	    d > mdays[m - 1] + (m == 2 && leap(y)))
		return -1;
	return days_from_civil(y, m, d);
}

/* "Z", "+HH:MM" or "-HH:MM": seconds east of UTC. */
static bool parse_offset(const char *s, int64_t *east)
{
	long h, m;

	if (!strcmp(s, "Z") || !strcmp(s, "z")) {
		*east = 0;
		return true;
	}
	if ((s[0] != '+' && s[0] != '-') || strlen(s) != 6 || !digits(s + 1, 2) ||
	    s[3] != ':' || !digits(s + 4, 2))
		return false;
	h = number_at(s + 1, 2);
	m = number_at(s + 4, 2);
	if (h > 23 || m > 59)
		return false;
	*east = (s[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
	return true;
}

/*
 * The first instant refused, in unix seconds. "YYYY-MM-DD" is valid
 * through the end of that day, UTC: the next midnight UTC is refused. An
 * RFC 3339 timestamp, "YYYY-MM-DDTHH:MM:SSZ" or with "+HH:MM" in place of
 * the Z (no fractions), is itself the first instant refused: an expiry a
 * few seconds ahead is then possible, which tests need.
 */
static bool parse_date(const char *s, int64_t *expires_at)
{
	int64_t day = parse_day(s), east;
	long h, mi, sec;

	if (day < 0)
		return false;
	if (s[10] == '\0') {
		*expires_at = (day + 1) * SECONDS_PER_DAY;
		return true;
	}
	if ((s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2) || s[13] != ':' ||
	    !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2) ||
	    !parse_offset(s + 19, &east))
		return false;
	h = number_at(s + 11, 2);
	mi = number_at(s + 14, 2);
	sec = number_at(s + 17, 2);
	if (h > 23 || mi > 59 || sec > 59)
		return false;
	*expires_at = day * SECONDS_PER_DAY + h * 3600 + mi * 60 + sec - east;
	return *expires_at > 0;
}

static bool env_name_ok(const char *s)
{
	if (!*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!name_char(*s) && *s != '_')
			return false;
	return true;
}

/* A file name under $CREDENTIALS_DIRECTORY. */
static bool credential_ok(const char *s)
{
	return *s && !strchr(s, '/') && strcmp(s, ".") != 0 &&
	       strcmp(s, "..") != 0 && strlen(s) <= NAME_MAX;
}

/* The nft scanner's identifiers, less '/'; these names are also printed
 * into the ruleset of --print-nft, which must stay one token each. */
static bool nft_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NFT_NAME_MAX_LEN ||
	    (s[0] >= '0' && s[0] <= '9') || s[0] == '-' || s[0] == '.')
		return false;
	for (; *s; s++)
		if (!name_char(*s) && *s != '_' && *s != '-' && *s != '.')
			return false;
	return true;
}

static bool host_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > HOST_MAX_LEN)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* "203.0.113.10:8443", "[2001:db8::1]:8443", "web1.example.org:8443":
 * where the port starts, or NULL (a bare IPv6 address has more colons). */
static const char *host_port(const char *s)
{
	const char *c = s[0] == '[' ? strstr(s, "]:") : strchr(s, ':');

	if (!c || (s[0] != '[' && strchr(c + 1, ':')))
		return NULL;
	c += s[0] == '[' ? 2 : 1;
	return *c && strspn(c, "0123456789") == strlen(c) ? c : NULL;
}

/* The CLI's address is a host alone: the port is tunnel_port. */
static int fail_host_port(cfg_t *sec, cfg_opt_t *opt, const char *s)
{
	const char *port = host_port(s);
	int bracket = s[0] == '[';

	fail(sec, sec->line, opt->name, "\"%s\" holds a port: write address = "
	     "\"%.*s\" and tunnel_port = %s", s, (int)(port - s) - 1 - 2 * bracket,
	     s + bracket, port);
	return -1;
}

static int check_number(cfg_t *sec, cfg_opt_t *opt, const struct rule *r,
			long v)
{
	if (v < r->min || v > r->max) {
		fail(sec, sec->line, opt->name, "must be between %ld and %ld",
		     r->min, r->max);
		return -1;
	}
	return 0;
}

static int check_string(cfg_t *sec, cfg_opt_t *opt, const struct rule *r,
			const char *s)
{
	uint8_t key[KEY_LEN];
	int64_t t;
	const char *why = NULL;

	switch (r->check) {
	case CHECK_RANGE:
		break;
	case CHECK_FILE:
		if (!*s)
			why = "must not be empty";
		break;
	case CHECK_ENV:
		if (!env_name_ok(s))
			why = "not a valid environment variable name";
		break;
	case CHECK_CREDENTIAL:
		if (!credential_ok(s))
			why = "not a valid credential name";
		break;
	case CHECK_SALT:
		if (strlen(s) < PSK_SALT_MIN_LEN)
			why = "must be at least 8 bytes long";
		break;
	case CHECK_FAMILY:
		if (strcmp(s, "inet") && strcmp(s, "ip") && strcmp(s, "ip6"))
			why = "must be one of inet, ip, ip6";
		break;
	case CHECK_NFT_NAME:
		if (!nft_name_ok(s))
			why = "not a valid nftables name (a letter or '_', "
			      "then letters, digits, '_', '-' or '.')";
		break;
	case CHECK_ADDRESS:
		if (!addr_parse(s, NULL, NULL))
			why = "not ADDRESS:PORT or [IPV6]:PORT (numeric "
			      "address, port 1 to 65535)";
		break;
	case CHECK_KEY:
		/* Never echo it: the wrong key may be a private one. */
		if (!key_from_base64(key, s))
			why = "not a valid key (expected 44 characters of "
			      "base64)";
		wipe(key, sizeof(key));
		break;
	case CHECK_DATE:
		if (!parse_date(s, &t))
			why = "not a valid date (expected YYYY-MM-DD or "
			      "YYYY-MM-DDTHH:MM:SSZ)";
		break;
	case CHECK_HOST:
		if (!host_ok(s))
			why = "not a valid host name or address";
		else if (host_port(s))
			return fail_host_port(sec, opt, s);
		break;
	case CHECK_NAME:
		if (!name_ok(s))
			why = "not a valid name";
		break;
	}
	if (why) {
		fail(sec, sec->line, opt->name, "%s", why);
		return -1;
	}
	return 0;
}

/*
 * Called by libconfuse after each value it sets (for a list, after each
 * element and again at the closing brace), while sec->line is still that
 * value's line. The root's line stays where a section opened until the
 * section closes: that is where the section began.
 */
static int check_value(cfg_t *sec, cfg_opt_t *opt)
{
	const struct rule *r;
	unsigned int n = cfg_opt_size(opt);

	if (!ctx.root)
		return 0;	/* cfg_init reading our own defaults */
	if (sec != ctx.root &&
	    (ctx.n_notes == 0 || ctx.notes[ctx.n_notes - 1].sec != sec))
		note(sec, NULL, ctx.root->line);
	note(sec, opt->name, sec->line);
	r = find_rule(sec->name, opt->name);
	if (!r || n == 0)
		return 0;
	if (opt->type == CFGT_INT)
		return check_number(sec, opt, r, cfg_opt_getnint(opt, n - 1));
	if (opt->type == CFGT_STR)
		return check_string(sec, opt, r, cfg_opt_getnstr(opt, n - 1));
	return 0;
}

/* One callback for every option, set in the tables before cfg_init copies
 * them, rather than a cfg_set_validate_func call per option and section. */
static void attach_checks(cfg_opt_t *opts)
{
	for (; opts->name; opts++) {
		if (opts->type == CFGT_SEC)
			attach_checks(opts->subopts);
		else
			opts->validcb = check_value;
	}
}

static char *read_config(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	ssize_t n;
	size_t got = 0;
	int fd;

	/* O_NONBLOCK: a FIFO in its place must not hang a reload. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		fail(NULL, 0, NULL, "%s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		fail(NULL, 0, NULL, "%s", strerror(errno));
		close(fd);
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		fail(NULL, 0, NULL, "%s", strerror(EISDIR));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		fail(NULL, 0, NULL, "not a regular file");
		close(fd);
		return NULL;
	}
	/* Whoever may write it decides who gets in, as with ssh's
	 * authorized_keys: root, or the user reading it, and no one else. */
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		fail(NULL, 0, NULL, "writable by group or others; fix with: "
		     "chmod go-w %s", path);
		close(fd);
		return NULL;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		fail(NULL, 0, NULL, "owned by uid %u, neither root nor this "
		     "user; fix with: chown root %s", (unsigned int)st.st_uid,
		     path);
		close(fd);
		return NULL;
	}
	buf = malloc(CONFIG_MAX_SIZE + 1);
	if (!buf) {
		fail(NULL, 0, NULL, "out of memory");
		close(fd);
		return NULL;
	}
	while (got <= CONFIG_MAX_SIZE &&
	       (n = read(fd, buf + got, CONFIG_MAX_SIZE + 1 - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fail(NULL, 0, NULL, "%s", strerror(errno));
			goto bad;
		}
		got += (size_t)n;
	}
	if (got > CONFIG_MAX_SIZE) {
		fail(NULL, 0, NULL, "larger than 1 MiB");
		goto bad;
	}
	if (memchr(buf, '\0', got)) {
		fail(NULL, 0, NULL, "holds a NUL byte: not a text file");
		goto bad;
	}
	buf[got] = '\0';
	close(fd);
	*len = got;
	return buf;
bad:
	free(buf);
	close(fd);
	return NULL;
}

static void end_parse(cfg_t *cfg)
{
	if (cfg)
		cfg_free(cfg);
	free(ctx.notes);
	ctx.notes = NULL;
	ctx.n_notes = ctx.cap = 0;
	ctx.root = NULL;
}

static cfg_t *parse(const char *path, cfg_opt_t *opts, char *err,
		    size_t err_len)
{
	cfg_t *cfg;
	FILE *fp;
	char *text;
	const char *why;
	size_t len;
	int rc = CFG_SUCCESS, line;

	memset(&ctx, 0, sizeof(ctx));
	ctx.path = path;
	ctx.titled = opts == cli_file_opts ? "server" : "client";
	ctx.err = err;
	ctx.err_len = err_len;
	if (err_len)
		err[0] = '\0';

	text = read_config(path, &len);
	if (!text)
		return NULL;
	if (!config_text_prepare(text, len, &line, &why)) {
		fail(NULL, line, NULL, "%s", why);
		free(text);
		return NULL;
	}
	attach_checks(opts);
	cfg = cfg_init(opts, CFGF_NONE);
	if (!cfg) {
		free(text);
		fail(NULL, 0, NULL, "out of memory");
		return NULL;
	}
	cfg_set_error_function(cfg, on_confuse_error);
	ctx.root = cfg;
	if (len > 0) {
		fp = fmemopen(text, len, "r");
		rc = fp ? cfg_parse_fp(cfg, fp) : CFG_PARSE_ERROR;
		if (fp)
			fclose(fp);
	}
	free(text);
	if (rc != CFG_SUCCESS || ctx.oom) {
		/* libconfuse stops silently on a few lexer errors. */
		fail(NULL, 0, NULL, ctx.oom ? "out of memory" : "syntax error");
		end_parse(cfg);
		return NULL;
	}
	return cfg;
}

/* The absolute directory of the config file, for relative paths in it. */
static char *config_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char cwd[PATH_MAX], *dir;

	if (path[0] == '/')
		return strndup(path, slash == path ? 1 : (size_t)(slash - path));
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	if (!slash)
		return strdup(cwd);
	if (asprintf(&dir, "%s/%.*s", strcmp(cwd, "/") ? cwd : "",
		     (int)(slash - path), path) < 0)
		return NULL;
	return dir;
}

static char *resolve(const char *dir, const char *file)
{
	char *abs;

	if (file[0] == '/')
		return strdup(file);
	if (asprintf(&abs, "%s/%s", strcmp(dir, "/") ? dir : "", file) < 0)
		return NULL;
	return abs;
}

/* libconfuse wants a non-const cfg_t for lookups it does not modify. */
static const char *get_str(cfg_t *sec, const char *opt)
{
	return cfg_size(sec, opt) ? cfg_getstr(sec, opt) : NULL;
}

static bool check_key_source(cfg_t *cfg)
{
	if (!cfg_size(cfg, "private_key_credential") ||
	    !set_in_file(cfg, "private_key_file"))
		return true;
	fail(cfg, line_of(cfg, "private_key_credential"), "private_key_credential",
	     "conflicts with private_key_file on line %d: set only one",
	     line_of(cfg, "private_key_file"));
	return false;
}

static bool check_psk(cfg_t *cfg)
{
	size_t n = sizeof(psk_options) / sizeof(psk_options[0]), i, j;

	for (i = 0; i < n; i++) {
		for (j = i + 1; j < n; j++) {
			const char *a = psk_options[i].option;
			const char *b = psk_options[j].option;
			int la, lb;

			if (!cfg_size(cfg, a) || !cfg_size(cfg, b))
				continue;
			la = line_of(cfg, a);
			lb = line_of(cfg, b);
			if (la > lb) {
				const char *o = a;
				int l = la;

				a = b, la = lb;
				b = o, lb = l;
			}
			fail(cfg, lb, b, "conflicts with %s on line %d: set "
			     "only one PSK source", a, la);
			return false;
		}
	}
	return true;
}

static bool load_psk(struct psk_source *psk, cfg_t *cfg, const char *dir)
{
	size_t i;

	psk->kind = PSK_FILE;
	psk->value = resolve(dir, "psk");
	for (i = 0; i < sizeof(psk_options) / sizeof(psk_options[0]); i++) {
		const char *v = get_str(cfg, psk_options[i].option);

		if (!v)
			continue;
		free(psk->value);
		psk->kind = psk_options[i].kind;
		psk->value = psk->kind == PSK_FILE ? resolve(dir, v) : strdup(v);
		if (psk->kind == PSK_CREDENTIAL &&
		    !(psk->file = resolve(dir, v)))
			return false;
	}
	return psk->value != NULL;
}

/* Ports of a list option: NULL and 0 for an empty list. */
static bool get_ports(cfg_t *sec, const char *opt, uint16_t **out, size_t *n)
{
	unsigned int i;

	*n = cfg_size(sec, opt);
	*out = NULL;
	if (*n == 0)
		return true;
	*out = calloc(*n, sizeof(**out));
	if (!*out)
		return false;
	for (i = 0; i < *n; i++)
		(*out)[i] = (uint16_t)cfg_getnint(sec, opt, i);
	return true;
}

/* Names of titled sections; libconfuse already refused duplicates. */
static bool check_titles(cfg_t *cfg, const char *kind)
{
	unsigned int n = cfg_size(cfg, kind), i;

	for (i = 0; i < n; i++) {
		cfg_t *s = cfg_getnsec(cfg, kind, i);

		if (!name_ok(s->title)) {
			fail(s, line_of(s, NULL), NULL, "not a valid name "
			     "(letters, digits, '.', '_', '-', '@'; up to %d, "
			     "beginning with a letter or digit)", NAME_MAX_LEN);
			return false;
		}
	}
	return true;
}

static bool require(cfg_t *sec, const char *opt)
{
	if (cfg_size(sec, opt))
		return true;
	fail(sec, line_of(sec, NULL), opt, "missing");
	return false;
}

static bool check_knock(cfg_t *k)
{
	long open = cfg_getint(k, "open_seconds");
	long max = cfg_getint(k, "max_open_seconds");

	if (max < open) {
		/* Blame whichever of the two the file set last. */
		if (line_of(k, "max_open_seconds") >= line_of(k, "open_seconds"))
			fail(k, line_of(k, "max_open_seconds"),
			     "max_open_seconds",
			     "must be at least open_seconds (%ld)", open);
		else
			fail(k, line_of(k, "open_seconds"), "open_seconds",
			     "must not exceed max_open_seconds (%ld)", max);
		return false;
	}
	if (strcmp(cfg_getstr(k, "nft_set4"), cfg_getstr(k, "nft_set6")) == 0) {
		fail(k, line_of(k, "nft_set6"), "nft_set6",
		     "must differ from nft_set4");
		return false;
	}
	return true;
}

static bool check_tunnel(cfg_t *t)
{
	if (cfg_size(t, "listen") == 0) {
		fail(t, line_of(t, "listen"), "listen",
		     "must name at least one address");
		return false;
	}
	/* The server hello lists every egress port and a handshake message
	 * is at most 1024 bytes: 481 ports fit (tunnel.h, TUNNEL_MAX_PORTS). */
	if (cfg_size(t, "egress") > CONFIG_MAX_EGRESS) {
		fail(t, line_of(t, "egress"), "egress",
		     "at most %d ports (they must fit in the server hello)",
		     CONFIG_MAX_EGRESS);
		return false;
	}
	return true;
}

static bool check_clients(cfg_t *cfg)
{
	unsigned int n = cfg_size(cfg, "client"), i, j;
	uint8_t ki[KEY_LEN], kj[KEY_LEN];

	if (!check_titles(cfg, "client"))
		return false;
	for (i = 0; i < n; i++) {
		cfg_t *s = cfg_getnsec(cfg, "client", i);

		if (!require(s, "public_key"))
			return false;
		/* posternd opens all of a client's ports in one nf_tables
		 * batch, which holds so many elements: more would be cut. */
		if (cfg_size(s, "open") > CONFIG_MAX_OPEN) {
			fail(s, line_of(s, "open"), "open",
			     "at most %d ports (one knock opens them in one "
			     "nf_tables batch)", CONFIG_MAX_OPEN);
			return false;
		}
	}
	for (i = 0; i < n; i++) {
		cfg_t *s = cfg_getnsec(cfg, "client", i);

		key_from_base64(ki, cfg_getstr(s, "public_key"));
		for (j = 0; j < i; j++) {
			cfg_t *t = cfg_getnsec(cfg, "client", j);

			key_from_base64(kj, cfg_getstr(t, "public_key"));
			if (memcmp(ki, kj, KEY_LEN) == 0) {
				fail(s, line_of(s, "public_key"), "public_key",
				     "same key as client \"%s\" (line %d)",
				     t->title, line_of(t, "public_key"));
				return false;
			}
		}
	}
	return true;
}

static bool fill_knock(struct knock_config *k, cfg_t *s, const char *dir)
{
	const char *state = get_str(s, "state_file");

	k->port = (uint16_t)cfg_getint(s, "port");
	k->queue = (uint16_t)cfg_getint(s, "queue");
	k->window = (unsigned int)cfg_getint(s, "window");
	k->open_seconds = (unsigned int)cfg_getint(s, "open_seconds");
	k->max_open_seconds = (unsigned int)cfg_getint(s, "max_open_seconds");
	k->allow_target = cfg_getbool(s, "allow_target");
	k->nft_family = strdup(cfg_getstr(s, "nft_family"));
	k->nft_table = strdup(cfg_getstr(s, "nft_table"));
	k->nft_set4 = strdup(cfg_getstr(s, "nft_set4"));
	k->nft_set6 = strdup(cfg_getstr(s, "nft_set6"));
	k->rate = (unsigned int)cfg_getint(s, "rate");
	k->burst = (unsigned int)cfg_getint(s, "burst");
	k->rate_sources = (unsigned int)cfg_getint(s, "rate_sources");
	k->replay_entries = (unsigned int)cfg_getint(s, "replay_entries");
	if (state && !(k->state_file = resolve(dir, state)))
		return false;
	if (!(k->status_file = resolve(dir, cfg_getstr(s, "status_file"))))
		return false;
	return k->nft_family && k->nft_table && k->nft_set4 && k->nft_set6;
}

static bool fill_tunnel(struct tunnel_config *t, cfg_t *s, const char *dir)
{
	unsigned int n = cfg_size(s, "listen"), i;

	t->listen = calloc(n, sizeof(*t->listen));
	if (!t->listen)
		return false;
	for (t->n_listen = 0; t->n_listen < n; t->n_listen++) {
		i = (unsigned int)t->n_listen;
		t->listen[i] = strdup(cfg_getnstr(s, "listen", i));
		if (!t->listen[i])
			return false;
	}
	t->handshake_timeout = (unsigned int)cfg_getint(s, "handshake_timeout");
	t->max_handshakes = (unsigned int)cfg_getint(s, "max_handshakes");
	t->max_handshakes_per_source =
	    (unsigned int)cfg_getint(s, "max_handshakes_per_source");
	t->max_sessions = (unsigned int)cfg_getint(s, "max_sessions");
	t->max_sessions_per_client =
	    (unsigned int)cfg_getint(s, "max_sessions_per_client");
	t->max_streams = (unsigned int)cfg_getint(s, "max_streams");
	t->stream_open_timeout = (unsigned int)cfg_getint(s, "stream_open_timeout");
	t->stream_buffer = (unsigned int)cfg_getint(s, "stream_buffer");
	if (!(t->status_file = resolve(dir, cfg_getstr(s, "status_file"))))
		return false;
	return get_ports(s, "egress", &t->egress, &t->n_egress);
}

/* Append the client sections of one file, which c->client_files holds
 * last. */
static bool fill_clients(struct server_config *c, cfg_t *cfg)
{
	unsigned int n = cfg_size(cfg, "client"), i;
	const char *file = c->client_files[c->n_client_files - 1];
	struct client_entry *all;

	if (n == 0)
		return true;
	all = reallocarray(c->clients, c->n_clients + n, sizeof(*all));
	if (!all)
		return false;
	c->clients = all;
	for (i = 0; i < n; i++) {
		cfg_t *s = cfg_getnsec(cfg, "client", i);
		struct client_entry *e = &c->clients[c->n_clients++];
		const char *expires = get_str(s, "expires");

		memset(e, 0, sizeof(*e));
		e->file = file;
		e->line = (unsigned int)line_of(s, NULL);
		key_from_base64(e->public_key, cfg_getstr(s, "public_key"));
		if (expires)
			parse_date(expires, &e->expires_at);
		e->name = strdup(s->title);
		if (!e->name || !get_ports(s, "open", &e->open, &e->n_open))
			return false;
	}
	return true;
}

static bool add_client_file(struct server_config *c, const char *path)
{
	char **files = reallocarray(c->client_files, c->n_client_files + 1,
				    sizeof(*files));

	if (!files)
		return false;
	c->client_files = files;
	files[c->n_client_files] = strdup(path);
	if (!files[c->n_client_files])
		return false;
	c->n_client_files++;
	return true;
}

/* Drop-ins: *.conf, not hidden (an editor's or a deployment tool's
 * temporary file begins with a dot). */
static int dropin_name(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 5 &&
	       strcmp(d->d_name + n - 5, ".conf") == 0;
}

/* A client in two files: libconfuse sees one file at a time. */
static bool check_across_files(const struct server_config *c, char *err,
			       size_t err_len)
{
	for (size_t i = 0; i < c->n_clients; i++) {
		const struct client_entry *a = &c->clients[i];

		for (size_t j = 0; j < i; j++) {
			const struct client_entry *b = &c->clients[j];
			const char *what;

			if (a->file == b->file)
				continue;	/* checked with its file */
			if (strcmp(a->name, b->name) == 0)
				what = "same name as";
			else if (memcmp(a->public_key, b->public_key,
					KEY_LEN) == 0)
				what = "same key as";
			else
				continue;
			snprintf(err, err_len, "%s:%u: client \"%s\": %s "
				 "client \"%s\" (%s:%u)", a->file, a->line,
				 a->name, what, b->name, b->file, b->line);
			return false;
		}
	}
	return true;
}

static bool load_dropin(struct server_config *c, const char *path,
			char *err, size_t err_len)
{
	cfg_t *cfg = parse(path, clients_file_opts, err, err_len);
	bool ok;

	if (!cfg)
		return false;
	ok = check_clients(cfg);
	if (ok && !(add_client_file(c, path) && fill_clients(c, cfg))) {
		fail(NULL, 0, NULL, "out of memory");
		ok = false;
	}
	end_parse(cfg);
	return ok;
}

/* clients.d/ beside the config, if there is one: whoever may write in it
 * decides who gets in, as with the config itself. */
static bool load_dropins(struct server_config *c, const char *dir,
			 char *err, size_t err_len)
{
	struct dirent **names;
	struct stat st;
	char *path;
	bool ok = true;
	int n, i;

	if (asprintf(&path, "%s/%s", strcmp(dir, "/") ? dir : "",
		     CLIENTS_DIR) < 0) {
		snprintf(err, err_len, "out of memory");
		return false;
	}
	if (stat(path, &st) != 0 && errno == ENOENT) {
		free(path);
		return true;
	}
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
	    (st.st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(err, err_len, "%s: writable by group or others; fix "
			 "with: chmod go-w %s", path, path);
		free(path);
		return false;
	}
	if (stat(path, &st) == 0 && st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(err, err_len, "%s: owned by uid %u, neither root nor "
			 "this user; fix with: chown root %s", path,
			 (unsigned int)st.st_uid, path);
		free(path);
		return false;
	}
	n = scandir(path, &names, dropin_name, alphasort);
	if (n < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		free(path);
		return false;
	}
	for (i = 0; i < n; i++) {
		char *file;

		if (ok && asprintf(&file, "%s/%s", path, names[i]->d_name) >= 0) {
			ok = load_dropin(c, file, err, err_len);
			free(file);
		} else if (ok) {
			snprintf(err, err_len, "out of memory");
			ok = false;
		}
		free(names[i]);
	}
	free(names);
	free(path);
	return ok && check_across_files(c, err, err_len);
}

bool server_config_load(struct server_config *c, const char *path,
			char *err, size_t err_len)
{
	cfg_t *cfg;
	char *dir = NULL;
	bool ok;

	memset(c, 0, sizeof(*c));
	cfg = parse(path, server_file_opts, err, err_len);
	if (!cfg)
		return false;
	ok = check_key_source(cfg) && check_psk(cfg) &&
	     check_knock(cfg_getsec(cfg, "knock")) &&
	     check_tunnel(cfg_getsec(cfg, "tunnel")) && check_clients(cfg);
	if (ok) {
		dir = config_dir(path);
		if (!dir)
			fail(NULL, 0, NULL, "cannot resolve relative paths: %s",
			     strerror(errno));
		ok = dir &&
		     (c->path = strdup(path)) &&
		     (c->private_key_file = resolve(dir,
				get_str(cfg, "private_key_credential") ?
				get_str(cfg, "private_key_credential") :
				cfg_getstr(cfg, "private_key_file"))) &&
		     (!get_str(cfg, "private_key_credential") ||
		      (c->private_key_credential =
				strdup(get_str(cfg, "private_key_credential")))) &&
		     load_psk(&c->psk, cfg, dir) &&
		     (c->user = strdup(cfg_getstr(cfg, "user"))) &&
		     fill_knock(&c->knock, cfg_getsec(cfg, "knock"), dir) &&
		     fill_tunnel(&c->tunnel, cfg_getsec(cfg, "tunnel"), dir) &&
		     add_client_file(c, path) && fill_clients(c, cfg);
		if (dir && !ok)
			fail(NULL, 0, NULL, "out of memory");
	}
	end_parse(cfg);
	ok = ok && load_dropins(c, dir, err, err_len);
	free(dir);
	if (!ok)
		server_config_free(c);
	return ok;
}

void server_config_free(struct server_config *c)
{
	size_t i;

	free(c->path);
	free(c->private_key_file);
	free(c->private_key_credential);
	free(c->psk.value);
	free(c->psk.file);
	free(c->user);
	free(c->knock.nft_family);
	free(c->knock.nft_table);
	free(c->knock.nft_set4);
	free(c->knock.nft_set6);
	free(c->knock.state_file);
	free(c->knock.status_file);
	free(c->tunnel.status_file);
	for (i = 0; i < c->tunnel.n_listen; i++)
		free(c->tunnel.listen[i]);
	free(c->tunnel.listen);
	free(c->tunnel.egress);
	for (i = 0; i < c->n_clients; i++) {
		free(c->clients[i].name);
		free(c->clients[i].open);
	}
	free(c->clients);
	for (i = 0; i < c->n_client_files; i++)
		free(c->client_files[i]);
	free(c->client_files);
	memset(c, 0, sizeof(*c));
}

static bool check_servers(cfg_t *cfg)
{
	unsigned int n = cfg_size(cfg, "server"), i;

	if (!check_titles(cfg, "server"))
		return false;
	for (i = 0; i < n; i++) {
		cfg_t *s = cfg_getnsec(cfg, "server", i);

		if (!require(s, "address") || !require(s, "public_key"))
			return false;
	}
	return true;
}

static bool server_named(cfg_t *cfg, const char *name)
{
	unsigned int n = cfg_size(cfg, "server"), i;

	for (i = 0; i < n; i++)
		if (strcmp(cfg_getnsec(cfg, "server", i)->title, name) == 0)
			return true;
	return false;
}

static bool check_forwards(cfg_t *cfg)
{
	unsigned int n = cfg_size(cfg, "forward"), i, j;

	for (i = 0; i < n; i++) {
		cfg_t *s = cfg_getnsec(cfg, "forward", i);
		const char *name;

		if (!require(s, "listen") || !require(s, "server") ||
		    !require(s, "port"))
			return false;
		name = cfg_getstr(s, "server");
		if (!server_named(cfg, name)) {
			fail(s, line_of(s, "server"), "server",
			     "no server \"%s\" is configured", name);
			return false;
		}
		for (j = 0; j < i; j++) {
			cfg_t *t = cfg_getnsec(cfg, "forward", j);

			if (strcmp(cfg_getstr(s, "listen"),
				   cfg_getstr(t, "listen")) == 0) {
				fail(s, line_of(s, "listen"), "listen",
				     "already used by the forward on line %d",
				     line_of(t, NULL));
				return false;
			}
		}
	}
	return true;
}

static bool fill_servers(struct cli_config *c, cfg_t *cfg)
{
	unsigned int n = cfg_size(cfg, "server");

	if (n == 0)
		return true;
	c->servers = calloc(n, sizeof(*c->servers));
	if (!c->servers)
		return false;
	for (c->n_servers = 0; c->n_servers < n; c->n_servers++) {
		cfg_t *s = cfg_getnsec(cfg, "server", (unsigned int)c->n_servers);
		struct server_entry *e = &c->servers[c->n_servers];

		e->tunnel_port = (uint16_t)cfg_getint(s, "tunnel_port");
		e->knock_port = (uint16_t)cfg_getint(s, "knock_port");
		key_from_base64(e->public_key, cfg_getstr(s, "public_key"));
		e->name = strdup(s->title);
		e->address = strdup(cfg_getstr(s, "address"));
		if (!e->name || !e->address) {
			c->n_servers++;
			return false;
		}
	}
	return true;
}

static bool fill_forwards(struct cli_config *c, cfg_t *cfg)
{
	unsigned int n = cfg_size(cfg, "forward");

	if (n == 0)
		return true;
	c->forwards = calloc(n, sizeof(*c->forwards));
	if (!c->forwards)
		return false;
	for (c->n_forwards = 0; c->n_forwards < n; c->n_forwards++) {
		cfg_t *s = cfg_getnsec(cfg, "forward", (unsigned int)c->n_forwards);
		struct forward_entry *e = &c->forwards[c->n_forwards];

		e->port = (uint16_t)cfg_getint(s, "port");
		e->listen = strdup(cfg_getstr(s, "listen"));
		e->server = strdup(cfg_getstr(s, "server"));
		if (!e->listen || !e->server) {
			c->n_forwards++;
			return false;
		}
	}
	return true;
}

bool cli_config_load(struct cli_config *c, const char *path,
		     char *err, size_t err_len)
{
	cfg_t *cfg;
	char *dir = NULL;
	bool ok;

	memset(c, 0, sizeof(*c));
	cfg = parse(path, cli_file_opts, err, err_len);
	if (!cfg)
		return false;
	ok = check_psk(cfg) && check_servers(cfg) && check_forwards(cfg);
	if (ok) {
		dir = config_dir(path);
		if (!dir)
			fail(NULL, 0, NULL, "cannot resolve relative paths: %s",
			     strerror(errno));
		ok = dir &&
		     (c->path = strdup(path)) &&
		     (c->private_key_file = resolve(dir,
				cfg_getstr(cfg, "private_key_file"))) &&
		     load_psk(&c->psk, cfg, dir) &&
		     fill_servers(c, cfg) && fill_forwards(c, cfg);
		c->connect_timeout = (unsigned int)cfg_getint(cfg, "connect_timeout");
		if (dir && !ok)
			fail(NULL, 0, NULL, "out of memory");
	}
	free(dir);
	end_parse(cfg);
	if (!ok)
		cli_config_free(c);
	return ok;
}

void cli_config_free(struct cli_config *c)
{
	size_t i;

	free(c->path);
	free(c->private_key_file);
	free(c->psk.value);
	free(c->psk.file);
	for (i = 0; i < c->n_servers; i++) {
		free(c->servers[i].name);
		free(c->servers[i].address);
	}
	free(c->servers);
	for (i = 0; i < c->n_forwards; i++) {
		free(c->forwards[i].listen);
		free(c->forwards[i].server);
	}
	free(c->forwards);
	memset(c, 0, sizeof(*c));
}

static const char *home_dir(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (home && *home)
		return home;
	pw = getpwuid(getuid());
	return pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
}

bool cli_config_default_path(char *buf, size_t len)
{
	const char *v;
	int n;

	if ((v = getenv("POSTERN_HOME")) && *v)
		n = snprintf(buf, len, "%s/" POSTERN_CONFIG_NAME, v);
	else if ((v = getenv("XDG_CONFIG_HOME")) && v[0] == '/')
		/* The XDG spec: a relative path there is to be ignored. */
		n = snprintf(buf, len, "%s/postern/" POSTERN_CONFIG_NAME, v);
	else if ((v = home_dir()))
		n = snprintf(buf, len, "%s/.config/postern/" POSTERN_CONFIG_NAME,
			     v);
	else
		return false;
	return n >= 0 && (size_t)n < len;
}

const struct client_entry *server_config_find_client(
    const struct server_config *c, const uint8_t public_key[KEY_LEN])
{
	size_t i;

	for (i = 0; i < c->n_clients; i++)
		if (memcmp(c->clients[i].public_key, public_key, KEY_LEN) == 0)
			return &c->clients[i];
	return NULL;
}

bool config_name_ok(const char *s)
{
	return name_ok(s);
}

uint16_t config_listen_port(const char *listen)
{
	return (uint16_t)atoi(strrchr(listen, ':') + 1);	/* checked at load */
}

bool config_date_parse(const char *s, int64_t *expires_at)
{
	return strlen(s) >= 10 && parse_date(s, expires_at);
}

bool client_expired(const struct client_entry *e, int64_t now)
{
	return e->expires_at != 0 && now >= e->expires_at;
}

const struct server_entry *cli_config_find_server(const struct cli_config *c,
						   const char *name)
{
	size_t i;

	for (i = 0; i < c->n_servers; i++)
		if (strcmp(c->servers[i].name, name) == 0)
			return &c->servers[i];
	return NULL;
}

bool server_config_load_key(const struct server_config *c,
			    uint8_t key[KEY_LEN], char *err, size_t err_len)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");

	if (c->private_key_credential && creds && *creds)
		return key_load_credential(key, c->private_key_credential,
					   "private_key_credential", err, err_len);
	return key_load_secret_file(key, c->private_key_file, err, err_len);
}

struct server_config *server_config_new(const char *path, char *err,
					size_t err_len)
{
	struct server_config *c = calloc(1, sizeof(*c));

	if (!c) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	if (server_config_load(c, path, err, err_len))
		return c;
	free(c);
	return NULL;
}

void server_config_delete(struct server_config *c)
{
	if (!c)
		return;
	server_config_free(c);
	free(c);
}
