#!/usr/bin/env bash
# Install the Debian packages postern needs to build and test.
# Idempotent: packages already present are left alone.
set -euo pipefail

packages=(
	build-essential cmake pkg-config clang libclang-rt-14-dev
	libgcrypt20-dev libconfuse-dev libsystemd-dev libuv1-dev
	libmnl-dev libnftnl-dev libnetfilter-queue-dev libcmocka-dev
	libcap-ng-dev libfaketime
	scdoc wireguard-tools dpkg-dev
	golang-go golang-github-flynn-noise-dev golang-github-hashicorp-yamux-dev
	golang-golang-x-crypto-dev python3
	nftables iptables iproute2 systemd openssh-server openssh-client
	# container_test: a Debian 12 root file system, booted under systemd-nspawn
	debootstrap systemd-container
	# socks_test: SOCKS5 clients (curl --socks5*, nc -X 5 of netcat-openbsd)
	curl netcat-openbsd
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}; run as root to install them" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
