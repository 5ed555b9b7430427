"""Reading a client request: the one field reader (:class:`Fields`) and the base every request
type derives from (:class:`ClientRequest`, or :class:`CancelRequest` for a cancel by request id).
Pure, no I/O.

The rules, the same for every request. ``ibapi``'s ``EClient`` writes some unset values as TWS's
sentinels; ``ib_async``'s ``Client.send`` writes them as ``""``; both mean the same:

* text is the field as written;
* an int is ASCII decimal with an optional minus, at most 19 digits (``int()`` would also take
  other scripts' digits, spaces and underscores);
* a number is a plain decimal (``1``, ``-0.5``, ``1e-05``) or ``Infinite`` (``math.inf``, as both
  clients write infinity); ``nan``, ``1_000`` or ``0x10`` are malformed;
* ``""`` and TWS's sentinels (:data:`UNSET_TEXTS`) are *unset*: ``optional_*`` give ``None``,
  :meth:`~Fields.integer`, :meth:`~Fields.number` and :meth:`~Fields.flag` give 0, 0.0 and
  ``False``, ``required_*`` raise;
* every failure (a missing field, a non-numeric one, one too many at :meth:`~Fields.end`) is a
  :class:`MalformedRequest` naming the request and the field. A request about one order
  (:attr:`ClientRequest.for_order`: placeOrder, cancelOrder) fails with a :class:`MalformedOrder`
  carrying the order id once read, so that the gateway answers TWS's error 201 for that order.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import ClassVar, Final, Self

from v6.errors import MalformedOrder, MalformedRequest
from v6.protocol.contract import ContractSpec
from v6.protocol.framing import (
    INFINITY_TEXT,
    MAX_SERVER_VERSION,
    UNSET_DOUBLE_TEXT,
    UNSET_INTEGER_TEXT,
)
from v6.protocol.ids import ClientMessage

UNSET_TEXTS: Final = frozenset(
    {
        "",
        UNSET_INTEGER_TEXT,
        UNSET_DOUBLE_TEXT,
        "1.7976931348623157e+308",  # Python's str() of UNSET_DOUBLE
        "9223372036854775807",  # UNSET_LONG
        "-9223372036854775808",
        "170141183460469231731687303715884105727",  # ibapi's UNSET_DECIMAL
    }
)
"""Field texts that mean "no value"."""

_INT_RE: Final = re.compile(r"-?[0-9]{1,19}")
_NUMBER_RE: Final = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?")


@dataclass(slots=True)
class Fields:
    """Reads one message's fields left to right, from field 1 (field 0 is the message id)."""

    fields: tuple[str, ...]
    msg_id: int = 0
    server_version: int = MAX_SERVER_VERSION
    """The session's negotiated version (placeOrder's layout depends on it)."""
    for_order: bool = False
    """The message places or cancels one order: every failure is a :class:`MalformedOrder`."""
    pos: int = 1
    order_id: int | None = None
    """The order id, once :meth:`read_order_id` has read it."""

    # ---------------------------------------------------------------------------------- failures

    def fail(self, why: str) -> MalformedRequest:
        """The error to raise about the field read last."""
        return self.malformed(f"field {self.pos - 1} {why}")

    def malformed(self, why: str) -> MalformedRequest:
        """The error to raise about the whole message."""
        text = f"{_request_name(self.msg_id)}: {why}"
        return MalformedOrder(text, self.order_id) if self.for_order else MalformedRequest(text)

    def end(self) -> None:
        """Check that every field was read (requests whose field count is exact)."""
        if self.pos != len(self.fields):
            raise self.malformed(f"{len(self.fields)} fields, expected {self.pos}")

    # ------------------------------------------------------------------------------------ fields

    def more(self) -> bool:
        """True while unread fields remain (optional trailing fields)."""
        return self.pos < len(self.fields)

    def text(self) -> str:
        self.pos += 1
        if self.pos > len(self.fields):
            raise self.fail(f"missing (message has {len(self.fields)} fields)")
        return self.fields[self.pos - 1]

    def skip(self, n: int = 1) -> None:
        """Read past ``n`` fields of any text (they must be there)."""
        for _ in range(n):
            self.text()

    def optional_integer(self) -> int | None:
        raw = self.text()
        if raw in UNSET_TEXTS:
            return None
        if _INT_RE.fullmatch(raw) is None:
            raise self.fail(f"not an int: {raw[:20]!r}")
        return int(raw)

    def integer(self) -> int:
        """An int where unset means 0 (ids, counters, enums)."""
        return self.optional_integer() or 0

    def required_integer(self) -> int:
        value = self.optional_integer()
        if value is None:
            raise self.fail("is required")
        return value

    def flag(self) -> bool:
        return self.integer() != 0

    def optional_number(self) -> float | None:
        raw = self.text()
        if raw in UNSET_TEXTS:
            return None
        if raw == INFINITY_TEXT:
            return math.inf
        if _NUMBER_RE.fullmatch(raw) is None:
            raise self.fail(f"not a number: {raw[:20]!r}")
        return float(raw)

    def number(self) -> float:
        """A number where unset means 0.0."""
        return self.optional_number() or 0.0

    def required_number(self) -> float:
        value = self.optional_number()
        if value is None or math.isinf(value):
            raise self.fail("is required and finite")
        return value

    def skip_integers(self, n: int) -> None:
        """Read past ``n`` int fields, checking they are ints."""
        for _ in range(n):
            self.optional_integer()

    def skip_numbers(self, n: int) -> None:
        """Read past ``n`` number fields, checking they are numbers."""
        for _ in range(n):
            self.optional_number()

    def tag_values(self) -> tuple[tuple[str, str], ...]:
        """A count, then that many (tag, value) pairs."""
        return tuple((self.text(), self.text()) for _ in range(self.integer()))

    def read_order_id(self) -> int:
        """The id of the order this message is about (required); failures from now on carry it."""
        self.order_id = self.required_integer()
        return self.order_id

    def contract(self) -> ContractSpec:
        """The twelve contract fields every request carries, in wire order."""
        return ContractSpec(
            con_id=self.integer(),
            symbol=self.text(),
            sec_type=self.text(),
            last_trade_date=self.text(),
            strike=self.number(),
            right=self.text(),
            multiplier=self.text(),
            exchange=self.text(),
            primary_exchange=self.text(),
            currency=self.text(),
            local_symbol=self.text(),
            trading_class=self.text(),
        )


