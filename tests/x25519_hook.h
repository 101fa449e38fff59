/*
 * Counts the X25519 operations of a test: the test's own definition of
 * gcry_ecc_mul_point is linked before libgcrypt's, counts, and calls the
 * real one. A count, never a time: what a cache saves is the operations it
 * leaves out.
 */
#ifndef POSTERN_TEST_X25519_HOOK_H
#define POSTERN_TEST_X25519_HOOK_H

unsigned long x25519_calls(void);

#endif
