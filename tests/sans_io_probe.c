/*
 * A library that breaks the sans-I/O rule on purpose: the test
 * sans_io_check_refuses runs scripts/sans_io_check.sh on it and must see
 * it fail, so that a check that stopped matching would not pass quietly.
 */
#include <stdio.h>
#include <unistd.h>

void sans_io_probe(const char *path);

void sans_io_probe(const char *path)
{
	FILE *f = fopen(path, "r");

	if (f) {
		(void)read(fileno(f), NULL, 0);
		fclose(f);
	}
}
