/*
 * Secure memory (common/secmem.c): pages of its own, zeroed, locked where
 * the limit allows, out of core dumps, zeroed in a forked child, and wiped
 * before it is unmapped. The kernel's own view, /proc/self/smaps, is the
 * witness; munmap is wrapped (-Wl,--wrap=munmap) to see the bytes at the
 * moment they are given back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "crypto.h"
#include "secmem.h"

/* ASan replaces mlock with a stub that locks nothing and says it did:
 * under it, what the lock reports is not checked. */
#if defined(__SANITIZE_ADDRESS__)
#define MLOCK_STUBBED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MLOCK_STUBBED 1
#endif
#endif
#ifndef MLOCK_STUBBED
#define MLOCK_STUBBED 0
#endif

/* What the wrapped munmap last saw. */
static struct {
	uintptr_t start;
	size_t len;
	bool zero;
} unmapped;

int __real_munmap(void *addr, size_t len);
int __wrap_munmap(void *addr, size_t len);

int __wrap_munmap(void *addr, size_t len)
{
	unmapped.start = (uintptr_t)addr;
	unmapped.len = len;
	unmapped.zero = is_zero_ct(addr, len);
	return __real_munmap(addr, len);
}

/*
 * The VmFlags of the mapping that holds p, from /proc/self/smaps, into
 * flags ("rd wr mr mw me ac dd wf lo", say); false when no mapping holds p.
 */
static bool vm_flags(const void *p, char *flags, size_t len)
{
	char line[512];
	unsigned long lo, hi;
	bool inside = false, found = false;
	FILE *f = fopen("/proc/self/smaps", "re");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
			inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(flags, len, "%.200s", line + 8);
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

static bool has_flag(const char *flags, const char *flag)
{
	size_t n = strlen(flag);

	for (const char *s = flags; (s = strstr(s, flag)); s += n)
		if ((s == flags || s[-1] == ' ') && (s[n] == ' ' || s[n] == '\n' ||
						    s[n] == '\0'))
			return true;
	return false;
}

/* Whether this process may lock a few pages: a default RLIMIT_MEMLOCK
 * (8 MiB) or CAP_IPC_LOCK (root). */
static bool can_lock(void)
{
	struct rlimit rl;

	return geteuid() == 0 ||
	       (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur >= 65536);
}

static void alloc_is_zeroed_and_aligned(void **state)
{
	static const size_t sizes[] = { 1, 64, 4000, 5000, 100000 };

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *p = secmem_alloc(sizes[i]);

		assert_non_null(p);
		assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
		assert_true(is_zero_ct(p, sizes[i]));
		memset(p, 0xa5, sizes[i]);	/* all of it is ours */
		secmem_free(p);
	}
	assert_null(secmem_alloc(SIZE_MAX - 16));
	secmem_free(NULL);
	assert_false(secmem_locked(NULL));
}

static void pages_are_locked_and_never_dumped(void **state)
{
	char flags[256];
	void *p = secmem_alloc(64), *q = secmem_alloc(64);

	(void)state;
	assert_non_null(p);
	assert_non_null(q);
	assert_true(vm_flags(p, flags, sizeof(flags)));
	print_message("VmFlags:%s", flags);
	assert_true(has_flag(flags, "dd"));	/* MADV_DONTDUMP */
	assert_true(has_flag(flags, "wf"));	/* MADV_WIPEONFORK */
	if (!MLOCK_STUBBED) {
		if (can_lock())
			assert_true(secmem_locked(p));
		assert_int_equal(has_flag(flags, "lo"), secmem_locked(p));
	}
	/* Pages of its own: two secrets never share a mapping's page. */
	assert_true((uintptr_t)q / (uintptr_t)sysconf(_SC_PAGESIZE) !=
		    (uintptr_t)p / (uintptr_t)sysconf(_SC_PAGESIZE));
	secmem_free(p);
	secmem_free(q);
}

static void free_wipes_then_unmaps(void **state)
{
	uint8_t *p = secmem_alloc(100);
	char flags[256];

	(void)state;
	assert_non_null(p);
	memset(p, 0xa5, 100);
	memset(&unmapped, 0, sizeof(unmapped));
	secmem_free(p);
	/* The whole mapping, header and all, was zero when given back. */
	assert_true(unmapped.start <= (uintptr_t)p &&
		    (uintptr_t)p + 100 <= unmapped.start + unmapped.len);
	assert_true(unmapped.zero);
	assert_false(vm_flags(p, flags, sizeof(flags)) &&
		     has_flag(flags, "dd"));
}

static void a_forked_child_sees_zeros(void **state)
{
	uint8_t *p = secmem_alloc(32);
	int status;
	pid_t pid;

	(void)state;
	assert_non_null(p);
	memset(p, 0xa5, 32);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(is_zero_ct(p, 32) ? 0 : 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(p[31], 0xa5);	/* the parent's copy is untouched */
	secmem_free(p);
}

/* In a child: no CAP_IPC_LOCK and RLIMIT_MEMLOCK 0, so every lock fails.
 * Exits 0 when the memory is still given, reported unlocked, and the
 * warning came once for two allocations. */
static int unlocked_child(void)
{
	struct rlimit zero = { 0, 0 };
	char out[4096] = "";
	uint8_t *p, *q;
	FILE *log = tmpfile();
	size_t n;

	if (!log || dup2(fileno(log), STDERR_FILENO) < 0)
		return 2;
	if (geteuid() == 0 && setresuid(65534, 65534, 65534) != 0)
		return 3;
	if (setrlimit(RLIMIT_MEMLOCK, &zero) != 0)
		return 4;
	p = secmem_alloc(32);
	q = secmem_alloc(32);
	if (!p || !q)
		return 5;
	if (MLOCK_STUBBED)
		return 0;
	if (secmem_locked(p) || secmem_locked(q))
		return 6;
	memset(p, 0xa5, 32);
	secmem_free(p);
	secmem_free(q);
	rewind(log);
	n = fread(out, 1, sizeof(out) - 1, log);
	out[n] = '\0';
	if (!strstr(out, "cannot lock secrets in memory") ||
	    strstr(strstr(out, "cannot lock") + 1, "cannot lock"))
		return 7;
	return 0;
}

static void a_refused_lock_is_one_warning(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(unlocked_child());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(alloc_is_zeroed_and_aligned),
		cmocka_unit_test(pages_are_locked_and_never_dumped),
		cmocka_unit_test(free_wipes_then_unmaps),
		cmocka_unit_test(a_forked_child_sees_zeros),
		cmocka_unit_test(a_refused_lock_is_one_warning),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
