# shellcheck shell=bash
# Sourced by the database e2e tests, after lib.sh: a throwaway server,
# comparing databases, and the test-only op restore-latest
# (restore-latest.lua beside this file) in the test's ops.d.
cp "$ROOT/tests/support/restore-latest.lua" "$T/cfg/ops.d/"

# start_server KIND DIR: tests/support/KIND.sh start DIR (mariadb,
# postgres), stopped when the test ends, its env.sh read; a server that
# does not start ends the test.
start_server() {
	chmod 711 "$T" # the server's system user, and as_user, reach DIR
	if ! sh "$ROOT/tests/support/$1.sh" start "$2" >"$T/$1.log" 2>&1; then
		not_ok "start a $1 server" "$(cat "$T/$1.log")"
		finish
		exit 1
	fi
	trap 'sh "$ROOT/tests/support/'"$1"'.sh" stop "'"$2"'"; rm -rf "$T"' EXIT
	. "$2/env.sh"
}

# same_db NAME SOURCE COPY [SKIP]: COPY has what SOURCE has, by the test's
# fingerprint DB [SKIP]
same_db() {
	a=$(fingerprint "$2" "${4:-}")
	b=$(fingerprint "$3" "${4:-}")
	if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "$1"; else not_ok "$1" "$2:
$a
$3:
$b"; fi
}

# restore_latest COMPONENT SITE [PART] [TARGET]: restore the newest backup
# of SITE's COMPONENT (of its PART) into its database, or TARGET; sets OUT,
# ERR and RC like `run`.
restore_latest() {
	export RESTORE_COMPONENT=$1
	[ -n "${3:-}" ] && export RESTORE_PART=$3
	[ -n "${4:-}" ] && export RESTORE_TARGET=$4
	run run restore-latest "$2"
	unset RESTORE_COMPONENT RESTORE_PART RESTORE_TARGET
}
