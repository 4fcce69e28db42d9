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
	STOPS="sh '$ROOT/tests/support/$1.sh' stop '$2'; ${STOPS:-}"
	trap 'eval "$STOPS"; rm -rf "$T"' EXIT
	. "$2/env.sh"
}

# start_sshd: a real sshd on 127.0.0.1 (tests/support/sshd.sh), stopped
# when the test ends; HOME a temporary one with a key the sshd accepts.
# Sets SSH_HOST (root@127.0.0.1:PORT); `vakap hostkeys --accept-new`
# records its key.
start_sshd() {
	if ! port=$(sh "$ROOT/tests/support/sshd.sh" start "$T/sshd" 2>&1); then
		not_ok "start sshd" "$port"
		finish
		exit 1
	fi
	STOPS="sh '$ROOT/tests/support/sshd.sh' stop '$T/sshd'; ${STOPS:-}"
	trap 'eval "$STOPS"; rm -rf "$T"' EXIT
	export HOME=$T/home
	unset SSH_AUTH_SOCK SSH_AGENT_PID
	mkdir -p -m 700 "$HOME/.ssh"
	ssh-keygen -q -t ed25519 -N '' -f "$HOME/.ssh/id_ed25519"
	cat "$HOME/.ssh/id_ed25519.pub" >>"$T/sshd/authorized_keys"
	SSH_HOST=root@127.0.0.1:$port
}

# backup_remote "COMPONENT { ... }": the site "remote", on the host of
# start_sshd, with that component: its host key recorded, then backed up
backup_remote() {
	cat > "$T/cfg/sites.d/remote.lua" <<LUA
site "remote" {
  host = "$SSH_HOST",
  $1,
}
LUA
	run hostkeys --accept-new remote
	expect_code "the host's key is recorded" 0
	run backup remote
	expect_code "a backup of every database over SSH succeeds" 0
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
