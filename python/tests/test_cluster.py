import numpy as np
import pyarrow as pa

import plenum


def test_objects_of_every_node_are_read_zero_copy_from_any_node(cluster4):
    c0 = plenum.connect(cluster4[0])
    oid = c0.put(b"from node 0 " * 10_000)
    c3 = plenum.connect(cluster4[3], access="ro")
    with c3.get(oid, timeout=60) as b:
        assert bytes(b.data[:12]) == b"from node 0 "
        assert b.location.region != 0, "the bytes are in node 0's memory, mapped by node 3's client"


def test_a_table_spanning_three_nodes_read_from_a_fourth(cluster4):
    c0 = plenum.connect(cluster4[0])
    objects_before = len(c0.list())
    n = 300_000
    t = pa.table({"k": pa.array(np.arange(n, dtype=np.int64)), "s": pa.array([str(i % 97) for i in range(n)])})
    mid = c0.put_table(t, nodes=[0, 1, 2])
    c3 = plenum.connect(cluster4[3], access="ro")
    with c3.table(mid, timeout=60) as got:
        assert got.num_rows == n and got.equals(t)
        # Each batch lies in exactly one other node's mapped region, and the
        # batches cover three of them.
        handles = set()
        for batch in got.to_batches():
            addr = batch.column(0).buffers()[1].address
            owners = [h for h, m in c3._maps.items()
                      if h != 0 and pa.py_buffer(m).address <= addr < pa.py_buffer(m).address + len(m)]
            assert len(owners) == 1, f"a batch at {addr:#x} lies in {owners}"
            handles.add(owners[0])
        assert len(handles) == 3, f"parts come from three other nodes' memory, not {sorted(handles)}"
    c0.delete_table(mid)
    assert not c0.contains(mid)
    assert len(c0.list()) == objects_before, "deleting the manifest deleted every part on every node"
