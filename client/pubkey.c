/* postern pubkey: private key on stdin, public key on stdout. */
#include <stdio.h>

#include "keys.h"
#include "subcommands.h"

int pubkey_main(const struct cli_options *opt, int argc, char *argv[])
{
	uint8_t priv[KEY_LEN], pub[KEY_LEN];
	char text[KEY_B64_LEN + 2];	/* the key, and a byte to see more */
	char out[KEY_B64_LEN + 1];
	size_t n;
	int c;
	bool ok;

	(void)opt;
	if (argc != 1) {
		fprintf(stderr, "Usage: %s %s\n", PROG_NAME, argv[0]);
		return EXIT_USAGE;
	}
	n = fread(text, 1, KEY_B64_LEN, stdin);
	text[n] = '\0';
	/* Like wg pubkey: whitespace and NULs may follow the key, nothing else. */
	while ((c = getchar()) != EOF && (c == '\0' || c == ' ' || c == '\t' ||
					   c == '\n' || c == '\r'))
		;
	if (c != EOF) {
		wipe(text, sizeof(text));
		fprintf(stderr, "%s: Trailing characters found after key\n", PROG_NAME);
		return EXIT_FAIL;
	}
	ok = n == KEY_B64_LEN && key_from_base64(priv, text);
	wipe(text, sizeof(text));
	if (!ok) {
		fprintf(stderr, "%s: Key is not the correct length or format\n", PROG_NAME);
		return EXIT_FAIL;
	}
	ok = x25519_public(pub, priv);
	wipe(priv, sizeof(priv));
	if (!ok) {
		fprintf(stderr, "%s: Key is not the correct length or format\n", PROG_NAME);
		return EXIT_FAIL;
	}
	key_to_base64(out, pub);
	puts(out);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}
