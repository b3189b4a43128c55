#!/usr/bin/env bash
# Starts or stops a throwaway ClickHouse server for the tests, as our own process (not a system service),
# listening on loopback only, with a config of our own written into DIR.
#
#   scripts/clickhouse.sh start DIR HTTP_PORT TCP_PORT [CLUSTER_TCP_PORT...]
#   scripts/clickhouse.sh stop DIR
#
# With CLUSTER_TCP_PORTs, the config also defines the cluster `sessiontrace_test`: one shard per port on
# 127.0.0.1 (the scale-out test puts a Distributed table over it). `start` waits until `SELECT 1` answers
# over HTTP and prints the URL; `stop` ends the server whose pid is in DIR/clickhouse.pid.
set -euo pipefail
command="${1:-}"
dir="${2:-}"
if [ -z "$command" ] || [ -z "$dir" ]; then
  echo "usage: $0 start DIR HTTP_PORT TCP_PORT [CLUSTER_TCP_PORT...] | stop DIR" >&2
  exit 2
fi
server_binary="${CLICKHOUSE_SERVER:-$(command -v clickhouse-server || echo /usr/sbin/clickhouse-server)}"

case "$command" in
start)
  http_port="${3:?HTTP_PORT}"
  tcp_port="${4:?TCP_PORT}"
  shift 4
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"
  dir="$(cd "$dir" && pwd)"
  cluster=""
  if [ "$#" -gt 0 ]; then
    cluster="<remote_servers><sessiontrace_test>"
    for port in "$@"; do
      cluster="$cluster<shard><replica><host>127.0.0.1</host><port>$port</port></replica></shard>"
    done
    cluster="$cluster</sessiontrace_test></remote_servers>"
  fi
  cat > "$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$dir/log/clickhouse-server.log</log>
        <errorlog>$dir/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$http_port</http_port>
    <tcp_port>$tcp_port</tcp_port>
    <max_connections>512</max_connections>
    <keep_alive_timeout>10</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    $cluster
</yandex>
XML
  cat > "$dir/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>2000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval>
        </default>
    </quotas>
</yandex>
XML
  if [ -f "$dir/clickhouse.pid" ] && kill -0 "$(cat "$dir/clickhouse.pid")" 2>/dev/null; then
    echo "clickhouse already running in $dir (pid $(cat "$dir/clickhouse.pid"))" >&2
  else
    nohup "$server_binary" --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 &
    echo $! > "$dir/clickhouse.pid"
  fi
  for _ in $(seq 1 300); do
    if [ "$(curl -s "http://127.0.0.1:$http_port/?query=SELECT%201" 2>/dev/null)" = "1" ]; then
      echo "http://127.0.0.1:$http_port"
      exit 0
    fi
    if ! kill -0 "$(cat "$dir/clickhouse.pid")" 2>/dev/null; then
      echo "clickhouse-server exited; see $dir/log" >&2
      tail -20 "$dir/log/stdout.log" "$dir/log/clickhouse-server.err.log" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.1
  done
  echo "clickhouse-server did not answer on port $http_port within 30 s; see $dir/log" >&2
  exit 1
  ;;
stop)
  if [ -f "$dir/clickhouse.pid" ]; then
    pid="$(cat "$dir/clickhouse.pid")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$dir/clickhouse.pid"
  fi
  ;;
*)
  echo "unknown command $command (start or stop)" >&2
  exit 2
  ;;
esac
