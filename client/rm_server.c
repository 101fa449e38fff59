/*
 * postern rm-server NAME: the server's block taken out of the
 * configuration, the rest of the file as it was. Refused while a forward
 * block still names the server: removing those is the admin's call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_file.h"
#include "subcommands.h"

/* The line number of a forward's `server = "name"`, or 0. */
static int forward_naming(const char *text, const char *name)
{
	size_t n = strlen(name);
	int lineno = 1;

	for (const char *p = text; *p; p++) {
		if (*p == '\n') {
			lineno++;
		} else if (strncmp(p, "server", 6) == 0) {
			const char *q = p + 6;

			q += strspn(q, " \t");
			if (*q == '=') {
				q++;
				q += strspn(q, " \t");
				if (*q == '"' && strncmp(q + 1, name, n) == 0 && q[1 + n] == '"')
					return lineno;
			}
		}
	}
	return 0;
}

int rm_server_main(const struct cli_options *opt, int argc, char *argv[])
{
	char path[4096], *text;
	size_t len, at, end;
	int line, status = EXIT_FAIL;

	if (argc != 2) {
		fprintf(stderr, "Usage: %s rm-server NAME\n", PROG_NAME);
		return EXIT_USAGE;
	}
	if (!config_file_path(opt, path, sizeof(path)) ||
	    !(text = config_file_read(path, &len)))
		return EXIT_FAIL;
	if (!config_file_find_server(text, argv[1], &at, &end)) {
		fprintf(stderr, "%s: no server \"%s\" in %s\n", PROG_NAME, argv[1], path);
	} else if ((line = forward_naming(text, argv[1]))) {
		fprintf(stderr, "%s: %s:%d: a forward block still names %s: remove "
			"it first\n", PROG_NAME, path, line, argv[1]);
	} else {
		memmove(text + at, text + end, len - end);
		if (config_file_replace(path, text, len - (end - at))) {
			printf("%s removed from %s\n", argv[1], path);
			status = EXIT_OK;
		}
	}
	free(text);
	return status;
}
