/*
 * Configuration files, read with libconfuse: the server's (read by both
 * daemons) and the CLI's. docs/CONFIG.md is the reference of every option.
 *
 * Loading either file checks everything a later step would trip on (ranges,
 * keys, dates, addresses, duplicates, names that must resolve), so a loaded
 * config is one the daemons and the CLI can use as it is. Nothing of
 * libconfuse shows here: callers see plain structs.
 *
 * The loaders are not reentrant (libconfuse's lexer is global state): load
 * from one thread at a time.
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define POSTERN_SERVER_CONFIG "/etc/postern/postern.conf"
#define POSTERN_CONFIG_NAME "postern.conf"
#define POSTERN_KNOCK_USER "postern-knock"	/* default of user */
#define POSTERN_GROUP "postern"		/* may read /etc/postern */

/* The daemons' status files (status_file.h): in the units'
 * RuntimeDirectory=, read by postern gate status. */
#define POSTERND_STATUS_FILE "/run/posternd/status"
#define TUNNELD_STATUS_FILE "/run/postern-tunneld/status"

#define DEFAULT_KNOCK_PORT 62201
#define DEFAULT_TUNNEL_PORT 8443
#define CONFIG_MAX_EGRESS 481	/* = TUNNEL_MAX_PORTS */
#define CONFIG_MAX_OPEN 256	/* ports per client: one nft batch (NFT_MAX_ELEMENTS) */

/* Where the fleet PSK comes from; the loader of the key is psk.h. */
enum psk_kind { PSK_FILE, PSK_ENV, PSK_CREDENTIAL, PSK_PASSPHRASE };

struct psk_source {
	enum psk_kind kind;
	/* FILE: absolute path; ENV: variable name; CREDENTIAL: credential
	 * name; PASSPHRASE: the salt */
	char *value;
	/* CREDENTIAL only: the file of that name beside the config, read
	 * when not under systemd (no $CREDENTIALS_DIRECTORY), which is
	 * where the shipped units' LoadCredential= takes it from. */
	char *file;
};

struct knock_config {
	uint16_t port;			/* UDP port knocks are sent to */
	uint16_t queue;			/* NFQUEUE number */
	unsigned int window;		/* seconds of clock skew accepted */
	unsigned int open_seconds, max_open_seconds;
	char *nft_family, *nft_table, *nft_set4, *nft_set6;
	bool allow_target;		/* honour the knock's target field */
	char *state_file;		/* replay state, absolute; NULL: default */
	char *status_file;		/* counters for postern gate, absolute */
	unsigned int rate, burst;	/* knocks per second and source, bucket */
	unsigned int rate_sources;	/* sources the rate limiter tracks */
	unsigned int replay_entries;	/* knocks remembered per client key */
};

struct tunnel_config {
	char **listen;			/* "ADDR:PORT" or "[V6]:PORT", checked */
	size_t n_listen;
	uint16_t *egress;		/* loopback ports clients may reach */
	size_t n_egress;
	/* Limits: docs/CONFIG.md says what happens when each is hit. */
	unsigned int handshake_timeout;	/* seconds, accept to first message */
	unsigned int max_handshakes;	/* pending, in total */
	unsigned int max_handshakes_per_source;	/* IPv4 address, IPv6 /64 */
	unsigned int max_sessions;	/* confirmed, in total */
	unsigned int max_sessions_per_client;
	unsigned int max_streams;	/* open at once, per session */
	unsigned int stream_open_timeout;	/* seconds, SYN to request */
	unsigned int stream_buffer;	/* bytes a stream may buffer each way */
	char *status_file;		/* counters for postern gate, absolute */
};

struct client_entry {
	char *name;
	uint8_t public_key[KEY_LEN];
	uint16_t *open;			/* ports a knock opens */
	size_t n_open;
	/* unix seconds of the first instant refused; 0 = never */
	int64_t expires_at;
	const char *file;		/* where it is: the config or a drop-in */
	unsigned int line;		/* of the section, for messages */
};

struct server_config {
	char *path;			/* as given to the loader */
	char *private_key_file;		/* absolute */
	char *private_key_credential;	/* instead of the file, or NULL */
	struct psk_source psk;
	char *user;			/* posternd's, when started as root */
	struct knock_config knock;
	struct tunnel_config tunnel;
	struct client_entry *clients;
	size_t n_clients;
	/* The files clients come from: path, then clients.d/ drop-ins. */
	char **client_files;
	size_t n_client_files;
};

/* Beside the server's config: one file per client (or several), *.conf,
 * read in name order after the config itself. */
#define CLIENTS_DIR "clients.d"

struct server_entry {
	char *name;
	char *address;			/* host name or address, unresolved */
	uint16_t tunnel_port, knock_port;
	uint8_t public_key[KEY_LEN];
};

struct forward_entry {
	char *listen;			/* "ADDR:PORT" or "[V6]:PORT", checked */
	char *server;			/* names an entry of servers */
	uint16_t port;			/* on the server's loopback */
};

struct cli_config {
	char *path;			/* as given to the loader */
	char *private_key_file;		/* absolute */
	struct psk_source psk;
	struct server_entry *servers;
	size_t n_servers;
	struct forward_entry *forwards;
	size_t n_forwards;
	unsigned int connect_timeout;	/* s, to reach a tunnel port */
};

/*
 * Load and check a whole file. On failure returns false, leaves *c empty
 * (safe to free) and writes one line into err, naming the file, the line and
 * the option: "/etc/postern/postern.conf:12: knock: window: must be between
 * 1 and 3600". The loaders never print.
 */
bool server_config_load(struct server_config *c, const char *path,
			char *err, size_t err_len);
void server_config_free(struct server_config *c);
/* The same, allocated: for daemons that swap configurations on SIGHUP.
 * NULL on failure (err says why); server_config_delete(NULL) is a no-op. */
struct server_config *server_config_new(const char *path, char *err,
					size_t err_len);
void server_config_delete(struct server_config *c);
bool cli_config_load(struct cli_config *c, const char *path,
		     char *err, size_t err_len);
void cli_config_free(struct cli_config *c);

/* $POSTERN_HOME/postern.conf, else $XDG_CONFIG_HOME/postern/postern.conf,
 * else ~/.config/postern/postern.conf. False if there is no home or buf is
 * too small. */
bool cli_config_default_path(char *buf, size_t len);

/* The server's private key: from private_key_credential if set and under
 * systemd, else from private_key_file (for a credential, the file of its
 * name beside the config). One line in err on failure. */
bool server_config_load_key(const struct server_config *c,
			    uint8_t key[KEY_LEN], char *err, size_t err_len);

/* NULL when no client has this key. Expiry is not checked here. */
const struct client_entry *server_config_find_client(
    const struct server_config *c, const uint8_t public_key[KEY_LEN]);
/* A client or server name as the loader takes it: letters, digits,
 * '.', '_', '-', '@', beginning with a letter or digit, up to 64. */
bool config_name_ok(const char *s);
/* The port of a loaded tunnel.listen address. */
uint16_t config_listen_port(const char *listen);
/* An expires value as the loader takes it (YYYY-MM-DD or RFC 3339): the
 * first instant refused, in Unix seconds. */
bool config_date_parse(const char *s, int64_t *expires_at);
/* True once the client's expiry has passed at unix time now. */
bool client_expired(const struct client_entry *e, int64_t now);
const struct server_entry *cli_config_find_server(const struct cli_config *c,
						   const char *name);

#endif
