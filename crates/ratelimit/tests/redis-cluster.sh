#!/usr/bin/env bash
# Starts or stops a three-master Redis Cluster on loopback ports for the cluster test.
#
#   tests/redis-cluster.sh start   # ports 7001..7003 (PALISADE_CLUSTER_BASE_PORT=7000)
#   tests/redis-cluster.sh stop
#
# Prints the value for PALISADE_TEST_REDIS_CLUSTER on success. Idempotent: starting a
# cluster that is already up only prints it.
set -euo pipefail

base="${PALISADE_CLUSTER_BASE_PORT:-7000}"
ports=("$((base + 1))" "$((base + 2))" "$((base + 3))")
dir="${PALISADE_CLUSTER_DIR:-/tmp/palisade-redis-cluster}"

urls() {
  local out=()
  for port in "${ports[@]}"; do out+=("redis://127.0.0.1:${port}"); done
  (IFS=,; echo "${out[*]}")
}

cluster_ok() {
  redis-cli -p "${ports[0]}" cluster info 2>/dev/null | grep -q '^cluster_state:ok'
}

start() {
  if cluster_ok; then
    urls
    return 0
  fi
  mkdir -p "$dir"
  for port in "${ports[@]}"; do
    if ! redis-cli -p "$port" ping >/dev/null 2>&1; then
      rm -f "$dir/nodes-${port}.conf"
      redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file "nodes-${port}.conf" --dir "$dir" \
        --save "" --appendonly no --daemonize yes \
        --logfile "$dir/redis-${port}.log" --pidfile "$dir/redis-${port}.pid"
    fi
  done
  for port in "${ports[@]}"; do
    for _ in $(seq 1 50); do
      redis-cli -p "$port" ping >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
  local known
  known=$(redis-cli -p "${ports[0]}" cluster info | grep '^cluster_known_nodes:' | tr -dc '0-9')
  if [ "${known:-1}" -lt 3 ]; then
    redis-cli --cluster create "127.0.0.1:${ports[0]}" "127.0.0.1:${ports[1]}" \
      "127.0.0.1:${ports[2]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1
  fi
  for _ in $(seq 1 100); do
    if cluster_ok; then
      urls
      return 0
    fi
    sleep 0.1
  done
  echo "redis cluster did not become ok; see $dir" >&2
  return 1
}

stop() {
  for port in "${ports[@]}"; do
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  done
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
