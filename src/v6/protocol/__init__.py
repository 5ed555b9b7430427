"""The TWS API wire protocol as a pure (Sans-I/O) codec: bytes in, typed values out, and back. No
socket, clock or event loop; the fake gateway and anything that reads traffic share it.

Its modules, bottom up:

* :mod:`~v6.protocol.framing`: fields, frames, the version handshake, TWS's unset texts;
* :mod:`~v6.protocol.ids`: message ids (both directions) and tick types;
  :mod:`~v6.protocol.codes`: TWS's error codes and texts; :mod:`~v6.protocol.contract`: the
  contract fields;
* :mod:`~v6.protocol.fields`: the one reader of a request's fields and the base of every request
  type;
* ``session_requests``, ``account_requests``, ``market_requests``, ``orders_requests``: the
  request types, by room; :mod:`~v6.protocol.requests`: their registry and :func:`parse_request`,
  the one entry that parses any request;
* :mod:`~v6.protocol.messages`, :mod:`~v6.protocol.orders_messages`: server message encoders;
* :mod:`~v6.protocol.codec`: the per-connection state machines; it re-exports framing, ids, the
  requests and the (non-order) messages, so ``codec.X`` reaches those.
"""
