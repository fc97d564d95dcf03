# Sourced by Scripts/*: private Python venvs with pinned packages.
#
# plenum_venv DIR CONSTRAINTS SPEC…  creates (once) a venv at DIR-<hash of
# CONSTRAINTS> and installs SPEC… with PIP_CONSTRAINT=CONSTRAINTS, so every
# package — dependencies and build backends included — gets the exact
# version the constraints file names; prints the venv's path. A venv is
# reused only if a previous install into it finished (the .plenum-installed
# marker) from the same constraints (the hash in its name): editing a pin
# builds a new venv instead of trusting an old one.
plenum_venv() {
    local base=$1 constraints=$2; shift 2
    local hash venv py
    hash=$(cksum < "$constraints" | cut -d' ' -f1)
    venv=$base-$hash
    if [ ! -f "$venv/.plenum-installed" ]; then
        py=${PLENUM_PYTHON:-python3}
        rm -rf "$venv"
        "$py" -m venv "$venv" >&2
        PIP_CONSTRAINT=$(realpath "$constraints") "$venv/bin/pip" install -q --disable-pip-version-check "$@" >&2
        touch "$venv/.plenum-installed"
    fi
    echo "$venv"
}
