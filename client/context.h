/* What most subcommands need: the CLI's config, this device's key, the PSK. */
#ifndef POSTERN_CONTEXT_H
#define POSTERN_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "secrets.h"
#include "subcommands.h"

struct client_ctx {
	struct cli_config cfg;
	struct secrets *sec;	/* the device's key pair and the PSK */
	uint64_t connect_timeout_ms;	/* reaching a tunnel port, in all */
};

/* Load the config (-c or the default path), the private key and the PSK.
 * On failure prints one line on stderr and returns false. */
bool client_ctx_load(struct client_ctx *ctx, const struct cli_options *opt);
void client_ctx_free(struct client_ctx *ctx);

/* The server entry of that name, or NULL after printing an error. */
const struct server_entry *client_ctx_server(const struct client_ctx *ctx,
					     const char *name);

#endif
