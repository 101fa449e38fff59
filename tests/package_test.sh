#!/usr/bin/env bash
# The Debian package: built by the package target, named as Debian names
# it, with the files and Depends it must have, and maintainer scripts that
# make the users and directories but enable and start nothing (a
# default-drop firewall can lock the admin out: that step is theirs), and
# on an upgrade restart posternd but not postern-tunneld, whose restart
# would end the admin's own tunnel. The scripts run against stand-ins for
# systemctl and friends that record what they were asked; the install
# under a real systemd is the container test's.
#
# usage: package_test.sh BUILD_DIR SOURCE_DIR
set -u
BUILD=$(realpath "$1") SRC=$(realpath "$2")
. "$SRC/tests/netns_lib.sh"

command -v dpkg-deb >/dev/null || skip "dpkg-deb is not installed"
command -v dpkg-shlibdeps >/dev/null || skip "dpkg-shlibdeps (dpkg-dev) is not installed"
TMP=$(mktemp -d /tmp/postern-package-XXXXXX)
trap 'rm -rf "$TMP"' EXIT

VERSION=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD/CMakeCache.txt")
ARCH=$(dpkg --print-architecture)
DEB=$BUILD/postern_${VERSION}_${ARCH}.deb
rm -f "$DEB"
cmake --build "$BUILD" --target package > "$TMP/cpack.log" 2>&1
[ -f "$DEB" ] || cat "$TMP/cpack.log"
check "the package target makes postern_${VERSION}_${ARCH}.deb" test -f "$DEB"

field() { dpkg-deb -f "$DEB" "$1"; }
check "control: package postern, its version, this architecture" bash -c "
	[ '$(field Package)' = postern ] && [ '$(field Version)' = '$VERSION' ] &&
	[ '$(field Architecture)' = '$ARCH' ]"
for lib in libc6 libgcrypt20 libconfuse2 libsystemd0 libuv1 libmnl0 libnftnl11 \
	   libnetfilter-queue1 libcap-ng0 systemd; do
	check "Depends names $lib" bash -c "dpkg-deb -f '$DEB' Depends | tr ',' '\n' |
		grep -qE '^ *$lib( |\$)'"
done

dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's|^\./|/|' > "$TMP/files"
for f in /usr/sbin/posternd /usr/sbin/postern-tunneld /usr/bin/postern \
	 /usr/lib/systemd/system/posternd.service \
	 /usr/lib/systemd/system/postern-tunneld.service \
	 /usr/lib/sysusers.d/postern.conf /usr/lib/tmpfiles.d/postern.conf \
	 /usr/lib/systemd/catalog/postern.catalog \
	 /usr/share/man/man1/postern.1 /usr/share/man/man8/posternd.8 \
	 /usr/share/man/man8/postern-tunneld.8 /usr/share/man/man5/postern.conf.5 \
	 /usr/share/doc/postern/examples/postern.conf \
	 /usr/share/bash-completion/completions/postern \
	 /usr/lib/systemd/user/postern-forward@.service; do
	check "ships $f" grep -qx "$f" "$TMP/files"
done
check "ships nothing under /etc (the configuration is the admin's)" bash -c "
	! grep -q '^/etc/' '$TMP/files'"
dpkg-deb -x "$DEB" "$TMP/root"
check "the units start the binaries where the package puts them" bash -c "
	grep -qx 'ExecStart=/usr/sbin/posternd' '$TMP/root/usr/lib/systemd/system/posternd.service' &&
	grep -q '^ExecStart=/usr/sbin/postern-tunneld' '$TMP/root/usr/lib/systemd/system/postern-tunneld.service' &&
	grep -qx 'ExecStart=/usr/bin/postern forward %i' '$TMP/root/usr/lib/systemd/user/postern-forward@.service'"
check "the packaged postern runs" bash -c "'$TMP/root/usr/bin/postern' genkey |
	'$TMP/root/usr/bin/postern' pubkey | grep -qE '^[A-Za-z0-9+/]{43}=\$'"

# The maintainer scripts, against recording stand-ins. A private mount
# namespace gives them a /run/systemd/system (a systemd host) without
# touching the real /run.
dpkg-deb -e "$DEB" "$TMP/control"
mkdir "$TMP/bin"
for tool in systemd-sysusers systemd-tmpfiles journalctl systemctl; do
	cat > "$TMP/bin/$tool" <<STUB
#!/bin/sh
echo "$tool \$*" >> "$TMP/calls"
[ "$tool \$1" != "systemctl is-active" ] || exit \${TUNNELD_ACTIVE:-3}
exit 0
STUB
	chmod 755 "$TMP/bin/$tool"
done
run_script() {	# run_script SCRIPT ARGS...: as dpkg would, on a systemd host
	: > "$TMP/calls"
	unshare -m sh -c 'mount -t tmpfs none /run && mkdir -p /run/systemd/system &&
		exec env PATH="$0:$PATH" sh "$@"' "$TMP/bin" "$TMP/control/$@" > "$TMP/out" 2>&1
}
check "postinst configure (a first install) runs" run_script postinst configure
check "  ...makes the users and the directories, and registers the catalog" bash -c "
	grep -qx 'systemd-sysusers postern.conf' '$TMP/calls' &&
	grep -qx 'systemd-tmpfiles --create postern.conf' '$TMP/calls' &&
	grep -qx 'journalctl --update-catalog' '$TMP/calls'"
check "  ...and neither enables nor starts anything" bash -c "
	! grep -q '^systemctl' '$TMP/calls'"
export TUNNELD_ACTIVE=0
check "postinst configure OLD (an upgrade) runs" run_script postinst configure 0.0.1
check "  ...restarts posternd if it runs" grep -qx "systemctl try-restart posternd.service" "$TMP/calls"
check "  ...but not postern-tunneld, and says why" bash -c "
	! grep -E '^systemctl (restart|try-restart|reload-or-restart|start|enable).*postern-tunneld' '$TMP/calls' &&
	grep -q 'postern-tunneld was not restarted: a restart ends every tunnel' '$TMP/out'"
check "  ...and enables nothing" bash -c "! grep -qE '^systemctl (enable|start)' '$TMP/calls'"
unset TUNNELD_ACTIVE
check "prerm upgrade runs" run_script prerm upgrade 0.2.0
check "  ...and stops nothing" bash -c "! grep -q . '$TMP/calls'"
check "prerm remove runs" run_script prerm remove
check "  ...and stops both daemons" \
	grep -qx "systemctl stop posternd.service postern-tunneld.service" "$TMP/calls"
finish
