/* No core dumps; see nocore.h. */
#include "nocore.h"

#include <sys/prctl.h>
#include <sys/resource.h>

void no_core_dumps(void)
{
	struct rlimit rl;

	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* Under systemd LimitCORE=0 has done it already, and
	 * SystemCallFilter=~@resources would refuse setrlimit (EPERM):
	 * then there is nothing to do, and nothing to report. */
	if (getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_cur == 0 &&
	    rl.rlim_max == 0)
		return;
	rl.rlim_cur = rl.rlim_max = 0;
	(void)setrlimit(RLIMIT_CORE, &rl);
}
