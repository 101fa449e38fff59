/* posternd: state shared by its main loop and its knock handling. */
#ifndef POSTERN_POSTERND_H
#define POSTERN_POSTERND_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "knock_verify.h"
#include "log_throttle.h"
#include "nfqueue.h"
#include "nft.h"
#include "replay_file.h"

#define PROG_NAME "posternd"
#define ERR_LEN 512

/* When and from where: the last knock refused for each reason, and each
 * client's last accepted knock, for the status file (knock_status.c). */
struct knock_seen {
	uint64_t wall_s;		/* Unix seconds; 0: never */
	struct ip_addr src;
};

struct posternd {
	const char *config_path;
	struct server_config *cfg;
	struct knock_verifier verifier;
	struct nft_conn *nft;
	struct nft_set_ref set4, set6;
	bool sets_checked;		/* since the last nft error */
	struct nfqueue *queue;
	struct nfqueue_stats qstats;
	struct replay_file *state;	/* NULL: replay state is not kept */
	struct log_throttle refusals;	/* per client and reason, + unknown keys */
	struct log_throttle errors;	/* nft and state file errors */
	uint64_t nft_errors, state_errors;
	uint64_t watchdog_usec;
	struct knock_seen refused_seen[KNOCK_REASONS];
	struct knock_seen *accepted_seen;	/* per cfg->clients[i] */
	/* A status file that could not be written is tried again a minute
	 * later (or at a reload), and said once until it works again. */
	uint64_t status_retry_at;	/* CLOCK_BOOTTIME ms; 0: now */
	bool status_warned;
};

/* Subjects of posternd.errors. */
enum { THROTTLE_NFT, THROTTLE_STATE, THROTTLE_ERRORS };

/* daemon/knock_gate.c */
struct knock_clock posternd_clock(void);
/* Check cfg's sets exist and are usable; fill s4 and s6. */
bool posternd_check_sets(struct posternd *d, const struct server_config *cfg,
			 struct nft_set_ref *s4, struct nft_set_ref *s6, char *err);
/* The refusal throttle for cfg's clients. */
bool posternd_refusals_init(struct log_throttle *t, const struct server_config *cfg);
void posternd_handle_burst(struct posternd *d, const struct knock_packet *pkts,
			   int n);
/* daemon/knock_status.c */
/* accepted_seen for cfg, carried over by name from d's; NULL when out of
 * memory (an empty cfg gets a valid pointer). */
struct knock_seen *posternd_seen_for(const struct posternd *d,
				     const struct server_config *cfg);
/* The status file, as posternd's counters stand. */
void posternd_write_status(struct posternd *d, uint64_t qdrop, uint64_t udrop,
			   bool drops_known);

/* Summaries of throttled log lines whose minute is over. */
void posternd_flush_logs(struct posternd *d, const struct knock_clock *now);

#endif
