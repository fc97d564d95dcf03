"""A pure-Python client of a Plenum store (SPEC §9): the Unix socket
protocol, the region's descriptor (SCM_RIGHTS) mapped with mmap, and
object bytes read and written in place — zero-copy.

This client flushes no cache lines itself: it is for stores whose region
is coherent with this process (a store on the same host, /dev/shm). Objects
in a peer's memory are checked by the store before it grants them (SPEC
§10.8); the bytes this client seals carry their CRC32C digest.
"""
import mmap
import os
import socket
import struct
from collections import namedtuple

import crc32c as _crc

from . import _wire as w
from .errors import (ConnectionClosed, PlenumError, ReadOnly, Released, Timeout, from_code)

DEFAULT_SOCKET = f"/tmp/plenum-{os.getuid()}.sock"
SMALL = 64 * 1024  # objects up to this many bytes travel whole in createAndSeal


class ObjectID(bytes):
    """A 20-byte object id (Plasma's), printed as 40 hex digits."""

    def __new__(cls, value=None):
        if value is None:
            value = os.urandom(20)
        if isinstance(value, str):
            value = bytes.fromhex(value)
        value = bytes(value)
        if len(value) != 20:
            raise ValueError("object ids are 20 bytes (40 hex digits)")
        return bytes.__new__(cls, value)

    @classmethod
    def from_random(cls):
        return cls()

    def hex(self):
        return bytes.hex(self)

    def __repr__(self):
        return f"ObjectID({self.hex()})"


Notification = namedtuple("Notification", "kind id location")
ObjectInfo = namedtuple("ObjectInfo", "id location sealed ref_count created_ns construct_ns digest")


def _digest(view):
    return _crc.crc32c(view)


