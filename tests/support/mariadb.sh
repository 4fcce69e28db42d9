#!/bin/sh
# A throwaway MariaDB server for the tests: its data directory, socket and
# log in DIR, no TCP (the socket only), root logging in through the socket
# as the system's root.  Waits are bounded; stop it whatever happened.
#   tests/support/mariadb.sh start DIR   -> DIR/env.sh: MARIADB_SOCKET=...
#   tests/support/mariadb.sh stop DIR
set -eu
what=$1
dir=$2
sock=$dir/mysqld.sock

alive() {
	[ -f "$dir/server.pid" ] && kill -0 "$(cat "$dir/server.pid")" 2>/dev/null
}

start() {
	mkdir -p "$dir"
	chmod 755 "$dir"
	user=
	[ "$(id -u)" = 0 ] && user=--user=root
	mariadb-install-db --no-defaults --datadir="$dir/data" $user \
		--auth-root-authentication-method=socket --skip-test-db >"$dir/install.log" 2>&1 || {
		cat "$dir/install.log" >&2
		exit 1
	}
	mariadbd --no-defaults --datadir="$dir/data" --socket="$sock" --skip-networking $user \
		--pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" --innodb-buffer-pool-size=32M \
		--skip-log-bin </dev/null >>"$dir/error.log" 2>&1 &
	echo $! >"$dir/server.pid"
	# up to 30 s for it to answer on its socket
	i=0
	until mariadb-admin --no-defaults --socket="$sock" ping >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -ge 300 ] || ! alive; then
			echo "mariadb.sh: the server did not start:" >&2
			tail -20 "$dir/error.log" >&2
			stop
			exit 1
		fi
		sleep 0.1
	done
	printf 'MARIADB_SOCKET=%s\n' "$sock" >"$dir/env.sh"
}

# SIGTERM, up to 30 s to shut down, then SIGKILL
stop() {
	alive || return 0
	pid=$(cat "$dir/server.pid")
	kill -TERM "$pid" 2>/dev/null || true
	i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -ge 300 ]; then
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.1
	done
	rm -f "$dir/server.pid"
}

case $what in
start) start ;;
stop) stop ;;
*)
	echo "usage: mariadb.sh start|stop DIR" >&2
	exit 2
	;;
esac
