/*
 * The configuration loaders (libconfuse underneath) with arbitrary file
 * contents: both the server's and the CLI's. They must refuse or accept
 * without crashing or leaking.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(path, sizeof(path), "/tmp/postern-fuzz-config-%d.conf", (int)getpid());
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct server_config s;
	struct cli_config c;
	char err[512];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	if (server_config_load(&s, path, err, sizeof(err)))
		server_config_free(&s);
	else
		server_config_free(&s);	/* documented safe after failure */
	if (cli_config_load(&c, path, err, sizeof(err)))
		cli_config_free(&c);
	else
		cli_config_free(&c);
	unlink(path);
	return 0;
}
