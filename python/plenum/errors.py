"""Exceptions named after the store's error codes (SPEC §9.3)."""


class PlenumError(Exception):
    """Any error the store or this client reports. `code` is the SPEC §9.3 code (0: client-side)."""

    code = 0

    def __init__(self, message, code=None):
        super().__init__(message)
        if code is not None:
            self.code = code


class ObjectExists(PlenumError): code = 1
class ObjectNotFound(PlenumError): code = 2
class ObjectNotSealed(PlenumError): code = 3
class ObjectAlreadySealed(PlenumError): code = 4
class ObjectInUse(PlenumError): code = 5
class NotCreator(PlenumError): code = 6
class NoReference(PlenumError): code = 7
class InvalidSize(PlenumError): code = 8
class TooLarge(PlenumError): code = 9
class OutOfMemory(PlenumError): code = 10
class UnknownClient(PlenumError): code = 11
class TooManyIds(PlenumError): code = 12
class NodeUnavailable(PlenumError): code = 13
class DigestMismatch(PlenumError): code = 14
class ReadOnly(PlenumError): code = 15
class MalformedFrame(PlenumError): code = 100
class UnknownType(PlenumError): code = 101
class FrameTooLarge(PlenumError): code = 102


class ConnectionClosed(PlenumError):
    """The store closed the connection."""


class Released(PlenumError):
    """A buffer was used after its reference was released."""


class Timeout(PlenumError):
    """`get` timed out before the object was sealed."""


BY_CODE = {c.code: c for c in [ObjectExists, ObjectNotFound, ObjectNotSealed, ObjectAlreadySealed, ObjectInUse,
                               NotCreator, NoReference, InvalidSize, TooLarge, OutOfMemory, UnknownClient, TooManyIds,
                               NodeUnavailable, DigestMismatch, ReadOnly, MalformedFrame, UnknownType, FrameTooLarge]}


def from_code(code, message):
    return BY_CODE.get(code, PlenumError)(message, code)
