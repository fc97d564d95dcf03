"""Client frames (SPEC §9.2): encoding and bounds-checked decoding.

    0 ┌ length u32 (whole frame, 16 … 1 MiB) ┬ type u16 ┬ flags u16 (0) ┐
    8 │ requestId u64 (echoed by the reply; 0 in notifications)        │
   16 │ body … little-endian; ids 20 raw bytes; lists count u32 + items│
"""
import struct

HEADER = struct.Struct("<IHHQ")
MAX_FRAME = 1 << 20
MAX_IDS = 4096
HELLO_VERSION = 2

# requests
CREATE, SEAL, ABORT, GET, RELEASE, CONTAINS, DELETE, LIST, EVICT, SUBSCRIBE, STATS, REFRESH = range(0x01, 0x0D)
CREATE_ON, BARRIER, REGIONS, CLUSTER_STATUS, WRITE_ACCESS, VERIFY = 0x10, 0x11, 0x12, 0x13, 0x14, 0x15
# replies
CREATED, SEALED, ABORTED, OBJECTS, RELEASED, CONTAINS_REPLY, DELETED, LIST_REPLY, EVICTED, SUBSCRIBED, STATS_REPLY, REFRESHED = range(0x81, 0x8D)
BARRIER_PASSED, REGIONS_REPLY, CLUSTER_STATUS_REPLY, WRITE_GRANTED, VERIFIED = 0x91, 0x92, 0x93, 0x94, 0x95
ERROR = 0xFF
NOTIFY_SEALED, NOTIFY_DELETED, HELLO = 0xC1, 0xC2, 0xE0


class WireError(Exception):
    pass


def frame(kind, rid, body=b""):
    return HEADER.pack(HEADER.size + len(body), kind, 0, rid) + body


def ids(id_list):
    if len(id_list) > MAX_IDS:
        raise WireError(f"{len(id_list)} ids in one request; at most {MAX_IDS}")
    return struct.pack("<I", len(id_list)) + b"".join(bytes(i) for i in id_list)


def complete(buf):
    """Length of the first whole frame in `buf`, or None if incomplete."""
    if len(buf) < 4:
        return None
    (n,) = struct.unpack_from("<I", buf, 0)
    if n < HEADER.size or n > MAX_FRAME:
        raise WireError(f"frame length {n} outside {HEADER.size}…{MAX_FRAME}")
    return n if len(buf) >= n else None


class Reader:
    """Reads a frame body field by field; every read is bounds-checked."""

    def __init__(self, data, at=0):
        self.data, self.at = data, at

    def take(self, n):
        if n < 0 or self.at + n > len(self.data):
            raise WireError(f"truncated: needs {n} bytes, has {len(self.data) - self.at}")
        b = self.data[self.at:self.at + n]
        self.at += n
        return bytes(b)

    def u8(self): return self.take(1)[0]
    def u16(self): return struct.unpack("<H", self.take(2))[0]
    def u32(self): return struct.unpack("<I", self.take(4))[0]
    def u64(self): return struct.unpack("<Q", self.take(8))[0]
    def i64(self): return struct.unpack("<q", self.take(8))[0]

    def size(self):
        v = self.i64()
        if v < 0:
            raise WireError(f"negative size {v}")
        return v

    def text(self):
        n = self.u32()
        if n > 4096:
            raise WireError(f"text of {n} bytes")
        return self.take(n).decode("utf-8", "replace")

    def blob(self):
        return self.take(self.u32())

    def id(self): return self.take(20)

    def location(self):
        off, d, m, r, region = self.size(), self.size(), self.size(), self.size(), self.size()
        return Location(off, d, m, r, region)

    @property
    def remaining(self): return len(self.data) - self.at


class Location(tuple):
    """Where an object's bytes are: offsets in region `region` (0: the store's own; SPEC §10.7)."""
    __slots__ = ()

    def __new__(cls, offset, data_size, metadata_size, reserved, region):
        return tuple.__new__(cls, (offset, data_size, metadata_size, reserved, region))

    offset = property(lambda s: s[0])
    data_size = property(lambda s: s[1])
    metadata_size = property(lambda s: s[2])
    reserved = property(lambda s: s[3])
    region = property(lambda s: s[4])

    @property
    def end(self): return self[0] + self[1] + self[2]


def open_frame(data):
    if len(data) < HEADER.size:
        raise WireError("short frame")
    n, kind, _flags, rid = HEADER.unpack_from(data, 0)
    if n != len(data):
        raise WireError(f"length {n} but frame of {len(data)}")
    return kind, rid, Reader(data, HEADER.size)


def per_object(r):
    n = r.u32()
    if n > MAX_IDS:
        raise WireError(f"{n} results")
    out = []
    for _ in range(n):
        code, text = r.u16(), r.text()
        out.append(None if code == 0 else (code, text))
    return out
