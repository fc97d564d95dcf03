import os
import shutil
import subprocess
import tempfile
import time

import pytest

import plenum

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def plenum_bin():
    if os.environ.get("PLENUM_BIN"):
        return os.environ["PLENUM_BIN"]
    for kind in ("debug", "release"):
        p = os.path.join(REPO, ".build", kind, "plenum")
        if os.path.exists(p):
            return p
    pytest.fail("no plenum executable: build it (swift build) or set PLENUM_BIN")


def wait_for(path, proc=None, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if os.path.exists(path):
            try:
                plenum.connect(path, access="ro").close()
                return
            except plenum.PlenumError:
                pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"store exited: {proc.stderr.read()}")
        time.sleep(0.05)
    raise RuntimeError(f"no store at {path}")


@pytest.fixture
def store(tmp_path):
    """A `plenum store` on a private socket (3 GiB), stopped afterwards."""
    sock = str(tmp_path / "store.sock")
    proc = subprocess.Popen([plenum_bin(), "store", "--socket", sock, "--memory", "3G"], stderr=subprocess.PIPE, text=True)
    wait_for(sock, proc)
    yield sock
    proc.terminate()
    assert proc.wait(30) == 0


@pytest.fixture(scope="module")
def cluster4():
    """`plenum cluster up --nodes 4` in a private directory: yields the node sockets."""
    d = tempfile.mkdtemp(prefix="plenum-pytest-")
    # A node silent for 10 s is dead, and the start may take 2 minutes: a
    # busy machine neither fences a node nor fails the start (its own
    # region names, from the directory, never meet another cluster's).
    subprocess.run([plenum_bin(), "cluster", "up", "--nodes", "4", "--memory", "256M", "--dir", d,
                    "--dead-after-ms", "10000", "--wait", "120"], check=True, stdout=subprocess.DEVNULL)
    try:
        yield [os.path.join(d, f"node{i}.sock") for i in range(4)]
    finally:
        subprocess.run([plenum_bin(), "cluster", "down", "--dir", d], check=False, stdout=subprocess.DEVNULL)
        shutil.rmtree(d, ignore_errors=True)   # its cluster file and logs
