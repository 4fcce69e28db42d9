#!/bin/sh
# Install the Debian packages vakap's build, demo and tests need.
# Runs apt-get only when something is missing; needs root then.
set -eu

PKGS="build-essential pkg-config git ca-certificates
lua5.4 liblua5.4-dev lua-cjson lua-argparse lua-busted
libarchive-dev libzstd-dev zlib1g-dev libssl-dev libgpgme-dev gnupg gpg-agent
libcurl4-openssl-dev libexpat1-dev
libcmocka-dev valgrind zstd gzip tar coreutils sqlite3
python3 procps bsdutils sudo
mariadb-server mariadb-client postgresql postgresql-client
libssh-dev openssh-server openssh-client gnuplot-nox"

missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
# The S3 tests run moto (not a Debian package) with boto3: say so early.
python3 -c 'import moto.server, boto3' 2>/dev/null ||
	echo "tools/deps.sh: the S3 tests need moto[server] and boto3 for python3" \
		"(pip install 'moto[server]' boto3)" >&2
[ -z "$missing" ] && exit 0

echo "installing:$missing" >&2
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The database servers are installed for their programs: the tests start
# their own, in temporary directories.  Unless the machine has a policy
# already, keep apt from starting system-wide ones (exit 101: "not now").
policy=/usr/sbin/policy-rc.d
if [ ! -e $policy ]; then
	$SUDO sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
	trap '$SUDO rm -f $policy' EXIT
fi
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
