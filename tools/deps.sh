#!/bin/sh
# Install the Debian packages vakap's build, demo and tests need.
# Runs apt-get only when something is missing; needs root then.
set -eu

PKGS="build-essential pkg-config git ca-certificates
lua5.4 liblua5.4-dev lua-cjson lua-argparse lua-busted
libarchive-dev libzstd-dev zlib1g-dev libssl-dev libgpgme-dev gnupg gpg-agent
libcmocka-dev valgrind zstd gzip tar coreutils sqlite3
python3 procps bsdutils
libssh2-1-dev openssh-server openssh-client"

missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "installing:$missing" >&2
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
