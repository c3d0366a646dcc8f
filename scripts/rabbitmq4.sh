#!/usr/bin/env bash
# A RabbitMQ 4.x node beside the system broker, for the tests and for trying rabbit-rpc on 4.x.
#
# Debian 12 ships RabbitMQ 3.10 only. Debian 13 ships 4.0.5 on Erlang 27, whose binaries need
# Debian 13's libc, so the node runs in a Debian 13 root file system built by debootstrap
# from the mirror this machine's apt sources already use (about 75 s and 370 MB, once).
#
#   bash scripts/rabbitmq4.sh build    build the root (once; a no-op when it exists)
#   bash scripts/rabbitmq4.sh configure  write its rabbitmq.conf (start does it; a running
#                                      node reads it when it next starts)
#   bash scripts/rabbitmq4.sh start    build if needed, start the node, wait until it answers
#   bash scripts/rabbitmq4.sh stop     stop the node
#   bash scripts/rabbitmq4.sh status   exit 0 when the node answers AMQP
#   bash scripts/rabbitmq4.sh ctl ...  rabbitmqctl inside the root, against this node
#
# The node listens on 127.0.0.1:${RABBITMQ4_PORT:-5682} (guest/guest) with RabbitMQ 4.3's
# defaults of refusing transient (non-durable) non-exclusive queues and global QoS
# (etc/rabbitmq/conf.d in the root, which private nodes started from the root read too).
# Needs root.
# Environment: RABBITMQ4_ROOT (default /var/lib/rabbit-rpc/rabbitmq4-root), RABBITMQ4_PORT.
set -euo pipefail

ROOT=${RABBITMQ4_ROOT:-/var/lib/rabbit-rpc/rabbitmq4-root}
PORT=${RABBITMQ4_PORT:-5682}
EPMD_PORT=14382
NODE=r4@localhost

in_root() { chroot "$ROOT" env ERL_EPMD_PORT=$EPMD_PORT HOME=/var/lib/rabbitmq "$@"; }

answers() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null; }

build() {
  if [[ -x "$ROOT/usr/lib/rabbitmq/bin/rabbitmq-server" ]]; then
    echo "rabbitmq4: root already built at $ROOT"
    return
  fi
  if ! command -v debootstrap >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap </dev/null ||
      { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap </dev/null; }
  fi
  local mirror
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "rabbitmq4: building a Debian 13 root with rabbitmq-server at $ROOT from $mirror"
  rm -rf "$ROOT.partial"
  mkdir -p "$(dirname "$ROOT")"
  debootstrap --variant=minbase --include=rabbitmq-server trixie "$ROOT.partial" "$mirror" \
    >"$(dirname "$ROOT")/debootstrap.log" 2>&1 ||
    { tail -n 30 "$(dirname "$ROOT")/debootstrap.log" >&2; exit 1; }
  mv "$ROOT.partial" "$ROOT"
  echo "rabbitmq4: built ($(du -sh "$ROOT" | cut -f1))"
}

configure() {
  mkdir -p "$ROOT/etc/rabbitmq/conf.d"
  cat >"$ROOT/etc/rabbitmq/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$PORT
management.tcp.port = 1$PORT
CONF
  # RabbitMQ 4.3's defaults that 4.0 does not have yet. In conf.d, so that the private nodes
  # rabbit-rpc/testing starts from this root (startPrivateBroker({ chroot })) get them too.
  cat >"$ROOT/etc/rabbitmq/conf.d/10-rabbitmq-4.3-defaults.conf" <<CONF
# transient (non-durable) non-exclusive queues are refused (connection error 541)
deprecated_features.permit.transient_nonexcl_queues = false
# basic.qos with global = true is refused
deprecated_features.permit.global_qos = false
CONF
  # A private epmd port and distribution port: the node never meets the system broker's epmd.
  printf 'NODENAME=%s\nDIST_PORT=2%s\n' "$NODE" "$PORT" >"$ROOT/etc/rabbitmq/rabbitmq-env.conf"
}

start() {
  if answers; then
    echo "rabbitmq4: a broker already answers on 127.0.0.1:$PORT"
    return
  fi
  build
  configure
  mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
  in_root rabbitmq-server -detached </dev/null >/dev/null 2>&1 || true
  for _ in $(seq 90); do
    answers && break
    sleep 1
  done
  if ! answers; then
    echo "rabbitmq4: the node did not answer on 127.0.0.1:$PORT within 90 s; its log:" >&2
    tail -n 40 "$ROOT"/var/log/rabbitmq/*.log >&2 2>/dev/null || true
    exit 1
  fi
  echo "rabbitmq4: RabbitMQ $(in_root rabbitmqctl -n $NODE version 2>/dev/null || echo 4.x) answers on 127.0.0.1:$PORT"
}

stop() {
  [[ -d "$ROOT" ]] || return 0
  in_root rabbitmqctl -n $NODE stop >/dev/null 2>&1 || true
}

case "${1:-start}" in
  build) build ;;
  configure) configure ;;
  start) start ;;
  stop) stop ;;
  status) answers ;;
  ctl) shift; in_root rabbitmqctl -n $NODE "$@" ;;
  *) echo "usage: bash scripts/rabbitmq4.sh build|configure|start|stop|status|ctl ..." >&2; exit 2 ;;
esac
