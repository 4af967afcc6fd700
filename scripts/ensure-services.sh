#!/usr/bin/env bash
# Start PostgreSQL and RabbitMQ when they are not running (CI and fresh machines), then wait
# until both accept connections. Safe to run when they are already up.
set -uo pipefail

wait_for() {  # wait_for NAME SECONDS COMMAND...
  local name=$1 seconds=$2; shift 2
  for _ in $(seq "$seconds"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  echo "ensure-services: $name did not come up within ${seconds}s" >&2
  return 1
}

if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "ensure-services: starting PostgreSQL"
  for version in $(ls /etc/postgresql 2>/dev/null); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  wait_for PostgreSQL 60 pg_isready -q -h 127.0.0.1 -p 5432 || exit 1
fi

if command -v rabbitmqctl >/dev/null 2>&1; then
  if ! timeout 20 rabbitmqctl -q status >/dev/null 2>&1; then
    echo "ensure-services: starting RabbitMQ"
    rabbitmq-server -detached || true
    sleep 3
  fi
  timeout 120 rabbitmqctl -q await_startup >/dev/null 2>&1 || {
    echo "ensure-services: RabbitMQ did not start" >&2
    exit 1
  }
fi
echo "ensure-services: PostgreSQL and RabbitMQ are up"
