/*
 * Memory for the secrets a program keeps for its whole life: its static
 * key pair and the fleet PSK (secrets.h). Each allocation gets pages of its own, which
 * are locked in RAM where RLIMIT_MEMLOCK allows (so they are never written
 * to swap), left out of core dumps (MADV_DONTDUMP), zeroed in a forked
 * child (MADV_WIPEONFORK), and wiped before they are unmapped.
 *
 * Short-lived copies (a key read from a file, handshake state) stay on the
 * stack or the heap and are wiped by whoever made them.
 */
#ifndef POSTERN_SECMEM_H
#define POSTERN_SECMEM_H

#include <stdbool.h>
#include <stddef.h>

/*
 * len zeroed bytes, aligned for any type; NULL when out of memory. A lock
 * the limit refuses is not an error: the first one in a process logs one
 * warning, and secmem_locked() tells.
 */
void *secmem_alloc(size_t len);

/* Wipe and unmap memory from secmem_alloc; NULL is a no-op. */
void secmem_free(void *p);

/* Whether p's pages are locked in RAM. */
bool secmem_locked(const void *p);

#endif