def _request_name(msg_id: int) -> str:
    """ibapi's name for a request (``placeOrder`` for ``PLACE_ORDER``), for error texts."""
    try:
        head, *words = ClientMessage(msg_id).name.lower().split("_")
    except ValueError:
        return f"message {msg_id}"
    return head + "".join(word.capitalize() for word in words)


class ClientRequest:
    """Base of every client -> server request type.

    A request type is a frozen dataclass deriving from this class: ``msg_ids`` names the message
    ids it decodes and :meth:`parse` reads its fields. Listing it in
    :data:`v6.protocol.requests.Request` registers it.
    """

    __slots__ = ()

    msg_ids: ClassVar[tuple[ClientMessage, ...]]
    """The message ids this type decodes (usually one)."""
    versioned: ClassVar[bool] = True
    """A version field follows the message id; it is read past before :meth:`parse`."""
    for_order: ClassVar[bool] = False
    """The message places or cancels one order (see :attr:`Fields.for_order`)."""

    @classmethod
    def parse(cls, f: Fields) -> Self:
        """The request in ``f``'s fields after the id and version. By default there are none;
        trailing fields are ignored unless ``parse`` calls :meth:`Fields.end`."""
        return cls()


@dataclass(frozen=True, slots=True)
class CancelRequest(ClientRequest):
    """Base of the requests that cancel what request ``req_id`` started; it is their one field."""

    req_id: int

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return cls(f.integer())
