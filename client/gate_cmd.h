/*
 * postern gate: the server side of set-up, run as root on the server. One
 * file per subcommand (gate_init.c, gate_allow.c, ...), one entry in
 * gate_main.c.
 */
#ifndef POSTERN_GATE_CMD_H
#define POSTERN_GATE_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "subcommands.h"

/* The server's configuration: -c FILE, else $POSTERN_HOME/postern.conf,
 * else /etc/postern/postern.conf. False (said on stderr) if too long. */
bool gate_config_path(const struct cli_options *opt, char *buf, size_t len);
/* That path into conf, and the configuration loaded from it, drop-ins
 * and all; false (said on stderr) when it does not load. */
bool gate_config_load(const struct cli_options *opt, char *conf, size_t len,
		      struct server_config *cfg);

/* "22,8080": ports 1-65535, no repeats, at most max; false (said on
 * stderr) otherwise. */
bool gate_parse_ports(const char *text, uint16_t *ports, size_t max,
		      size_t *n);
/* chown and chmod through a descriptor (a symlink planted in its place
 * is not followed); false if any step fails. */
bool gate_share(const char *path, uid_t uid, gid_t gid, mode_t mode);
/* Control characters and bytes past ASCII in s become '?': text from
 * files less trusted users write, shown on root's terminal. */
void gate_printable(char *s);

/* ports joined by sep, for a config list or a message. */
void gate_format_ports(char *buf, size_t len, const uint16_t *ports,
		       size_t n, const char *sep);

/* The daemons' status files (daemon/status_file.h): the whole text, or
 * NULL (errno says why: EPERM for a file group or others may write, not
 * evidence of anything; EINVAL for one not regular); one value by key,
 * made printable, or false. */
char *gate_status_read(const char *path);
bool gate_status_get(const char *text, const char *key, char *buf,
		     size_t len);
unsigned long long gate_status_number(const char *text, const char *key);
void gate_format_time(char *buf, size_t len, unsigned long long unix_s);

int gate_init_main(const struct cli_options *opt, int argc, char *argv[]);
int gate_allow_main(const struct cli_options *opt, int argc, char *argv[]);
int gate_revoke_main(const struct cli_options *opt, int argc, char *argv[]);
int gate_ls_main(const struct cli_options *opt, int argc, char *argv[]);
int gate_status_main(const struct cli_options *opt, int argc, char *argv[]);
int gate_apply_nft_main(const struct cli_options *opt, int argc, char *argv[]);

#endif
