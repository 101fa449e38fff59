/*
 * What this device remembers of each server's gate between runs: when a
 * knock of ours last opened it and how long the connect took, so that a
 * second `postern pipe` a moment after the first connects at once
 * instead of knocking again. Kept in $XDG_RUNTIME_DIR/postern (else
 * $XDG_CACHE_HOME/postern, else ~/.cache/postern), one small file per
 * server name, written best effort: a memo that is lost, stale or forged
 * costs one probe (client/gate.h) before the knock, nothing more.
 */
#ifndef POSTERN_GATE_MEMO_H
#define POSTERN_GATE_MEMO_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* How long ago (wall clock) a knock of ours opened s's gate, and the
 * connect time then. False when there is no usable memo. */
bool gate_memo_get(const struct server_entry *s, uint64_t *age_ms,
		   uint64_t *connect_ms);
/* A knock of ours opened s's gate just now. */
void gate_memo_put(const struct server_entry *s, uint64_t connect_ms);

/* This process now holds n live tunnels to s (0: none, its note goes),
 * for postern ls. One file per process, tunnels-NAME.PID. */
void gate_memo_tunnels(const struct server_entry *s, unsigned int n);
/* The tunnels to s that running processes of this user hold, and in how
 * many processes. */
unsigned int gate_memo_tunnels_up(const struct server_entry *s,
				  unsigned int *procs);

#endif
