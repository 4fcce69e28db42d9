# shellcheck shell=bash
# Sourced by the database e2e tests, after lib.sh: a throwaway server,
# comparing databases, and restoring through `vakap restore`.

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
# of SITE's COMPONENT (of its PART) into its database, or TARGET, with
# vakap restore --into-host; sets OUT, ERR and RC like `run`.
restore_latest() {
	run restore "$2" "$1${3:+/$3}" --into-host ${4:+--target "$4"}
}
