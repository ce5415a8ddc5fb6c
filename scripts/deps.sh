#!/bin/sh
# Installs the system packages this project needs on a Debian machine (run as root).
#
#   scripts/deps.sh            libczmq-dev + pkg-config (needed to build: goczmq uses cgo)
#   scripts/deps.sh --pushpin  also Debian's pushpin (brings condure and zurl), the reference
#                              implementation used by scripts/capture and interop tests
#
# Idempotent: apt-get update runs only when something is missing; prints nothing when all
# packages are already installed.
set -eu

usage() {
	echo "usage: $0 [--pushpin]" >&2
	exit 2
}

pkgs="libczmq-dev pkg-config"
for arg in "$@"; do
	case "$arg" in
	--pushpin) pkgs="$pkgs pushpin condure zurl" ;;
	-h | --help) usage ;;
	*) echo "$0: unknown argument: $arg" >&2; usage ;;
	esac
done

missing=""
for p in $pkgs; do
	# dpkg-query prints "install ok installed" only for fully installed packages.
	if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]; then
		missing="$missing $p"
	fi
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "$0: missing packages:$missing (run as root to install)" >&2
	exit 1
fi

echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing
