"""Arrow tables and numpy arrays as objects (SPEC §9.8), zero-copy both ways.

    table object     metadata b"plenum/arrow-stream/1", data: one Arrow IPC stream
                     (schema, record batches, end-of-stream), written in place
    manifest object  metadata b"plenum/arrow-manifest/1", data: UTF-8 JSON
                     {"version": 1, "rows": N, "parts": [{"id": hex, "node": n|null, "rows": r}, …]}
                     every part a table object (of the same schema), possibly on another node
    numpy object     metadata b"plenum/numpy/1" + JSON {"dtype": "<f8", "shape": [..]},
                     data: the array's bytes in C order
"""
import json

from .client import ObjectID
from .errors import PlenumError

TABLE = b"plenum/arrow-stream/1"
MANIFEST = b"plenum/arrow-manifest/1"
NUMPY = b"plenum/numpy/1"


def _pa():
    try:
        import pyarrow as pa
        return pa
    except ImportError as e:
        raise PlenumError("tables need pyarrow: pip install 'plenum[arrow]'") from e


def _write_stream(pa, sink, table):
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def _put_one(client, table, oid, node):
    pa = _pa()
    mock = pa.MockOutputStream()
    _write_stream(pa, mock, table)
    size = mock.size()
    with client.create(oid, size, TABLE, node=node) as obj:
        _write_stream(pa, pa.FixedSizeBufferWriter(pa.py_buffer(obj.data)), table)
    return oid


def put_table(client, table, id=None, nodes=None, parts=None):
    """Writes `table` once, in Arrow IPC format, straight into object memory.
    With `nodes` (a list of node ids) it is split into `parts` record-batch
    objects (default: one per node) placed round-robin on those nodes, plus
    a small manifest object (returned)."""
    oid = ObjectID(id) if id is not None else ObjectID()
    if not nodes and not parts:
        return _put_one(client, table, oid, None)
    nodes = list(nodes or [None])
    k = max(1, parts or len(nodes))
    step = max(1, -(-table.num_rows // k))
    entries, made = [], []
    try:
        for i, start in enumerate(range(0, max(table.num_rows, 1), step)):
            part = table.slice(start, step)
            node = nodes[i % len(nodes)]
            made.append(_put_one(client, part, ObjectID(), node))
            entries.append({"id": made[-1].hex(), "node": node, "rows": part.num_rows})
        manifest = json.dumps({"version": 1, "rows": table.num_rows, "parts": entries}).encode()
        client.put(manifest, id=oid, metadata=MANIFEST)
    except BaseException:
        for p in made:
            try:
                client.delete(p)
            except PlenumError:
                pass
        raise
    return oid


def _read_table(pa, buf):
    if bytes(buf.metadata) != TABLE:
        raise PlenumError(f"object {buf.id.hex()} is not an Arrow table")
    return pa.ipc.open_stream(pa.py_buffer(buf.data)).read_all()


def get_table(client, id, timeout=None):
    """The table, zero-copy: its columns are views into the store's memory
    (each node's, for a spanning table). The references stay held until
    `client.release(id)` (or the end of `with client.table(id)`)."""
    table, held = _get_table(client, id, timeout)
    client._held.setdefault(ObjectID(id), []).extend(held)
    return table


def _get_table(client, id, timeout):
    """The table and the buffers (references) reading it took."""
    pa = _pa()
    oid = ObjectID(id)
    buf = client.get(oid, timeout)
    held = [buf]
    try:
        md = bytes(buf.metadata)
        if md == TABLE:
            table = _read_table(pa, buf)
        elif md == MANIFEST:
            doc = json.loads(bytes(buf.data))
            if doc.get("version") != 1:
                raise PlenumError(f"manifest version {doc.get('version')} is not supported")
            parts = client.get_many([ObjectID(p["id"]) for p in doc["parts"]], timeout)
            if any(p is None for p in parts):
                for p in parts:
                    if p is not None:
                        p.release()
                raise PlenumError(f"a part of table {oid.hex()} is missing")
            held += parts
            tables = [_read_table(pa, p) for p in parts]
            batches = [b for t in tables for b in t.to_batches()]
            table = pa.Table.from_batches(batches, schema=tables[0].schema)
        else:
            raise PlenumError(f"object {oid.hex()} is not an Arrow table or manifest")
    except BaseException:
        for b in held:
            b.release()
        raise
    return table, held


def delete_table(client, id):
    """Deletes a table; for a manifest, every part too."""
    oid = ObjectID(id)
    parts = []
    with client.get(oid, 0) as buf:
        if bytes(buf.metadata) == MANIFEST:
            parts = [ObjectID(p["id"]) for p in json.loads(bytes(buf.data))["parts"]]
    client.delete(oid)
    if parts:
        client.delete(parts)


class HeldTable:
    """`with client.table(id) as t`: releases exactly the references this
    block took, never those of other readers of the same id."""

    def __init__(self, client, oid, timeout):
        self.client, self.id, self.timeout = client, oid, timeout
        self.held = []

    def __enter__(self):
        table, self.held = _get_table(self.client, self.id, self.timeout)
        return table

    def __exit__(self, *exc):
        for b in self.held:
            b.release()
        self.held = []


def put_array(client, array, id=None, node=None):
    import numpy as np
    a = np.ascontiguousarray(array)
    if a.dtype.hasobject:
        raise PlenumError("arrays of Python objects cannot be stored; use a numeric dtype or put_table")
    oid = ObjectID(id) if id is not None else ObjectID()
    header = NUMPY + json.dumps({"dtype": a.dtype.str, "shape": list(a.shape)}).encode()
    with client.create(oid, a.nbytes, header, node=node) as obj:
        if a.nbytes:
            obj.data[:] = memoryview(a).cast("B")
    return oid


def get_array(client, id, timeout=None):
    """A read-only numpy array over the object's memory; its reference is
    held until `client.release(id)`."""
    import numpy as np
    buf = client.get(id, timeout)
    try:
        md = bytes(buf.metadata)
        if not md.startswith(NUMPY):
            raise PlenumError(f"object {buf.id.hex()} is not a numpy array")
        doc = json.loads(md[len(NUMPY):])
        arr = np.frombuffer(buf.data, dtype=np.dtype(doc["dtype"])).reshape(doc["shape"])
    except BaseException:
        buf.release()
        raise
    client._held.setdefault(buf.id, []).append(buf)
    return arr
