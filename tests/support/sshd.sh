#!/bin/sh
# A real sshd on 127.0.0.1 for the tests, in a directory of its own.
#   tests/support/sshd.sh start DIR   start it (DIR is made if missing);
#                                     prints its port
#   tests/support/sshd.sh stop DIR    stop it, and the sessions it started
#   tests/support/sshd.sh drop DIR    kill its sessions (SIGKILL), leave it
#                                     listening: the connections drop
#   tests/support/sshd.sh freeze DIR  stop (SIGSTOP) the sshd processes
#                                     serving its connections: the kernel
#                                     still acknowledges, nothing answers
#   tests/support/sshd.sh thaw DIR    let them go on (SIGCONT)
#   tests/support/sshd.sh sessions DIR  list those processes' pids
# DIR/hostkey is its host key (made at the first start: an ed25519 key, or
# of the type in $SSHD_KEYTYPE; remove it for another), DIR/authorized_keys
# the keys that may log in (as any user, root included), DIR/port its port
# (kept across restarts), DIR/sshd.log its log.  $SSHD_OPTIONS: more lines
# for its sshd_config, at this start.  Needs root: sshd wants /run/sshd.
set -eu
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || {
	echo "usage: sshd.sh start|stop|drop|freeze|thaw|sessions DIR" >&2
	exit 2
}

# the processes sshd started for each connection
sessions() {
	[ -f "$dir/pid" ] || return 0
	ps -o pid= --ppid "$(cat "$dir/pid")" 2>/dev/null || true
}

# those, and the sshd processes they started in turn (with privilege
# separation, the one that talks to the client is a child of the first)
session_sshds() {
	for s in $(sessions); do
		echo "$s"
		ps -o pid=,comm= --ppid "$s" 2>/dev/null | awk '$2 == "sshd" { print $1 }'
	done
}

# signal SIG to each of them
signal_sessions() {
	for s in $(session_sshds); do kill -"$1" "$s" 2>/dev/null || true; done
}

stop() {
	[ -f "$dir/pid" ] || return 0
	pid=$(cat "$dir/pid")
	signal_sessions TERM
	signal_sessions CONT # a frozen one takes its TERM once let go
	kill -TERM "$pid" 2>/dev/null || true
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$dir/pid"
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
	mkdir -p "$dir" /run/sshd
	chmod 755 /run/sshd
	[ -f "$dir/hostkey" ] ||
		ssh-keygen -q -t "${SSHD_KEYTYPE:-ed25519}" -N '' -C vakap-test-host -f "$dir/hostkey"
	[ -f "$dir/authorized_keys" ] || : > "$dir/authorized_keys"
	[ -f "$dir/port" ] || free_port > "$dir/port"
	port=$(cat "$dir/port")
	cat > "$dir/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/hostkey
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowAgentForwarding no
AllowTcpForwarding no
X11Forwarding no
PrintMotd no
PrintLastLog no
MaxStartups 50
MaxSessions 20
LogLevel VERBOSE
${SSHD_OPTIONS:-}
EOF
	: > "$dir/sshd.log"
	/usr/sbin/sshd -D -e -f "$dir/sshd_config" </dev/null >/dev/null 2>>"$dir/sshd.log" &
	echo $! > "$dir/pid"
	# ready when it says it listens (bounded: 10 s)
	i=0
	until grep -q "Server listening on 127.0.0.1 port $port" "$dir/sshd.log"; do
		if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null || [ $i -ge 100 ]; then
			echo "sshd.sh: sshd did not start:" >&2
			cat "$dir/sshd.log" >&2
			stop
			exit 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
	echo "$port"
}

case $cmd in
start) start ;;
stop) stop ;;
drop) for s in $(sessions); do kill -KILL "$s" 2>/dev/null || true; done ;;
freeze) signal_sessions STOP ;;
thaw) signal_sessions CONT ;;
sessions) session_sshds ;;
*)
	echo "sshd.sh: unknown command '$cmd'" >&2
	exit 2
	;;
esac
