/* No core dumps: a dump of a postern process would hold its keys. */
#ifndef POSTERN_NOCORE_H
#define POSTERN_NOCORE_H

/*
 * Make the process non-dumpable (PR_SET_DUMPABLE 0: no core, no ptrace
 * by its own user, /proc/PID owned by root) and set RLIMIT_CORE to 0.
 * Call first thing in main(), before any secret is read, and again after
 * a change of user, which resets the dumpable flag. Never fails: the
 * units' LimitCORE=0 covers a setrlimit their system call filter refuses.
 */
void no_core_dumps(void);

#endif
