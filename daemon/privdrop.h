/*
 * posternd's privileges once its queue is bound and its nf_tables socket
 * is open: CAP_NET_ADMIN (to add set elements) and nothing else, no way
 * to gain more (no_new_privs), no core dump. Started as root, outside
 * systemd, it also becomes the configured user, as sshd's privilege
 * separation does; under systemd the unit has chosen the user already.
 */
#ifndef POSTERN_PRIVDROP_H
#define POSTERN_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct privdrop {
	bool switch_user;	/* started as root */
	uid_t uid;
	gid_t gid;		/* the user's primary group */
};

/* Look up user (the option `user` of the file config_path) when running
 * as root; not as root there is nothing to look up. */
bool privdrop_init(struct privdrop *p, const char *user,
		   const char *config_path, char *err, size_t err_len);

/* Drop to what posternd needs, then check that nothing else is left. */
bool privdrop_apply(const struct privdrop *p, char *err, size_t err_len);

#endif
