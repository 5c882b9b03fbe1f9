#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, from Debian's `postgresql`
# packages (`make postgres` installs them): a fresh cluster in a temporary
# directory, trust authentication, listening on 127.0.0.1 on a free port with
# its unix socket in that directory. PostgreSQL refuses to run as root, so as
# root the server runs as the `postgres` user in a directory it owns.
#
#   postgres.sh with CMD [ARGS...]  starts a server, runs CMD with
#       SWITCHBOARD_TEST_POSTGRES=postgres://postgres@127.0.0.1:PORT, then stops
#       the server and removes its directory, whatever way CMD ends (the exit
#       status is CMD's). `make test` runs its test binaries under this.
#   postgres.sh serve DIR  starts a server in the empty directory DIR, prints
#       its base URL on one line, then waits for its standard input to close
#       (the process that started it is gone: the kernel closes the pipe even
#       after SIGKILL) and stops the server and removes DIR. The test harness
#       (harness/postgres.rs) starts its own server this way when no
#       SWITCHBOARD_TEST_POSTGRES is set.
#
# SWITCHBOARD_PG_BIN names another directory of PostgreSQL binaries.
set -euo pipefail

bin_dir() {
	if [ -n "${SWITCHBOARD_PG_BIN:-}" ]; then
		echo "$SWITCHBOARD_PG_BIN"
		return
	fi
	local dir
	dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [ -z "$dir" ] || [ ! -x "$dir/initdb" ]; then
		echo "postgres.sh: no initdb under /usr/lib/postgresql/*/bin; \`make postgres\` installs it" >&2
		return 1
	fi
	echo "$dir"
}

# Runs a server command as the user who owns the cluster.
as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# Whether something accepts connections on 127.0.0.1:$1.
port_taken() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start_server DIR: initdb and start in DIR; prints the base URL.
start_server() {
	local dir=$1 bin data port attempt
	bin=$(bin_dir)
	data=$dir/data
	if [ "$(id -u)" = 0 ]; then
		chown postgres: "$dir"
	fi
	as_owner "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C \
		--no-sync --no-instructions >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		return 1
	}
	# Several nodes, each with a pool, share one server; fsync is off because
	# the whole cluster is thrown away (a crash of the machine loses nothing
	# a test needs).
	cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 300
fsync = off
full_page_writes = off
CONF
	# A port below Linux's ephemeral range, so it is never one a test's
	# `127.0.0.1:0` listener or an outgoing connection holds; another
	# server may still take it between the check and the bind: then the
	# start fails with "Address already in use" and another port is tried.
	for attempt in $(seq 1 20); do
		port=$((20000 + RANDOM % 12000))
		if port_taken "$port"; then
			continue
		fi
		if as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
			-o "-p $port" start >/dev/null 2>&1; then
			echo "postgres://postgres@127.0.0.1:$port"
			return 0
		fi
		if ! grep -q "could not bind\|Address already in use" "$dir/server.log" 2>/dev/null; then
			break
		fi
	done
	echo "postgres.sh: the server did not start (attempt $attempt); its log:" >&2
	cat "$dir/server.log" >&2 2>/dev/null || true
	return 1
}

# stop_server DIR: stops the server if it runs and removes DIR.
stop_server() {
	local dir=$1 bin
	if [ -f "$dir/data/postmaster.pid" ] && bin=$(bin_dir); then
		as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
}

case "${1:-}" in
with)
	shift
	[ $# -gt 0 ] || { echo "usage: postgres.sh with CMD [ARGS...]" >&2; exit 2; }
	dir=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-pg.XXXXXX")
	trap 'status=$?; stop_server "$dir"; exit $status' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	SWITCHBOARD_TEST_POSTGRES=$(start_server "$dir")
	export SWITCHBOARD_TEST_POSTGRES
	echo "postgres.sh: a test PostgreSQL at $SWITCHBOARD_TEST_POSTGRES" >&2
	"$@"
	;;
serve)
	dir=${2:?usage: postgres.sh serve DIR}
	# Only the end of the standard input stops it: a Ctrl-C meant for the
	# test process must not leave the server without its cleanup.
	trap '' INT TERM HUP
	trap 'stop_server "$dir" </dev/null >/dev/null 2>&1' EXIT
	start_server "$dir"
	exec >/dev/null
	cat >/dev/null || true
	;;
*)
	echo "usage: postgres.sh with CMD [ARGS...] | serve DIR" >&2
	exit 2
	;;
esac
