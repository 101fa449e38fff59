/* postern genkey, postern genpsk: a new random key in base64 on stdout. */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"
#include "subcommands.h"

static int generate(int argc, char *argv[], bool clamp)
{
	uint8_t key[KEY_LEN];
	char text[KEY_B64_LEN + 1];
	struct stat st;

	if (argc != 1) {
		fprintf(stderr, "Usage: %s %s\n", PROG_NAME, argv[0]);
		return EXIT_USAGE;
	}
	if (!fstat(STDOUT_FILENO, &st) && S_ISREG(st.st_mode) &&
	    (st.st_mode & S_IRWXO))
		fputs("Warning: writing to world accessible file.\n"
		      "Consider setting the umask to 077 and trying again.\n", stderr);
	if (!random_bytes(key, sizeof(key))) {
		perror(PROG_NAME ": getrandom");
		return EXIT_FAIL;
	}
	if (clamp)
		x25519_clamp(key);
	key_to_base64(text, key);
	puts(text);
	wipe(key, sizeof(key));
	wipe(text, sizeof(text));
	if (fflush(stdout) != 0) {
		perror(PROG_NAME ": stdout");
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

int genkey_main(const struct cli_options *opt, int argc, char *argv[])
{
	(void)opt;
	return generate(argc, argv, true);
}

int genpsk_main(const struct cli_options *opt, int argc, char *argv[])
{
	(void)opt;
	return generate(argc, argv, false);
}
