/* Secure memory for long-lived secrets; see secmem.h. */
#include "secmem.h"

#include <errno.h>
#include <stdalign.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "crypto.h"
#include "log.h"

/* LeakSanitizer scans the heap and globals for pointers, not pages from
 * mmap: these are registered as roots, so that what they point to (a
 * hash handle kept with a key) is not taken for a leak. */
#if defined(__SANITIZE_ADDRESS__)
#define SECMEM_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SECMEM_LSAN 1
#endif
#endif
#ifdef SECMEM_LSAN
#include <sanitizer/lsan_interface.h>
#define lsan_root(p, n) __lsan_register_root_region(p, n)
#define lsan_unroot(p, n) __lsan_unregister_root_region(p, n)
#else
#define lsan_root(p, n) ((void)(p), (void)(n))
#define lsan_unroot(p, n) ((void)(p), (void)(n))
#endif

/* At the start of each mapping; the caller's bytes follow it. */
struct secmem_head {
	size_t map_len;
	bool locked;
};

#define HEAD_LEN ((sizeof(struct secmem_head) + alignof(max_align_t) - 1) & \
		  ~(alignof(max_align_t) - 1))

static bool warned;

static void warn_unlocked(int err)
{
	if (warned)
		return;
	warned = true;
	log_msg(LOG_WARNING, "cannot lock secrets in memory (%s): they could "
		"be written to swap; raise RLIMIT_MEMLOCK (ulimit -l, "
		"LimitMEMLOCK=)", strerror(err));
}

static struct secmem_head *head_of(const void *p)
{
	return (struct secmem_head *)((uintptr_t)p - HEAD_LEN);
}

void *secmem_alloc(size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), map_len;
	struct secmem_head *h;

	if (len > SIZE_MAX - HEAD_LEN - page) {
		errno = ENOMEM;
		return NULL;
	}
	map_len = (HEAD_LEN + len + page - 1) / page * page;
	h = mmap(NULL, map_len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h == MAP_FAILED)
		return NULL;
	/* Each is best effort: an older kernel lacks the advice, and the
	 * lock is up to RLIMIT_MEMLOCK (8 MiB by default, plenty). */
#ifdef MADV_DONTDUMP
	(void)madvise(h, map_len, MADV_DONTDUMP);
#endif
#ifdef MADV_WIPEONFORK
	(void)madvise(h, map_len, MADV_WIPEONFORK);
#endif
	h->map_len = map_len;
	h->locked = mlock(h, map_len) == 0;
	if (!h->locked)
		warn_unlocked(errno);
	lsan_root(h, map_len);
	return (char *)h + HEAD_LEN;
}

void secmem_free(void *p)
{
	struct secmem_head *h;
	size_t map_len;

	if (!p)
		return;
	h = head_of(p);
	/* Zero in a forked child (wipe on fork): nothing left to wipe, and
	 * the child's copy of the pages goes when it exits. */
	map_len = h->map_len;
	if (!map_len)
		return;
	lsan_unroot(h, map_len);
	wipe(h, map_len);
	munmap(h, map_len);
}

bool secmem_locked(const void *p)
{
	return p && head_of(p)->locked;
}
