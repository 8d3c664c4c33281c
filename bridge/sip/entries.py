"""What the endpoint keeps beside each transaction: where its messages go, the request and dialog it
belongs to, and the bytes of its last message (sent again on retransmission)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .address import Address
from .dialog import DialogId
from .message import Request
from .transaction import ClientTransaction, ServerTransaction


@dataclass(slots=True, eq=False)
class ServerEntry:
    """A request we received, until its transaction ends."""

    tx: ServerTransaction
    request_id: int
    dest: Address
    source: Address
    local_tag: str
    seq: int
    """The request's CSeq number: an INVITE's 2xx awaits the ACK with this number."""
    origin: tuple[str, str, int, str] | None = None
    """Our key in ``Endpoint._origins`` (requests outside a dialog)."""
    dialog: DialogId | None = None
    final_sent: bool = False
    encoded: tuple[object, bytes] | None = None


@dataclass(slots=True, eq=False)
class ClientEntry:
    """A request we sent, until its transaction ends."""

    tx: ClientTransaction
    request_id: int
    dest: Address
    dialog: DialogId | None
    ack: bytes | None = None
    encoded: tuple[object, bytes] | None = None


def origin(request: Request) -> tuple[str, str, int, str]:
    """A request's key outside a dialog (Call-ID, From tag, CSeq, method), to spot merged requests
    (RFC 3261 §8.2.2.2)."""
    return (request.call_id, request.from_.tag or "", request.cseq.seq, request.method)


class Acknowledged:
    """INVITE server transactions whose 2xx has been acknowledged, until their Timer L.

    RFC 6026 keeps an INVITE server transaction in the Accepted state for 64*T1 after its 2xx, to
    absorb retransmissions of the INVITE. Once the ACK has come, absorbing is all that is left to do,
    and the key does it: the transaction, its entry and the 2xx's bytes go at the ACK instead of 32 s
    later, which at a high call rate is most of what calls being set up hold. Every entry lasts the
    same 64*T1, so the order of arrival is the order of expiry and a queue serves as the timer.
    """

    __slots__ = ("_origins", "_queue")

    def __init__(self) -> None:
        # key → the entry's origin (its key in ``Endpoint._origins``), or None
        self._origins: dict[tuple[object, ...], tuple[str, str, int, str] | None] = {}
        self._queue: deque[tuple[float, tuple[object, ...]]] = deque()

    def __len__(self) -> int:
        return len(self._origins)

    def __contains__(self, key: object) -> bool:
        return key in self._origins

    def take_over(self, entry: ServerEntry, server: dict[tuple[object, ...], ServerEntry]) -> bool:
        """``entry``'s 2xx was acknowledged: its key takes its place in ``server`` until Timer L.
        False, and nothing changes, if its transaction is not in the Accepted state. No deadline of
        the entry's is pushed after this, so nothing keeps it."""
        until = entry.tx.retire()
        if until is None:
            return False
        key = entry.tx.key
        if server.get(key) is entry:
            del server[key]
        self._origins[key] = entry.origin
        self._queue.append((until, key))
        return True

    def next_deadline(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def expire(
        self, now: float, origins: dict[tuple[str, str, int, str], tuple[object, ...]]
    ) -> None:
        """Forget the keys whose Timer L has fired, and their entries in ``origins``."""
        queue = self._queue
        # A changed T1 (configuration reload) can put a later deadline ahead of an earlier one:
        # the earlier then waits behind it, which only keeps it absorbing a little longer.
        while queue and queue[0][0] <= now:
            _, key = queue.popleft()
            origin = self._origins.pop(key, None)
            if origin is not None and origins.get(origin) == key:
                del origins[origin]
