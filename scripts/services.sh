#!/usr/bin/env bash
# Make sure what the tests need is here: PostgreSQL and Redis on 127.0.0.1, and Debian's Chromium.
# Starts the services if they are down; fails with a clear message where it cannot.
set -euo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
  echo "PostgreSQL is down; starting it"
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  for _ in $(seq 30); do pg_up && break; sleep 1; done
  pg_up || { echo "ERROR: PostgreSQL is not reachable on 127.0.0.1:5432 and could not be started." >&2; exit 1; }
fi

if ! redis_up; then
  echo "Redis is down; starting it"
  if command -v redis-server >/dev/null; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  fi
  for _ in $(seq 30); do redis_up && break; sleep 1; done
  redis_up || { echo "ERROR: Redis is not reachable on 127.0.0.1:6379 and could not be started." >&2; exit 1; }
fi

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "Installing Debian's chromium for the browser tests"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
fi
echo "services: PostgreSQL and Redis up; chromium at $(command -v chromium)"
