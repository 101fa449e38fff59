/* See x25519_hook.h; bench/x25519_count.c is the same as an LD_PRELOAD. */
#include "x25519_hook.h"

#include <dlfcn.h>
#include <gcrypt.h>
#include <stdlib.h>

typedef gpg_error_t mul_point_fn(int, unsigned char *, const unsigned char *,
				 const unsigned char *);

static unsigned long calls;

gpg_error_t gcry_ecc_mul_point(int curveid, unsigned char *result,
			       const unsigned char *scalar,
			       const unsigned char *point)
{
	static mul_point_fn *real;

	if (!real && !(real = (mul_point_fn *)dlsym(RTLD_NEXT, "gcry_ecc_mul_point")))
		abort();
	calls++;
	return real(curveid, result, scalar, point);
}

unsigned long x25519_calls(void)
{
	return calls;
}
