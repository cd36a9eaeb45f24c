#!/usr/bin/env bash
# Installs what Tolk needs on a Debian or Ubuntu machine; safe to run again.
#   scripts/setup.sh          the service: a virtual environment with Tolk in it
#   scripts/setup.sh --test   also the test tools: dev packages, Chromium, coturn, nginx, and the
#                             pages' tools from npm (prettier, eslint, axe-core)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "setup: Tolk needs Python 3.11 or newer (found $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
# uv installs exactly what uv.lock holds; it lives in a virtual environment of its own,
# so that syncing .venv never removes the tool doing the syncing.
UV_VERSION=0.13.9
if [ ! -x .uv/bin/uv ] || [ "$(.uv/bin/uv --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  rm -rf .uv
  "$PYTHON" -m venv .uv 2>/dev/null || { apt_install python3-venv; rm -rf .uv; "$PYTHON" -m venv .uv; }
  .uv/bin/python -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
fi

# --locked: fail instead of resolving again when pyproject.toml and uv.lock disagree.
# The service alone keeps whatever test tools an earlier `make test` installed (--inexact).
# Bytecode compiled at install, as pip does: otherwise the first start of every process
# (the demo, the test servers) compiles the whole dependency tree.
export UV_PROJECT_ENVIRONMENT=.venv UV_PYTHON="$PYTHON" UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1
if [ $want_test = 1 ]; then
  .uv/bin/uv sync --quiet --locked --extra dev
else
  .uv/bin/uv sync --quiet --locked --inexact
fi

if [ $want_test = 1 ]; then
  # nginx and openssl: the deployment test runs deploy/nginx/tolk.conf (a private nginx of
  # its own, never the system's) with a certificate it makes.
  # fonts-noto-core: Chromium here has only DejaVu, which has no Ethiopic (Tigrinya's ትግርኛ
  # showed as empty boxes in the screenshots); Noto covers every script of the roster.
  apt_install chromium chromium-driver coturn sqlite3 nginx openssl fonts-noto-core
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  # The pages' formatter and linter (`make check`) and axe-core (browser tests), exactly as
  # package-lock.json holds them; installed again only when the lock has changed.
  if ! cmp -s package-lock.json node_modules/.tolk-installed-lock; then
    echo "setup: installing the pages' tools (prettier, eslint, axe-core) from npm"
    npm ci --silent --no-audit --no-fund
    cp package-lock.json node_modules/.tolk-installed-lock
  fi
fi
