"""Plenum: a shared-memory object store whose stores span machines.

    import plenum
    c = plenum.connect()                  # the CLI's default socket
    oid = c.put(b"hello")
    with c.get(oid) as buf: print(bytes(buf.data))
"""
from .client import Buffer, Client, Notification, ObjectID, ObjectInfo, WritableObject, connect
from .errors import *  # noqa: F401,F403 — exceptions named after the store's error codes
from .errors import PlenumError

__all__ = ["connect", "Client", "Buffer", "ObjectID", "ObjectInfo", "Notification", "WritableObject", "PlenumError"]
