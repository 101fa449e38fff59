/*
 * x25519_count.so: an LD_PRELOAD shim that counts the X25519 operations a
 * process asks libgcrypt for (gcry_ecc_mul_point), and prints the count
 * to stderr when the process exits:  x25519_count: pid P calls N
 * bench/knock runs posternd under it to count what a knock costs: one
 * X25519, two for a key's first knock after a start or reload.
 */
#include <dlfcn.h>
#include <gcrypt.h>
#include <stdio.h>
#include <unistd.h>

typedef gpg_error_t (*mul_point_fn)(int, unsigned char *, const unsigned char *,
				     const unsigned char *);

static unsigned long calls;

gpg_error_t gcry_ecc_mul_point(int curveid, unsigned char *result,
			       const unsigned char *scalar,
			       const unsigned char *point)
{
	static mul_point_fn real;

	if (!real)
		real = (mul_point_fn)dlsym(RTLD_NEXT, "gcry_ecc_mul_point");
	__atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
	return real(curveid, result, scalar, point);
}

__attribute__((destructor)) static void report(void)
{
	fprintf(stderr, "x25519_count: pid %ld calls %lu\n", (long)getpid(), calls);
}
