/* Loading the CLI's config and secrets. */
#include "context.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

bool client_ctx_load(struct client_ctx *ctx, const struct cli_options *opt)
{
	char path[PATH_MAX], err[512];

	memset(ctx, 0, sizeof(*ctx));
	if (opt->config_path)
		snprintf(path, sizeof(path), "%s", opt->config_path);
	else if (!cli_config_default_path(path, sizeof(path))) {
		fprintf(stderr, "%s: no configuration: set POSTERN_HOME or HOME, "
			"or use -c FILE\n", PROG_NAME);
		return false;
	}
	if (!cli_config_load(&ctx->cfg, path, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", PROG_NAME, err);
		return false;
	}
	ctx->connect_timeout_ms = (uint64_t)ctx->cfg.connect_timeout * 1000;
	ctx->sec = secrets_load_cli(&ctx->cfg, err, sizeof(err));
	if (!ctx->sec) {
		fprintf(stderr, "%s: %s\n", PROG_NAME, err);
		client_ctx_free(ctx);
		return false;
	}
	return true;
}

void client_ctx_free(struct client_ctx *ctx)
{
	cli_config_free(&ctx->cfg);
	secrets_free(ctx->sec);
	memset(ctx, 0, sizeof(*ctx));
}

const struct server_entry *client_ctx_server(const struct client_ctx *ctx,
					     const char *name)
{
	const struct server_entry *s = cli_config_find_server(&ctx->cfg, name);

	if (!s)
		fprintf(stderr, "%s: no server '%s' in %s\n", PROG_NAME, name,
			ctx->cfg.path);
	return s;
}
