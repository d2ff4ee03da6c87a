#!/usr/bin/env bash
# Make sure the servers and programs the test suite starts for itself are installed.
#
# The tests run a throwaway PostgreSQL cluster (tests/services.py) so that SQL sources are tested
# against a real server, not a mock. That needs the server binaries (initdb, pg_ctl, postgres) and,
# when the tests run as root, the `postgres` system user, because PostgreSQL refuses to run as
# root. The browser tests open the HTML reports in Debian's headless Chromium (/usr/bin/chromium),
# driven by Playwright; Playwright's own browser downloads are not used. The replica tests put
# HAProxy (Debian's `haproxy`, /usr/sbin/haproxy) in front of the servers they start. The stream
# tests run Redis and NATS JetStream (Debian's `redis-server` and `nats-server`). The image
# tests make a Debian base with `mmdebstrap` and build and run images with `buildah`. Safe to run
# any number of times: it installs nothing when everything is already there.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

have_server_binaries() {
    local dir
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir 2>/dev/null || true)"
        if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            return 0
        fi
    fi
    for dir in /usr/lib/postgresql/*/bin; do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            return 0
        fi
    done
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1
}

postgres_ready() {
    have_server_binaries || return 1
    # As root the server is run as the `postgres` user, which the Debian package creates.
    [[ "$(id -u)" -ne 0 ]] || id postgres >/dev/null 2>&1
}

chromium_ready() {
    [[ -x "$CHROMIUM" ]]
}

haproxy_ready() {
    command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]]
}

# The stream tests run throwaway brokers (tests/brokers.py): Redis Streams and NATS JetStream.
redis_ready() {
    command -v redis-server >/dev/null 2>&1
}

nats_ready() {
    command -v nats-server >/dev/null 2>&1 || [[ -x /usr/sbin/nats-server ]]
}

# The image tests (tests/e2e/test_image_cli.py): a base made with mmdebstrap, built with buildah.
images_ready() {
    command -v buildah >/dev/null 2>&1 && command -v mmdebstrap >/dev/null 2>&1
}

missing=()
postgres_ready || missing+=(postgresql)
chromium_ready || missing+=(chromium)
haproxy_ready || missing+=(haproxy)
redis_ready || missing+=(redis-server)
nats_ready || missing+=(nats-server)
images_ready || missing+=(buildah mmdebstrap)

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    if ! postgres_ready; then
        echo "services.sh: the tests need a PostgreSQL server (initdb and pg_ctl), which is not" >&2
        echo "installed, and installing it needs root. Run as root, or install it yourself:" >&2
        echo "    sudo apt-get install -y postgresql" >&2
    fi
    if ! chromium_ready; then
        echo "services.sh: the browser tests need Chromium at $CHROMIUM, which is not" >&2
        echo "installed, and installing it needs root. Run as root, or install it yourself:" >&2
        echo "    sudo apt-get install -y chromium" >&2
    fi
    if ! haproxy_ready; then
        echo "services.sh: the replica tests need HAProxy, which is not installed, and" >&2
        echo "installing it needs root. Run as root, or install it yourself:" >&2
        echo "    sudo apt-get install -y haproxy" >&2
    fi
    if ! redis_ready || ! nats_ready; then
        echo "services.sh: the stream tests need redis-server and nats-server, and installing" >&2
        echo "them needs root. Run as root, or install them yourself:" >&2
        echo "    sudo apt-get install -y redis-server nats-server" >&2
    fi
    if ! images_ready; then
        echo "services.sh: the image tests need buildah and mmdebstrap, and installing them" >&2
        echo "needs root. Run as root, or install them yourself:" >&2
        echo "    sudo apt-get install -y buildah mmdebstrap" >&2
    fi
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    if ! postgres_ready; then
        echo "services.sh: PostgreSQL is missing and this machine has no apt-get;" \
            "install the PostgreSQL server with the system's package manager." >&2
    fi
    if ! chromium_ready; then
        echo "services.sh: Chromium is missing at $CHROMIUM and this machine has no apt-get;" \
            "install Chromium with the system's package manager." >&2
    fi
    if ! haproxy_ready; then
        echo "services.sh: HAProxy is missing and this machine has no apt-get;" \
            "install haproxy with the system's package manager." >&2
    fi
    if ! redis_ready || ! nats_ready; then
        echo "services.sh: redis-server or nats-server is missing and this machine has no" \
            "apt-get; install them with the system's package manager." >&2
    fi
    if ! images_ready; then
        echo "services.sh: buildah or mmdebstrap is missing and this machine has no apt-get;" \
            "install them with the system's package manager." >&2
    fi
    exit 1
fi

echo "services.sh: installing ${missing[*]} for the test suite"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null

if ! postgres_ready; then
    echo "services.sh: PostgreSQL was installed but initdb/pg_ctl or the postgres user" \
        "are still missing" >&2
    exit 1
fi

if ! chromium_ready; then
    echo "services.sh: chromium was installed but $CHROMIUM is still missing" >&2
    exit 1
fi

if ! haproxy_ready; then
    echo "services.sh: haproxy was installed but is still not on PATH nor in /usr/sbin" >&2
    exit 1
fi

if ! redis_ready || ! nats_ready; then
    echo "services.sh: redis-server and nats-server were installed but are still not on PATH" >&2
    exit 1
fi

if ! images_ready; then
    echo "services.sh: buildah and mmdebstrap were installed but are still not on PATH" >&2
    exit 1
fi
