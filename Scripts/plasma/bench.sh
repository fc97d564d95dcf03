# Sourced by the Plasma benchmark scripts (Scripts/bench-vs-plasma,
# Scripts/plasma-client-breakdown, Scripts/plasma-read-ab), from the
# repository root:
#
#   plasma_setup                 the pyarrow 11 benchmark venv (pinned,
#                                Scripts/constraints/bench-plasma.txt) and g++;
#                                sets $pa (the wheel's package directory,
#                                which holds libplasma and plasma-store-server),
#                                $server and $client (taskset on CPU 0 and 1
#                                when there are 2+ CPUs, else empty), $pinned
#   plasma_compile NAME          builds .build-plasma/NAME from
#                                Scripts/plasma/NAME.cc against that wheel,
#                                when it or bench_util.h is newer
#   plasma_servers DIR MEMORY [STORE_ARG…]
#                                Plasma's server at DIR/plasma.sock and one
#                                Plenum store, Plasma's clients at
#                                DIR/plenum.sock and Plenum's at
#                                DIR/plenum.sock.native, both on $server, each
#                                with MEMORY bytes; pids in DIR/*.pid (the
#                                caller's trap kills them); returns once both
#                                Plasma sockets exist

plasma_setup() {
    command -v g++ >/dev/null || { apt-get update -qq && apt-get install -y -qq g++ >/dev/null; }
    . Scripts/venv.sh
    local venv
    venv=$(plenum_venv .build-venv-plasma Scripts/constraints/bench-plasma.txt pyarrow numpy)
    pa=$("$venv/bin/python" -c 'import os, pyarrow; print(os.path.dirname(pyarrow.__file__))')
    server="" client="" pinned=0
    if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then server="taskset -c 0" client="taskset -c 1" pinned=1; fi
}

plasma_compile() {
    local src=Scripts/plasma/$1.cc out=.build-plasma/$1
    mkdir -p .build-plasma
    if [ ! -x "$out" ] || [ "$src" -nt "$out" ] || [ Scripts/plasma/bench_util.h -nt "$out" ]; then
        # The pyarrow 11 wheel's C++ libraries use the old C++ ABI.
        g++ -O2 -std=c++17 -w -D_GLIBCXX_USE_CXX11_ABI=0 -I"$pa/include" "$src" \
            -o "$out" -L"$pa" -l:libplasma.so.1100 -l:libarrow.so.1100 -Wl,-rpath,"$pa" >&2
    fi
}

plasma_servers() {
    local d=$1 memory=$2
    shift 2
    $server "$pa/plasma-store-server" -m "$memory" -s "$d/plasma.sock" >/dev/null 2>&1 &
    echo $! > "$d/plasma.pid"
    $server .build/release/plenum store --socket "$d/plenum.sock.native" --memory "$memory" --plasma-socket "$d/plenum.sock" "$@" >/dev/null 2>&1 &
    echo $! > "$d/plenum.pid"
    for _ in $(seq 300); do [ -S "$d/plasma.sock" ] && [ -S "$d/plenum.sock" ] && break; sleep 0.1; done
    [ -S "$d/plasma.sock" ] && [ -S "$d/plenum.sock" ] || { echo "a store did not start" >&2; return 1; }
}
