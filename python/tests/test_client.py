import threading

import pytest

import plenum


def test_bytes_round_trip_zero_copy_and_release(store):
    c = plenum.connect(store)
    data = bytes(range(256)) * 1000
    oid = c.put(data, metadata=b"meta")
    assert c.contains(oid)
    with c.get(oid) as buf:
        assert bytes(buf.data) == data and bytes(buf.metadata) == b"meta"
        assert buf.data.readonly
        assert c.list()[0].ref_count == 1
    assert c.list()[0].ref_count == 0, "the with block released the reference"
    with pytest.raises(plenum.Released):
        buf.data
    small = c.put(b"tiny")  # travels whole (createAndSeal)
    assert bytes(c.get(small).data) == b"tiny"


def test_errors_are_named_after_the_store_codes(store):
    c = plenum.connect(store)
    oid = c.put(b"x" * 100_000, id=plenum.ObjectID(b"\x01" * 20))
    with pytest.raises(plenum.ObjectExists) as e:
        c.put(b"y" * 100_000, id=oid)
    assert e.value.code == 1
    with pytest.raises(plenum.ObjectNotFound):
        c.delete(plenum.ObjectID(b"\x02" * 20))
    with c.get(oid):
        with pytest.raises(plenum.ObjectInUse):
            c.delete(oid)
    with pytest.raises(plenum.NoReference):
        c.release(oid)
    with pytest.raises(plenum.Timeout):
        c.get(plenum.ObjectID(b"\x03" * 20), timeout=0.05)
    with pytest.raises(plenum.TooLarge):
        c.create(plenum.ObjectID(), 1 << 40)
    c.delete(oid)
    assert not c.contains(oid)


def test_readers_map_read_only_and_cannot_create(store):
    w = plenum.connect(store)
    oid = w.put(b"shared" * 10_000)
    r = plenum.connect(store, access="ro")
    with r.get(oid) as b:
        assert bytes(b.data[:6]) == b"shared"
    with pytest.raises(plenum.ReadOnly):
        r.put(b"z" * 100_000)


def test_verify_detects_bytes_changed_after_seal(store):
    c = plenum.connect(store)
    oid = c.put(b"a" * 200_000)
    assert c.verify([oid]) == [None]
    with c.get(oid) as b:
        loc = b.location
    c._maps[0][loc.offset + 1000] = ord("b")  # a writer breaks the contract
    (err,) = c.verify([oid])
    assert isinstance(err, plenum.DigestMismatch)


def test_subscribe_iterates_seals_and_deletes(store):
    sub = plenum.connect(store)
    events = sub.subscribe()
    c = plenum.connect(store)
    got = []
    t = threading.Thread(target=lambda: got.extend([next(events), next(events)]))
    t.start()
    oid = c.put(b"n" * 70_000)
    c.delete(oid)
    t.join(30)
    assert [(n.kind, n.id) for n in got] == [("sealed", oid), ("deleted", oid)]


def test_many_requests_in_flight_each_get_their_own_reply(store):
    """SPEC §9.6 "Requests in flight": contains_many pipelines lookups;
    get_many takes any number of ids (requests of ≤ 4096, several in
    flight), every reply to its own request."""
    c = plenum.connect(store)
    ids = [c.put(bytes([i % 251])) for i in range(5000)]
    absent = [plenum.ObjectID.from_random() for _ in range(100)]
    assert c.contains_many(ids[:300] + absent, window=16) == [True] * 300 + [False] * 100
    bufs = c.get_many(ids + absent[:3], timeout=0, window=2)
    assert len(bufs) == 5003 and bufs[5000:] == [None] * 3
    assert all(bytes(b.data) == bytes([i % 251]) for i, b in enumerate(bufs[:5000]))
    assert sum(row.ref_count for row in c.list()) == 5000
    for b in bufs[:5000]:
        b.release()
    assert sum(row.ref_count for row in c.list()) == 0
    # A call between submissions gets its own reply; the others keep theirs.
    assert c.contains_many([ids[0], absent[0]], window=1) == [True, False]
    with pytest.raises(plenum.PlenumError):
        c._wait(10 ** 9)
