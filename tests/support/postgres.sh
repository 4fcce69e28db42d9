#!/bin/sh
# A throwaway PostgreSQL cluster for the tests, run as the postgres user:
# its data directory, socket and log in DIR, listening on a free port of
# 127.0.0.1 too.  Local (socket) connections authenticate by peer, so only
# the postgres system user is the postgres role there; TCP ones from
# 127.0.0.1 are trusted.  Waits are bounded; stop it whatever happened.
#   tests/support/postgres.sh start DIR  -> DIR/env.sh: PG_SOCKET_DIR=...
#                                           PG_PORT=...
#   tests/support/postgres.sh stop DIR
set -eu
what=$1
dir=$2
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "postgres.sh: no /usr/lib/postgresql/*/bin: install postgresql" >&2; exit 1; }

as_postgres() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
	mkdir -p "$dir/run"
	chmod 755 "$dir" "$dir/run"
	[ "$(id -u)" = 0 ] && chown postgres: "$dir" "$dir/run"
	as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth-local=peer --auth-host=trust \
		-E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		exit 1
	}
	port=$(free_port)
	# -w -t 30: pg_ctl waits up to 30 s for the server to accept connections
	as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/run/server.log" -w -t 30 \
		-o "-k $dir/run -h 127.0.0.1 -p $port -c fsync=off -c full_page_writes=off" start >/dev/null || {
		echo "postgres.sh: the server did not start:" >&2
		tail -20 "$dir/run/server.log" >&2
		stop
		exit 1
	}
	printf 'PG_SOCKET_DIR=%s\nPG_PORT=%s\n' "$dir/run" "$port" >"$dir/env.sh"
}

stop() {
	[ -f "$dir/data/postmaster.pid" ] || return 0
	as_postgres "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
}

case $what in
start) start ;;
stop) stop ;;
*)
	echo "usage: postgres.sh start|stop DIR" >&2
	exit 2
	;;
esac
