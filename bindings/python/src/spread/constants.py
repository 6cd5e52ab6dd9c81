"""Numeric constants of the Spread 4 client interface (values as in ``sp.h``)."""

from __future__ import annotations

# Priorities (accepted by connect(), unused by the daemon).
LOW_PRIORITY = 0
MEDIUM_PRIORITY = 1
HIGH_PRIORITY = 2

DEFAULT_SPREAD_PORT = 4803
SPREAD_VERSION = (4 << 24) | (4 << 16) | 0

MAX_GROUP_NAME = 32
MAX_PRIVATE_NAME = 10
MAX_PROC_NAME = 20

# Service types of data messages.
UNRELIABLE_MESS = 0x00000001
RELIABLE_MESS = 0x00000002
FIFO_MESS = 0x00000004
CAUSAL_MESS = 0x00000008
AGREED_MESS = 0x00000010
SAFE_MESS = 0x00000020
REGULAR_MESS = 0x0000003F

SELF_DISCARD = 0x00000040
DROP_RECV = 0x01000000

# Membership message bits.
REG_MEMB_MESS = 0x00001000
TRANSITION_MESS = 0x00002000
CAUSED_BY_JOIN = 0x00000100
CAUSED_BY_LEAVE = 0x00000200
CAUSED_BY_DISCONNECT = 0x00000400
CAUSED_BY_NETWORK = 0x00000800
MEMBERSHIP_MESS = 0x00003F00

ENDIAN_RESERVED = 0x80000080
RESERVED = 0x003FC000
REJECT_MESS = 0x00400000

# Return codes.
ACCEPT_SESSION = 1
ILLEGAL_SPREAD = -1
COULD_NOT_CONNECT = -2
REJECT_QUOTA = -3
REJECT_NO_NAME = -4
REJECT_ILLEGAL_NAME = -5
REJECT_NOT_UNIQUE = -6
REJECT_VERSION = -7
CONNECTION_CLOSED = -8
REJECT_AUTH = -9
ILLEGAL_SESSION = -11
ILLEGAL_SERVICE = -12
ILLEGAL_MESSAGE = -13
ILLEGAL_GROUP = -14
BUFFER_TOO_SHORT = -15
GROUPS_TOO_SHORT = -16
MESSAGE_TOO_LONG = -17
NET_ERROR_ON_SESSION = -18
SP_BUG = -19

# Not from the C header: initial receive() buffer sizes of this package (the same
# values the classic extension module exposed).
DEFAULT_BUFFER_SIZE = 10000
DEFAULT_GROUPS_SIZE = 10

CAUSED_BY_MASK = CAUSED_BY_JOIN | CAUSED_BY_LEAVE | CAUSED_BY_DISCONNECT | CAUSED_BY_NETWORK
VALID_SEND_SERVICE = (
    UNRELIABLE_MESS | RELIABLE_MESS | FIFO_MESS | CAUSAL_MESS | AGREED_MESS | SAFE_MESS | SELF_DISCARD
)


def is_regular_mess(service_type: int) -> bool:
    """True for a data message (any of the six service bits, and not a reject)."""
    return bool(service_type & REGULAR_MESS) and not service_type & REJECT_MESS


def is_membership_mess(service_type: int) -> bool:
    """True for a membership message (regular, transitional or self-leave)."""
    return bool(service_type & MEMBERSHIP_MESS) and not service_type & REJECT_MESS


def is_self_leave(service_type: int) -> bool:
    """True for the notice a member gets after leaving a group itself."""
    return bool(service_type & CAUSED_BY_LEAVE) and not service_type & (REG_MEMB_MESS | TRANSITION_MESS)


# Names exported by ``from spread.constants import *`` and re-exported by ``spread``.
__all__ = [n for n in dir() if n.isupper()] + ["is_regular_mess", "is_membership_mess", "is_self_leave"]
