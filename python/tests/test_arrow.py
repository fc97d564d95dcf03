import os

import numpy as np
import pyarrow as pa
import pytest

import plenum


def region_range(client, region=0):
    m = client._maps[region]
    b = pa.py_buffer(m)
    return b.address, b.address + b.size


def inside(buffer_address, rng):
    return rng[0] <= buffer_address < rng[1]


def rss_anon():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def sample_table(n=10_000):
    rng = np.random.default_rng(7)
    return pa.table({
        "i": pa.array(np.arange(n, dtype=np.int64)),
        "f": pa.array(rng.random(n)),
        "s": pa.array([f"row-{k}" for k in range(n)]),
        "nested": pa.array([{"a": k, "b": [k, k + 1]} for k in range(n)]),
        "dict": pa.array(["red", "green", "blue", "green"] * (n // 4)).dictionary_encode(),
        "maybe": pa.array([None if k % 7 == 0 else k for k in range(n)], type=pa.int32()),
    })


def test_table_round_trip_nested_and_dictionary_columns_zero_copy(store):
    c = plenum.connect(store)
    t = sample_table()
    oid = c.put_table(t)
    r = plenum.connect(store, access="ro")
    with r.table(oid) as got:
        assert got.equals(t)
        rng = region_range(r)
        for col in got.columns:
            for chunk in col.chunks:
                for buf in chunk.buffers():
                    if buf is not None and buf.size > 0:
                        assert inside(buf.address, rng), "every column buffer lies in the store's region"
        assert r.list()[0].ref_count == 1
    assert r.list()[0].ref_count == 0


def test_numpy_arrays_round_trip_zero_copy(store):
    c = plenum.connect(store)
    for a in [np.arange(1_000_000, dtype=np.float64).reshape(1000, 1000), np.array([], dtype=np.int8),
              np.array([[1, 2], [3, 4]], dtype=np.uint16).T]:
        oid = c.put_array(a)
        got = c.get_array(oid)
        assert got.dtype == a.dtype and got.shape == a.shape and np.array_equal(got, a)
        assert not got.flags.writeable
        if got.size:
            assert inside(got.ctypes.data, region_range(c))
        c.release(oid)
    with pytest.raises(plenum.PlenumError):
        c.put_array(np.array([object()]))


def test_pandas_through_arrow(store):
    pd = pytest.importorskip("pandas")
    c = plenum.connect(store)
    df = pd.DataFrame({"x": range(1000), "y": [str(i) for i in range(1000)]})
    oid = c.put_table(pa.Table.from_pandas(df))
    with c.table(oid) as t:
        assert t.to_pandas().equals(df)


def test_a_one_gigabyte_table_is_read_without_a_copy(store):
    c = plenum.connect(store)
    n = (1 << 30) // 16
    t = pa.table({"a": pa.array(np.arange(n, dtype=np.int64)), "b": pa.array(np.ones(n, dtype=np.float64))})
    oid = c.put_table(t)
    del t
    r = plenum.connect(store, access="ro")
    before = rss_anon()
    with r.table(oid) as got:
        assert got.num_rows == n
        assert got.column("a")[n - 1].as_py() == n - 1
        total = pa.compute.sum(got.column("b")).as_py()   # touches every page of b
        assert total == n
        grew = rss_anon() - before
        assert grew < 64 << 20, f"reading a 1 GiB table grew private memory by {grew} bytes"
        rng = region_range(r)
        assert inside(got.column("a").chunks[0].buffers()[1].address, rng)
    c.delete(oid)


def test_a_with_block_releases_only_its_own_references(store):
    c = plenum.connect(store)
    oid = c.put_table(sample_table(100))
    t1 = c.get_table(oid)
    with c.table(oid) as t2:
        assert c.list()[0].ref_count == 2
        assert t2.num_rows == 100
    assert c.list()[0].ref_count == 1, "the block released its reference, not the earlier reader's"
    assert t1.num_rows == 100
    c.release(oid)
    assert c.list()[0].ref_count == 0
