"""Plasma behaviours a Plasma user can notice, run by Scripts/test-plasma
against Plenum's plasma-store-server and against Plasma 11's own, which must
agree (issue 25, SPEC §11.9). Each test starts its own store through
pyarrow's start_plasma_store, as pyarrow's own suite does."""
import gc

import pyarrow.plasma as plasma
import pytest


def oid(k, tag=0x25):
    return plasma.ObjectID(k.to_bytes(4, "little") + bytes(15) + bytes([tag]))


@pytest.fixture
def store():
    with plasma.start_plasma_store(64 * 1024 * 1024) as (name, proc):
        yield name


def test_a_delete_of_an_object_in_use_is_carried_out_at_its_last_release(store):
    a, b = plasma.connect(store), plasma.connect(store)
    x = oid(1)
    a.put_raw_buffer(b"in use", object_id=x)          # created, sealed, released by a
    held = b.get_buffers([x])                          # b holds a reference
    a.delete([x])                                      # in use: remembered, not carried out
    assert a.contains(x), "deleted while a client still reads it"
    assert held[0].to_pybytes() == b"in use"
    del held
    gc.collect()                                       # b's buffer goes: b releases
    assert not b.contains(x), "the delete was not carried out at the last release"
    assert b.get_buffers([x], timeout_ms=0) == [None], "the deleted object is gone"


def test_a_delete_of_an_unsealed_object_is_carried_out_once_its_creator_releases_it(store):
    a, b = plasma.connect(store), plasma.connect(store)
    x = oid(2)
    buf = a.create(x, 8)
    b.delete([x])                                      # not sealed: remembered
    assert not b.contains(x)                           # unsealed objects are not "contained"
    a.seal(x)
    assert b.contains(x), "sealed, and still held by its creator"
    del buf
    gc.collect()                                       # the creator releases it
    assert not a.contains(x), "the delete was not carried out at the creator's release"


def test_a_delete_of_an_object_nobody_holds_is_carried_out_at_once(store):
    a = plasma.connect(store)
    x = oid(3)
    a.put_raw_buffer(b"free", object_id=x)
    a.delete([x])
    assert not a.contains(x)
    a.put_raw_buffer(b"again", object_id=x)            # the id can be used again
    assert a.get_buffers([x])[0].to_pybytes() == b"again"


def test_a_get_of_more_than_4096_ids_is_served(store):
    c = plasma.connect(store)
    ids = [oid(k, tag=0x26) for k in range(5000)]
    for k in (0, 4095, 4096, 4999):
        c.put_raw_buffer(k.to_bytes(2, "little"), object_id=ids[k])
    bufs = c.get_buffers(ids, timeout_ms=0)
    assert len(bufs) == 5000
    for k, b in enumerate(bufs):
        if k in (0, 4095, 4096, 4999):
            assert b is not None and b.to_pybytes() == k.to_bytes(2, "little")
        else:
            assert b is None