class Buffer:
    """A read-only, zero-copy view of a sealed object, valid until released.

    `data` and `metadata` are memoryviews into the mapped region; use the
    buffer as a context manager to release the reference when done."""

    def __init__(self, client, oid, location, data, metadata):
        self.client, self.id, self.location = client, oid, location
        self._data, self._metadata = data, metadata
        self.released = False

    @property
    def data(self):
        if self.released:
            raise Released(f"object {self.id.hex()} was released: get it again to read it")
        return self._data

    @property
    def metadata(self):
        if self.released:
            raise Released(f"object {self.id.hex()} was released: get it again to read it")
        return self._metadata

    def release(self):
        if not self.released:
            self.released = True
            self.client._release_ref(self.id)

    def __len__(self):
        return self.location.data_size

    def __bytes__(self):
        return bytes(self.data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


class WritableObject:
    """A created, unsealed object: write `data` (and `metadata`), then `seal()`."""

    def __init__(self, client, oid, location, view):
        self.client, self.id, self.location = client, oid, location
        self.view = view
        self.data = view[:location.data_size]
        self.metadata = view[location.data_size:]
        self.done = False

    def seal(self):
        self.client._call_ok(w.SEAL, bytes(self.id) + struct.pack("<Q", _digest(self.view)), w.SEALED)
        self.done = True

    def abort(self):
        if not self.done:
            self.done = True
            self.client._call_ok(w.ABORT, bytes(self.id), w.ABORTED)

    def __enter__(self):
        return self

    def __exit__(self, kind, *rest):
        if kind is not None:
            self.abort()
        elif not self.done:
            self.seal()


class Client:
    """A connection to one store. `access="ro"` maps every region read-only
    and may not create; `"rw"` (default) asks the store for write access."""

    def __init__(self, socket_path=None, access="rw"):
        if access not in ("rw", "ro"):
            raise ValueError("access is 'rw' or 'ro'")
        self.access = access
        self.socket_path = socket_path or DEFAULT_SOCKET
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._input = bytearray()
        self._fds = []
        self._next = 1
        self._inflight = set()   # request ids sent by _submit, not yet answered
        self._completed = {}     # request id -> (reply kind, reader), not yet asked for
        self._notifications = []
        self._maps = {}
        self._held = {}
        try:
            self._sock.connect(self.socket_path)
        except OSError as e:
            self._sock.close()
            raise PlenumError(f"cannot reach the store at {self.socket_path}: {e}; is `plenum store` running?") from e
        try:
            self._greet()
        except BaseException:
            self.close()
            raise

    def _greet(self):
        access = self.access
        kind, _, r = w.open_frame(self._read_raw())
        if kind != w.HELLO:
            raise PlenumError(f"expected the store's greeting, got type 0x{kind:x}")
        version = r.u32()
        if version != w.HELLO_VERSION:
            raise PlenumError(f"store speaks protocol version {version}, this client {w.HELLO_VERSION}")
        self.region_size, self.line_size, self.client_id = r.size(), r.size(), r.u64()
        if not self._fds:
            raise PlenumError("no region descriptor in the greeting")
        fd = self._fds.pop(0)
        if access == "rw":
            os.close(fd)
            self._send(w.frame(w.WRITE_ACCESS, 1 << 63))
            kind, _, r = w.open_frame(self._read_raw())
            if kind == w.ERROR:
                raise from_code(r.u16(), r.text())
            if kind != w.WRITE_GRANTED or not self._fds:
                raise PlenumError("write access granted without a descriptor")
            fd = self._fds.pop(0)
        try:
            self._maps[0] = self._map(fd, self.region_size)
        finally:
            os.close(fd)

    # -- plumbing -------------------------------------------------------------

    def _map(self, fd, size):
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if self.access == "rw" else 0)
        return mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=prot)

    def _mapping(self, region):
        if region not in self._maps:
            self._refresh_regions()
        if region not in self._maps:
            raise PlenumError(f"the store named region {region}, which it does not pass")
        return self._maps[region]

    def _send(self, data):
        try:
            self._sock.sendall(data)
        except OSError as e:
            raise ConnectionClosed(f"the store closed the connection: {e}") from e

    def _read_raw(self):
        while True:
            n = w.complete(self._input)
            if n is not None:
                f = bytes(self._input[:n])
                del self._input[:n]
                return f
            data, fds, _, _ = socket.recv_fds(self._sock, 1 << 16, 64, socket.MSG_CMSG_CLOEXEC)
            self._fds.extend(fds)
            if not data:
                raise ConnectionClosed("the store closed the connection")
            self._input += data

    def _rid(self):
        rid = self._next
        self._next += 1
        return rid

    def _exchange(self, kind, body=b""):
        """Sends a request; returns (reply kind, reader) of its reply."""
        return self._wait(self._submit(kind, body))

    def _submit(self, kind, body=b""):
        """Sends a request without waiting; its reply is taken by _wait
        (replies come in the order the store completes them, SPEC §9.6
        "Requests in flight")."""
        rid = self._rid()
        self._send(w.frame(kind, rid, body))
        self._inflight.add(rid)
        return rid

    def _wait(self, rid):
        """(reply kind, reader) of request `rid`; replies to other requests
        in flight that come first are kept, notifications queued."""
        while rid not in self._completed:
            if rid not in self._inflight:
                raise PlenumError(f"request {rid} is not in flight")
            k, got, r = w.open_frame(self._read_raw())
            if k in (w.NOTIFY_SEALED, w.NOTIFY_DELETED) and got == 0:
                self._notifications.append(self._notification(k, r))
            elif got in self._inflight:
                self._inflight.discard(got)
                self._completed[got] = (k, r)
        k, r = self._completed.pop(rid)
        if k == w.ERROR:
            raise from_code(r.u16(), r.text())
        return k, r

    def _pipelined(self, requests, window):
        """(kind, reader) per (kind, body) request, in order, with at most
        `window` requests in flight."""
        if window < 1:
            raise ValueError("window must be at least 1")
        rids, out = [], []
        for kind, body in requests:
            if len(rids) - len(out) == window:
                out.append(self._wait(rids[len(out)]))
            rids.append(self._submit(kind, body))
        while len(out) < len(rids):
            out.append(self._wait(rids[len(out)]))
        return out

    def _call_ok(self, kind, body, expect):
        k, r = self._exchange(kind, body)
        if k != expect:
            raise PlenumError(f"unexpected reply type 0x{k:x}")
        return r

    @staticmethod
    def _notification(kind, r):
        oid = ObjectID(r.id())
        return Notification("sealed", oid, r.location()) if kind == w.NOTIFY_SEALED else Notification("deleted", oid, None)

    def _refresh_regions(self):
        r = self._call_ok(w.REGIONS, b"", w.REGIONS_REPLY)
        n = r.u32()
        table = [(r.size(), r.u32(), r.size(), r.size()) for _ in range(n)]
        mapped = [t for t in table if t[2] > 0 and t[0] != 0]
        if len(self._fds) < len(mapped):
            raise PlenumError("region table without its descriptors")
        fds = self._fds[:len(mapped)]
        del self._fds[:len(mapped)]
        try:
            for (handle, _node, size, _line), fd in zip(mapped, fds):
                if handle not in self._maps:
                    self._maps[handle] = self._map(fd, size)
        finally:
            for fd in fds:
                os.close(fd)

    def _view(self, loc):
        m = self._mapping(loc.region)
        if loc.end > len(m):
            raise PlenumError(f"the store named bytes outside region {loc.region}")
        return memoryview(m)[loc.offset:loc.end]

    # -- the API ----------------------------------------------------------------

    def create(self, oid, size, metadata=b"", node=None):
        """Creates an object of `size` data bytes (in node `node`'s memory on
        a cluster); returns a WritableObject to fill and seal."""
        if self.access != "rw":
            raise ReadOnly("this client connected read-only: connect with access='rw' to create objects")
        oid = ObjectID(oid)
        metadata = bytes(metadata)
        if node is None:
            r = self._call_ok(w.CREATE, bytes(oid) + struct.pack("<qq", size, len(metadata)), w.CREATED)
        else:
            r = self._call_ok(w.CREATE_ON, bytes(oid) + struct.pack("<qqq", size, len(metadata), node), w.CREATED)
        loc = r.location()
        obj = WritableObject(self, oid, loc, self._view(loc))
        obj.metadata[:] = metadata
        return obj

    def put(self, data, id=None, metadata=b"", node=None):
        """Stores a bytes-like object as a sealed object; returns its id."""
        oid = ObjectID(id) if id is not None else ObjectID()
        view = memoryview(data).cast("B") if not isinstance(data, (bytes, bytearray)) else memoryview(data)
        metadata = bytes(metadata)
        if node is None and len(view) + len(metadata) <= SMALL and self.access == "rw":
            body = struct.pack("<I", 1) + bytes(oid) + struct.pack("<I", len(view)) + bytes(view) \
                + struct.pack("<I", len(metadata)) + metadata
            r = self._call_ok(0x0D, body, 0x8D)
            res = w.per_object(r)
            if res and res[0] is not None:
                raise from_code(*res[0])
            return oid
        with self.create(oid, len(view), metadata, node=node) as obj:
            obj.data[:] = view
        return oid

    def get_many(self, ids, timeout=None, window=8):
        """A Buffer (or None when not sealed in time) per id. `timeout` in
        seconds; None waits forever, 0 polls. Any number of ids: requests of
        up to 4096 ids each, `window` of them in flight at once; the store
        looks up ids homed on different nodes in parallel."""
        ms = -1 if timeout is None else int(timeout * 1000)
        ids = [ObjectID(i) for i in ids]
        chunks = [ids[i:i + w.MAX_IDS] for i in range(0, len(ids), w.MAX_IDS)] or [[]]
        out = []
        try:
            replies = self._pipelined([(w.GET, struct.pack("<q", ms) + w.ids(c)) for c in chunks], window)
            for chunk, (k, r) in zip(chunks, replies):
                if k != w.OBJECTS:
                    raise PlenumError(f"unexpected reply type 0x{k:x}")
                if r.u32() != len(chunk):
                    raise PlenumError("get: wrong number of results")
                for oid in chunk:
                    if r.u8() != 1:
                        out.append(None)
                        continue
                    loc = r.location()
                    v = self._view(loc)
                    if self.access == "rw":
                        v = v.toreadonly()
                    out.append(Buffer(self, oid, loc, v[:loc.data_size], v[loc.data_size:]))
        except BaseException:
            # A bad location or reply: give back the references handed out so far.
            for b in out:
                if b is not None:
                    b.release()
            raise
        return out

    def contains_many(self, ids, window=64):
        """`contains` of every id, `window` lookups in flight at once."""
        replies = self._pipelined([(w.CONTAINS, bytes(ObjectID(i))) for i in ids], window)
        result = []
        for k, r in replies:
            if k != w.CONTAINS_REPLY:
                raise PlenumError(f"unexpected reply type 0x{k:x}")
            result.append(r.u8() == 1)
        return result

    def get(self, id, timeout=None):
        """A zero-copy Buffer of a sealed object (use it with `with` to release)."""
        (b,) = self.get_many([id], timeout)
        if b is None:
            raise Timeout(f"object {ObjectID(id).hex()} was not sealed within {timeout} s")
        return b

    def release(self, id):
        """Releases a reference to `id`; for a table or array read with
        `get_table`/`get_array`, every reference that read took."""
        oid = ObjectID(id)
        if oid in self._held:
            return self.release_table(oid)
        self._release_ref(oid)

    def _release_ref(self, oid):
        self._call_ok(w.RELEASE, bytes(oid), w.RELEASED)

    def contains(self, id):
        return self._call_ok(w.CONTAINS, bytes(ObjectID(id)), w.CONTAINS_REPLY).u8() == 1

    def delete(self, ids):
        """Deletes one id or a list; raises the first failure."""
        single = isinstance(ids, (bytes, str))
        ids = [ObjectID(ids)] if single else [ObjectID(i) for i in ids]
        for res in w.per_object(self._call_ok(w.DELETE, w.ids(ids), w.DELETED)):
            if res is not None:
                raise from_code(*res)

    def list(self):
        r = self._call_ok(w.LIST, b"", w.LIST_REPLY)
        rows = []
        for _ in range(r.u32()):
            oid, loc, sealed, refs = ObjectID(r.id()), r.location(), r.u8() == 1, r.i64()
            created, construct, digest = r.u64(), r.u64(), r.u64()
            rows.append(ObjectInfo(oid, loc, sealed, refs, created, None if construct == (1 << 64) - 1 else construct,
                                   digest if sealed else None))
        return rows

    def verify(self, ids):
        """Per id: None if its bytes match the digest taken at seal, else the error."""
        ids = [ObjectID(i) for i in ids]
        return [None if x is None else from_code(*x) for x in w.per_object(self._call_ok(w.VERIFY, w.ids(ids), w.VERIFIED))]

    def stats(self):
        r = self._call_ok(w.STATS, b"", w.STATS_REPLY)
        names = ["capacity", "used", "objects", "sealed", "clients", "evictions", "evicted_bytes", "free_blocks", "largest_free"]
        s = {n: r.i64() for n in names}
        s["fragmentation"] = struct.unpack("<d", struct.pack("<Q", r.u64()))[0]
        return s

    def subscribe(self):
        """An iterator of Notification(kind, id, location) for seals and deletes."""
        self._call_ok(w.SUBSCRIBE, b"", w.SUBSCRIBED)   # now, not at the first next()
        return self._events()

    def _events(self):
        while True:
            if self._notifications:
                yield self._notifications.pop(0)
                continue
            k, rid, r = w.open_frame(self._read_raw())
            if rid == 0 and k in (w.NOTIFY_SEALED, w.NOTIFY_DELETED):
                yield self._notification(k, r)

    def close(self):
        for f in self._fds:
            os.close(f)
        self._fds = []
        try:
            self._sock.close()
        finally:
            for m in self._maps.values():
                try:
                    m.close()
                except BufferError:
                    pass  # views still exported: the mapping lives until they go

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # Arrow and numpy (plenum.arrow)
    def put_table(self, table, id=None, nodes=None, parts=None):
        from . import arrow
        return arrow.put_table(self, table, id=id, nodes=nodes, parts=parts)

    def get_table(self, id, timeout=None):
        from . import arrow
        return arrow.get_table(self, id, timeout=timeout)

    def put_array(self, array, id=None, node=None):
        from . import arrow
        return arrow.put_array(self, array, id=id, node=node)

    def get_array(self, id, timeout=None):
        from . import arrow
        return arrow.get_array(self, id, timeout=timeout)

    def delete_table(self, id):
        from . import arrow
        return arrow.delete_table(self, id)

    def release_table(self, id):
        """Releases the references `get_table(id)` took (its parts' too)."""
        for b in self._held.pop(ObjectID(id), []):
            b.release()

    def table(self, id, timeout=None):
        """`with client.table(id) as t:` — the table's references are released at the end."""
        from . import arrow
        return arrow.HeldTable(self, ObjectID(id), timeout)


def connect(socket=None, access="rw"):
    """Connects to the store on `socket` (default: the CLI's, /tmp/plenum-$UID.sock)."""
    return Client(socket, access)
