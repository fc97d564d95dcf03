"""put_table/get_table of a 1 GiB Arrow table through Plenum, beside the same
table written to and read from an Arrow IPC file in /dev/shm and pickled, in
one run (a benchmark, not a test). Medians of --repeats, ratios to Plenum.

    python python/bench.py [--gib 1] [--repeats 5] [--json] [--plenum .build/release/plenum]
"""
import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import plenum


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--plenum", default=None, help="plenum executable (default: .build/release, else .build/debug)")
    a = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    exe = a.plenum or next(p for p in (f"{repo}/.build/release/plenum", f"{repo}/.build/debug/plenum") if os.path.exists(p))
    n = int(a.gib * (1 << 30)) // 16
    table = pa.table({"a": pa.array(np.arange(n, dtype=np.int64)), "b": pa.array(np.ones(n, dtype=np.float64))})
    tmp = tempfile.mkdtemp(prefix="plenum-pybench-", dir="/tmp")
    sock = f"{tmp}/store.sock"
    store = subprocess.Popen([exe, "store", "--socket", sock, "--memory", f"{int(a.gib * 3 + 1)}G"])
    try:
        for _ in range(400):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        c = plenum.connect(sock)
        rows = {k: {"put": [], "get": [], "get+scan": []} for k in ("plenum", "ipc-file", "pickle")}
        ipc_path = f"/dev/shm/plenum-pybench-{os.getpid()}.arrow"
        for _ in range(a.repeats):
            # Plenum: write once into object memory; read zero-copy.
            t, oid = timed(lambda: c.put_table(table))
            rows["plenum"]["put"].append(t)
            t, got = timed(lambda: c.get_table(oid))
            rows["plenum"]["get"].append(t)
            c.release(oid)
            t, _ = timed(lambda: pc.sum(c.get_table(oid).column("b")))
            rows["plenum"]["get+scan"].append(t)
            c.release(oid)
            c.delete(oid)
            del got
            # Arrow IPC file in /dev/shm: write; read memory-mapped (zero-copy too).
            def write_file():
                with pa.OSFile(ipc_path, "wb") as f, pa.ipc.new_file(f, table.schema) as w:
                    w.write_table(table)
            rows["ipc-file"]["put"].append(timed(write_file)[0])
            rows["ipc-file"]["get"].append(timed(lambda: pa.ipc.open_file(pa.memory_map(ipc_path)).read_all())[0])
            rows["ipc-file"]["get+scan"].append(timed(lambda: pc.sum(pa.ipc.open_file(pa.memory_map(ipc_path)).read_all().column("b")))[0])
            os.unlink(ipc_path)
            # pickle: serialise to bytes; load (copies).
            t, blob = timed(lambda: pickle.dumps(table, protocol=5))
            rows["pickle"]["put"].append(t)
            rows["pickle"]["get"].append(timed(lambda: pickle.loads(blob))[0])
            rows["pickle"]["get+scan"].append(timed(lambda: pc.sum(pickle.loads(blob).column("b")))[0])
            del blob
        med = {k: {op: statistics.median(v) for op, v in ops.items()} for k, ops in rows.items()}
        doc = {"gib": a.gib, "rows": n, "repeats": a.repeats, "pyarrow": pa.__version__, "median_seconds": med,
               "ratio_to_plenum": {k: {op: med[k][op] / med["plenum"][op] for op in med[k]} for k in med}}
        if a.json:
            print(json.dumps(doc, sort_keys=True))
        else:
            print(f"{a.gib:g} GiB table ({n} rows), median of {a.repeats}, pyarrow {pa.__version__}")
            print(f"{'':10} {'put':>18} {'get':>18} {'get+scan':>18}")
            for k in med:
                cells = [f"{med[k][op] * 1000:9.2f} ms ({doc['ratio_to_plenum'][k][op]:5.1f}×)" for op in ("put", "get", "get+scan")]
                print(f"{k:10} " + " ".join(f"{x:>18}" for x in cells))
            print("(× = time relative to Plenum in this run; get = open the table, get+scan = open and sum a column)")
    finally:
        store.terminate()
        store.wait(30)


if __name__ == "__main__":
    sys.exit(main())
