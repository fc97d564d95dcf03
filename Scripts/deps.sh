# Sourced by Scripts/*: installs what Plenum needs on a fresh Debian machine
# (run as root) and puts Swift on PATH. Idempotent and quiet when all is there.
export PATH="$PATH:/opt/swift/usr/bin"

plenum_missing_packages() {
    local missing=()
    [ -f /usr/include/liburing.h ] || missing+=(liburing-dev)
    [ -f /usr/include/numa.h ] || missing+=(libnuma-dev)
    python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)   # the unit template's test (Deploy/)
    command -v tmux >/dev/null 2>&1 || missing+=(tmux)                 # `plenum top`'s test, in a real terminal
    echo "${missing[@]:-}"
}

plenum_install_deps() {
    local missing
    missing=$(plenum_missing_packages)
    if [ -n "$missing" ]; then
        echo "installing: $missing" >&2
        if [ "$(id -u)" -ne 0 ]; then
            echo "error: missing $missing and not root; run: sudo apt-get install -y $missing" >&2
            exit 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq $missing >/dev/null
    fi
    if ! command -v swift >/dev/null 2>&1; then
        echo "error: swift not found (expected /opt/swift/usr/bin/swift); install Swift 6.x" >&2
        exit 1
    fi
    if [ ! -d /dev/shm ] || [ ! -w /dev/shm ]; then
        echo "error: /dev/shm is missing or not writable; regions live there by default" >&2
        exit 1
    fi
}
