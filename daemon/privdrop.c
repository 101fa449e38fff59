/* Dropping posternd's privileges, with libcap-ng; see privdrop.h. */
#include "privdrop.h"

#include <cap-ng.h>
#include <errno.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "nocore.h"

#define CAP_MAX 64	/* libcap-ng answers 0 past the kernel's last */
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

bool privdrop_init(struct privdrop *p, const char *user,
		   const char *config_path, char *err, size_t err_len)
{
	const struct passwd *pw;

	memset(p, 0, sizeof(*p));
	if (geteuid() != 0)
		return true;
	pw = getpwnam(user);
	if (!pw) {
		snprintf(err, err_len, "%s: user: no such user \"%s\"",
			 config_path, user);
		return false;
	}
	/* uid 0 without capabilities still owns every root file. */
	if (pw->pw_uid == 0) {
		snprintf(err, err_len, "%s: user: \"%s\" has uid 0: name an "
			 "unprivileged user", config_path, user);
		return false;
	}
	p->switch_user = true;
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid;
	return true;
}

/* Whether the state libcap-ng holds has a capability but CAP_NET_ADMIN
 * in one of the sets of which. */
static bool holds_extra(const capng_type_t *which, size_t n)
{
	for (unsigned int c = 0; c < CAP_MAX; c++) {
		if (c == CAP_NET_ADMIN)
			continue;
		for (size_t i = 0; i < n; i++)
			if (capng_have_capability(which[i], c))
				return true;
	}
	return false;
}

static const capng_type_t process_sets[] = {
	CAPNG_EFFECTIVE, CAPNG_PERMITTED, CAPNG_INHERITABLE, CAPNG_AMBIENT,
};
static const capng_type_t bounding_set[] = { CAPNG_BOUNDING_SET };

/* Root: the bounding set first, while CAP_SETPCAP is still ours, then
 * the user with CAP_NET_ADMIN kept across the change. capng_change_id's
 * CAPNG_CLEAR_BOUNDING would empty the bounding set, CAP_NET_ADMIN too. */
static bool switch_user(const struct privdrop *p, char *err, size_t err_len)
{
	int rc;

	capng_clear(CAPNG_SELECT_ALL);
	capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED |
		     CAPNG_BOUNDING_SET, CAP_NET_ADMIN);
	if (capng_apply(CAPNG_SELECT_BOUNDS) != 0) {
		snprintf(err, err_len, "cannot narrow the capability bounding "
			 "set: %s", strerror(errno));
		return false;
	}
	rc = capng_change_id((int)p->uid, (int)p->gid,
			     CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_AMBIENT);
	if (rc != 0) {
		snprintf(err, err_len, "cannot switch to uid %u gid %u "
			 "(libcap-ng error %d): %s", (unsigned int)p->uid,
			 (unsigned int)p->gid, rc, strerror(errno));
		return false;
	}
	return true;
}

/*
 * Not root (systemd's User= with AmbientCapabilities=CAP_NET_ADMIN): drop
 * whatever else came along, and narrow the bounding set if CAP_SETPCAP
 * allows. Under the unit there is nothing to drop, and capset is not
 * called at all: its system call filter refuses it.
 */
static bool narrow(char *err, size_t err_len)
{
	bool net_admin, setpcap;

	if (capng_get_caps_process() != 0) {
		snprintf(err, err_len, "cannot read capabilities: %s",
			 strerror(errno));
		return false;
	}
	setpcap = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP);
	if (holds_extra(process_sets, LEN(process_sets)) ||
	    (setpcap && holds_extra(bounding_set, LEN(bounding_set)))) {
		net_admin = capng_have_capability(CAPNG_PERMITTED, CAP_NET_ADMIN);
		capng_clear(CAPNG_SELECT_ALL);
		if (net_admin)
			capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED,
				     CAP_NET_ADMIN);
		capng_update(CAPNG_ADD, CAPNG_BOUNDING_SET, CAP_NET_ADMIN);
		if ((setpcap && capng_apply(CAPNG_SELECT_BOUNDS) != 0) ||
		    capng_apply(CAPNG_SELECT_CAPS) != 0) {
			snprintf(err, err_len, "cannot drop capabilities: %s",
				 strerror(errno));
			return false;
		}
	}
	/* posternd runs no program: an ambient CAP_NET_ADMIN would only
	 * pass the privilege on to one. */
	capng_clear(CAPNG_SELECT_AMBIENT);
	if (capng_apply(CAPNG_SELECT_AMBIENT) != 0) {
		snprintf(err, err_len, "cannot clear ambient capabilities: %s",
			 strerror(errno));
		return false;
	}
	return true;
}

/* Trust the kernel's answer, not the calls': as sshd checks that it
 * cannot get root back. */
static bool verify(const struct privdrop *p, char *err, size_t err_len)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (capng_get_caps_process() != 0 ||
	    holds_extra(process_sets, LEN(process_sets)) ||
	    (p->switch_user && holds_extra(bounding_set, LEN(bounding_set)))) {
		snprintf(err, err_len, "capabilities other than CAP_NET_ADMIN "
			 "are left after the drop");
		return false;
	}
	if (p->switch_user &&
	    (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 ||
	     ru != p->uid || eu != p->uid || su != p->uid ||
	     rg != p->gid || eg != p->gid || sg != p->gid ||
	     getgroups(0, NULL) != 0)) {
		snprintf(err, err_len, "the switch to uid %u did not take",
			 (unsigned int)p->uid);
		return false;
	}
	return true;
}

bool privdrop_apply(const struct privdrop *p, char *err, size_t err_len)
{
	if (p->switch_user ? !switch_user(p, err, err_len) : !narrow(err, err_len))
		return false;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, err_len, "cannot set no_new_privs: %s",
			 strerror(errno));
		return false;
	}
	/* A change of user resets the dumpable flag to fs.suid_dumpable. */
	no_core_dumps();
	return verify(p, err, err_len);
}
