/*
 * Local addresses that go away. A laptop that changes networks loses its
 * address, and a tunnel bound to it is dead at once, though TCP would
 * retransmit into the void for minutes: the kernel's RTM_DELADDR says so
 * first (rtnetlink, through libmnl, on the libuv loop).
 */
#ifndef POSTERN_ADDR_WATCH_H
#define POSTERN_ADDR_WATCH_H

#include <stdbool.h>
#include <sys/socket.h>
#include <uv.h>

struct addr_watch;

typedef void addr_gone_fn(void *user, const struct sockaddr_storage *addr);

/* NULL when rtnetlink cannot be opened: then nothing is watched. */
struct addr_watch *addr_watch_new(uv_loop_t *loop, addr_gone_fn *gone,
				  void *user);
/* Stops at once; the memory goes when the loop has closed the handle. */
void addr_watch_close(struct addr_watch *w);

#endif
