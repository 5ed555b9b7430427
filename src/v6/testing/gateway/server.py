"""``FakeGateway``: the server's lifecycle, its observation API and the public fault methods.

:attr:`FakeGateway.faults` switches fault objects (:mod:`v6.testing.gateway.faults`) on and off;
each fault method is a one-line shortcut to it. The sessions
(:mod:`~v6.testing.gateway.client_session`) ask the active faults at fixed hook points.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Generic, TypeVar

from loguru import logger

from v6.errors import ConfigError
from v6.protocol import codec
from v6.protocol.codes import SYSTEM_MESSAGES, ErrorCode
from v6.protocol.pacing import PacingLimits
from v6.testing.broker import (
    DEFAULT_COMMISSION_PER_SHARE,
    DEFAULT_FILL_SIZE,
    DEFAULT_MIN_COMMISSION,
    DEFAULT_SEED,
    AccountState,
)
from v6.testing.gateway.client_session import ClientSession
from v6.testing.gateway.clients import ClientInfo, Phase
from v6.testing.gateway.config import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_HISTORICAL_LATENCY,
    DEFAULT_HOST,
    DEFAULT_MARKET_INTERVAL,
    DEFAULT_MAX_CLIENTS,
    DEFAULT_MAX_OUTPUT_BUFFER,
    DEFAULT_NEXT_ORDER_ID,
    DEFAULT_PACING_LIMIT,
    DEFAULT_PACING_RULES,
    DEFAULT_PNL_INTERVAL,
    DEFAULT_PORT,
    DEFAULT_REALTIME_BAR_INTERVAL,
    DEFAULT_SLOW_CLIENT_TIMEOUT,
    DEFAULT_TICK_RATE,
    MAX_ACCOUNT_SUMMARIES,
    GatewaySettings,
)
from v6.testing.gateway.context import GatewayContext
from v6.testing.gateway.contract_details import US_EQUITY_HOURS, MarketHours
from v6.testing.gateway.controls import TradingControls
from v6.testing.gateway.data_controls import DataControls
from v6.testing.gateway.faults import (
    BrokenHandshake,
    Faults,
    HandshakeFault,
    IgnoreRequests,
    Latency,
    Stall,
)
from v6.testing.gateway.trading import new_broker

_CLOSE_GRACE: Final = 1.0
_BIND_ATTEMPTS: Final = 5
_T = TypeVar("_T")


class _Setting(Generic[_T]):
    """A ``FakeGateway`` attribute stored in its :class:`GatewaySettings` (read and written at
    runtime; sessions see a change at once)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, gateway: FakeGateway | None, owner: Any = None) -> _T:
        if gateway is None:
            raise AttributeError(self.name)  # an instance attribute
        value: _T = getattr(gateway._ctx.settings, self.name)
        return value

    def __set__(self, gateway: FakeGateway, value: _T) -> None:
        setattr(gateway._ctx.settings, self.name, value)


class FakeGateway(TradingControls, DataControls):
    """A fake TWS / IB Gateway serving the TWS API socket protocol on ``host:port``.

    Use as ``async with FakeGateway(port=0) as gw:`` (or ``await gw.start()`` / ``await
    gw.stop()``); :attr:`port` is the bound port. ``stop()`` then ``start()`` rebinds the same port.

    It trades: a simulated broker "at IB" (one per gateway, kept across stop / start / restart)
    takes orders from any client, fills them against seeded quotes and reports orders,
    executions, commissions and positions as TWS does. Control and inspect it with
    :meth:`set_quote`, :meth:`quote`, :meth:`fill_order`, :attr:`orders`, :attr:`executions`,
    :attr:`positions` and the order faults (:class:`~.controls.TradingControls`).

    Args:
        host: interface to bind (:data:`DEFAULT_HOST`).
        port: 0..65535; 0 picks a free port once, kept across stop/start.
        accounts: shortcut for ``AccountState.with_accounts(accounts)``.
        account_state: accounts, values and positions (default :class:`AccountState`()).
        max_clients: simultaneous sockets accepted (1..1024, :data:`DEFAULT_MAX_CLIENTS`); one
            more is accepted and closed at once.
        pacing_limit: messages per second per client before error 100 (1..100000, or ``None``
            to disable; :data:`DEFAULT_PACING_LIMIT`). Frames are paced before they are decoded:
            those over the limit are dropped unread (:attr:`frames_dropped`), and a client that
            keeps sending is not read until its window has room.
        tick_rate: price updates per second per market-data subscription (> 0; ``math.inf``:
            as fast as the socket drains); each update is one tickPrice plus one tickSize.
        latency: seconds added before every reply (>= 0), see :meth:`set_latency`.
        server_version: highest version offered (124..178).
        next_order_id: the first nextValidId reported (>= 0; the broker starts at 1 at least).
        farm_notices: send 2104/2106/2158 after startApi.
        max_account_summaries: active account-summary subscriptions per client before 322 (>= 0).
        on_accept: called with ``time.monotonic()`` of each accepted socket (exceptions are
            logged, never raised into the server).
        wall_clock: epoch seconds for reqCurrentTime, bars and account times (``time.time``).
        handshake_timeout: seconds from accept to ``startApi`` before a socket is closed
            (0 < t <= 3600, or ``None`` for never; :data:`DEFAULT_HANDSHAKE_TIMEOUT`). When
            ``max_clients`` sockets are open, a new one takes the place of the oldest that has
            not finished its handshake, so idle sockets never lock API clients out.
        max_output_buffer: bytes of replies (any kind) a client may leave unread (1024..2**30,
            :data:`DEFAULT_MAX_OUTPUT_BUFFER`); above it the gateway stops reading that client's
            requests until it catches up.
        slow_client_timeout: seconds a client may stay above ``max_output_buffer`` before it is
            disconnected (0 < t <= 3600, or ``None`` for never;
            :data:`DEFAULT_SLOW_CLIENT_TIMEOUT`).
        seed: seed of the quotes' random walk (:data:`DEFAULT_SEED`): same seed, same quotes.
        fill_size: most shares one matching pass fills (> 0, :data:`DEFAULT_FILL_SIZE`); larger
            orders fill in several executions.
        commission_per_share: commission per share (>= 0, :data:`DEFAULT_COMMISSION_PER_SHARE`),
            at least ``min_commission`` per execution (>= 0, :data:`DEFAULT_MIN_COMMISSION`).
        market_interval: seconds between quote steps, at which working LMT / STP orders match
            (0 < t <= 3600, or ``None``: quotes move only by :meth:`set_quote`;
            :data:`DEFAULT_MARKET_INTERVAL`).
        pacing_rules: IB's pacing rules enforced over all clients (one login), a
            :class:`~v6.protocol.pacing.PacingLimits` (default: IB's published limits; a limit
            ``None`` is off; ``scale`` shortens the windows) or ``None`` for none of them; see
            :mod:`~v6.testing.gateway.ib_pacing`. Settable at runtime (:attr:`pacing_rules`).
        realtime_bar_interval: seconds between realtimeBar messages and between the updates of a
            kept-up-to-date historical request (0 < s <= 3600,
            :data:`DEFAULT_REALTIME_BAR_INTERVAL`: TWS's 5).
        historical_latency: seconds before a historical request is answered (0 <= s <= 3600,
            :data:`DEFAULT_HISTORICAL_LATENCY`); it counts as open until then.
        pnl_interval: seconds between PnL updates (0 < s <= 3600, :data:`DEFAULT_PNL_INTERVAL`).
        market_hours, contract_hours: the trading and liquid hours contract details report, for
            every contract (:data:`US_EQUITY_HOURS`) and by conId or symbol
            (:class:`~.contract_details.MarketHours`; see :meth:`set_market_hours`).

    Raises:
        ConfigError: an argument is outside its range (the message names it and the range).
    """

    host = _Setting[str]()
    handshake_timeout = _Setting[float | None]()
    account_state = _Setting[AccountState]()
    max_clients = _Setting[int]()
    pacing_limit = _Setting[int | None]()
    server_version = _Setting[int]()
    farm_notices = _Setting[bool]()
    max_account_summaries = _Setting[int]()

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        accounts: Iterable[str] | None = None,
        account_state: AccountState | None = None,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        pacing_limit: int | None = DEFAULT_PACING_LIMIT,
        tick_rate: float = DEFAULT_TICK_RATE,
        latency: float = 0.0,
        server_version: int = codec.MAX_SERVER_VERSION,
        next_order_id: int = DEFAULT_NEXT_ORDER_ID,
        farm_notices: bool = True,
        max_account_summaries: int = MAX_ACCOUNT_SUMMARIES,
        on_accept: Callable[[float], None] | None = None,
        wall_clock: Callable[[], float] = time.time,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        max_output_buffer: int = DEFAULT_MAX_OUTPUT_BUFFER,
        slow_client_timeout: float | None = DEFAULT_SLOW_CLIENT_TIMEOUT,
        seed: int = DEFAULT_SEED,
        fill_size: float = DEFAULT_FILL_SIZE,
        commission_per_share: float = DEFAULT_COMMISSION_PER_SHARE,
        min_commission: float = DEFAULT_MIN_COMMISSION,
        market_interval: float | None = DEFAULT_MARKET_INTERVAL,
        pacing_rules: PacingLimits | None = DEFAULT_PACING_RULES,
        realtime_bar_interval: float = DEFAULT_REALTIME_BAR_INTERVAL,
        historical_latency: float = DEFAULT_HISTORICAL_LATENCY,
        pnl_interval: float = DEFAULT_PNL_INTERVAL,
        market_hours: MarketHours = US_EQUITY_HOURS,
        contract_hours: Mapping[int | str, MarketHours] | None = None,
    ) -> None:
        if account_state is not None and accounts is not None:
            raise ConfigError("accounts: give either accounts or account_state, not both")
        if account_state is None:
            account_state = (
                AccountState.with_accounts(accounts) if accounts is not None else AccountState()
            )
        settings = GatewaySettings(
            host=host, port=port, account_state=account_state, max_clients=max_clients,
            pacing_limit=pacing_limit, tick_rate=tick_rate, server_version=server_version,
            next_order_id=next_order_id, farm_notices=farm_notices,
            max_account_summaries=max_account_summaries, on_accept=on_accept,
            wall_clock=wall_clock, handshake_timeout=handshake_timeout,
            max_output_buffer=max_output_buffer, slow_client_timeout=slow_client_timeout,
            seed=seed, fill_size=fill_size, commission_per_share=commission_per_share,
            min_commission=min_commission, market_interval=market_interval,
            pacing_rules=pacing_rules, realtime_bar_interval=realtime_bar_interval,
            historical_latency=historical_latency, pnl_interval=pnl_interval,
            market_hours=market_hours, contract_hours=dict(contract_hours or {}),
        )  # fmt: skip
        self._ctx = GatewayContext(settings, new_broker(settings))
        self._server: asyncio.Server | None = None
        initial_latency = Latency(latency)  # checks the argument
        if initial_latency.seconds:
            self.faults.switch_on(initial_latency)

    # ---- lifecycle

    async def start(self) -> None:
        """Listen (again). After :meth:`stop`, rebinds the port bound the first time."""
        if self._server is not None:
            return
        ctx = self._ctx
        ctx.loop = asyncio.get_running_loop()
        ctx.faults.rebind()  # start() may follow a new event loop
        settings = ctx.settings
        ctx.listening = True
        self._server = await self._listen(ctx.loop, settings.host, settings.port)
        settings.port = self._server.sockets[0].getsockname()[1]
        self._start_market()
        logger.info("fake gateway: listening on {}", format_addresses(self.addresses))

    async def stop(self) -> None:
        """Stop listening (connections are refused) and close every client socket."""
        server, self._server = self._server, None
        self._ctx.listening = False
        if server is not None:
            await self._ctx.stop_accepting(server)
        await self._stop_market()
        if server is not None:
            server.close()
        await self._close_sessions(reset=False)
        if server is not None:
            await server.wait_closed()
            logger.info("fake gateway: stopped listening on {}:{}", self.host or "*", self.port)

    async def __aenter__(self) -> FakeGateway:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ---- faults (each method a shortcut to gw.faults)

    @property
    def faults(self) -> Faults:
        """The faults switched on at this gateway: ``gw.faults.switch_on(Stall())``,
        ``gw.faults.switch_off(Stall)``, ``gw.faults.active`` (:class:`~.faults.Faults`). The
        fault methods (``stall()``, ``set_latency()``, ``hold_order_status()``...) are shortcuts
        to it."""
        return self._ctx.faults

    def stall(self) -> None:
        """Black hole: sockets stay open and are read, nothing is answered or streamed.

        Requests received while stalled are dropped (a frozen TWS does not replay them), though
        counted in :attr:`request_counts` (and toward pacing); a hello received while stalled is
        never answered.
        Replies queued before the stall are held and delivered after :meth:`unstall`.
        """
        self.faults.switch_on(Stall())

    def unstall(self) -> None:
        """End :meth:`stall`: answer new requests again and resume tick streams."""
        self.faults.switch_off(Stall)

    @property
    def stalled(self) -> bool:
        return self.faults.get(Stall) is not None

    async def drop_all(self, reset: bool = False) -> None:
        """Close every client socket: FIN, or RST (``SO_LINGER`` 0 + abort) when ``reset``.

        Keeps listening; returns once every socket is closed.
        """
        await self._close_sessions(reset=reset, graceful=not reset)

    def handshake_fault(self, mode: HandshakeFault | str | None) -> None:
        """How NEW connections are treated: ``None`` normal, ``"close"``, ``"silent"``."""
        if mode is None:
            self.faults.switch_off(BrokenHandshake)
        else:
            self.faults.switch_on(BrokenHandshake(mode))

    def set_latency(self, seconds: float) -> None:
        """Delay every reply by ``seconds`` (>= 0, finite); order per client is kept."""
        self.faults.switch_on(Latency(seconds))

    @property
    def latency(self) -> float:
        latency = self.faults.get(Latency)
        return latency.seconds if latency is not None else 0.0

    def ignore_requests(self, msg_ids: Iterable[int] = ()) -> None:
        """Receive but never answer these client message ids (replaces the previous set).

        ``gw.ignore_requests(STARTUP_SYNC_REQUESTS)``: handshake and nextValidId work, the startup
        sync of ``IB.connectAsync`` never completes. ``gw.ignore_requests()`` clears it.
        """
        self.faults.switch_on(IgnoreRequests(msg_ids))

    def broadcast_error(self, code: int, text: str | None = None) -> int:
        """Send a system message (request id -1) to every API-ready client; returns how many.

        Without ``text``, TWS's own wording for the codes in :data:`SYSTEM_MESSAGES` is used.
        1101 ("restored - data lost") also ends every live request, as at TWS: each must be
        requested again.
        """
        if text is None:
            if code not in SYSTEM_MESSAGES:
                known = ", ".join(str(c) for c in SYSTEM_MESSAGES)
                raise ConfigError(f"text: required for code {code} (known codes: {known})")
            text = SYSTEM_MESSAGES[code]
        if code == ErrorCode.RESTORED_DATA_LOST:
            self._ctx.end_live_requests()
        return self._ctx.broadcast(code, text)

    async def send_garbage(self, data: bytes) -> int:
        """Write raw ``data`` to every connected client, after its queued replies; returns how
        many clients it was queued for."""
        sessions = [s for s in self._ctx.sessions if s.phase not in (Phase.CLOSING, Phase.CLOSED)]
        for session in sessions:
            session.send(bytes(data))
        await asyncio.sleep(0)
        return len(sessions)

    # ---- observation

    @property
    def port(self) -> int:
        """The bound port (the configured one before the first :meth:`start`)."""
        return self._ctx.settings.port

    @property
    def is_serving(self) -> bool:
        return self._server is not None

    @property
    def client_ids(self) -> frozenset[int]:
        """Client ids of the live API sessions."""
        return frozenset(self._ctx.live_ids)

    @property
    def request_counts(self) -> Counter[int]:
        """Copy of: message id -> messages received, over all clients since start or
        :meth:`reset_counts` (including ignored and unsupported ones; not those over the pacing
        limit, dropped unread: :attr:`frames_dropped`)."""
        return Counter(self._ctx.counts)

    @property
    def frames_dropped(self) -> int:
        """Frames dropped unread because their client was over the pacing limit (since start or
        :meth:`reset_counts`); they are not in :attr:`request_counts`."""
        return self._ctx.frames_dropped

    @property
    def connection_count(self) -> int:
        """Sockets accepted since start or :meth:`reset_counts`."""
        return len(self._ctx.accept_times)

    @property
    def accept_times(self) -> tuple[float, ...]:
        """``time.monotonic()`` of each accepted socket since start or :meth:`reset_counts`."""
        return tuple(self._ctx.accept_times)

    def reset_counts(self) -> None:
        """Zero :attr:`request_counts`, :attr:`frames_dropped`, :attr:`connection_count` and
        :attr:`accept_times`."""
        self._ctx.counts.clear()
        self._ctx.frames_dropped = 0
        self._ctx.accept_times.clear()

    @property
    def active_account_summaries(self) -> int:
        """Open account-summary subscriptions, summed over live clients."""
        return sum(len(s.state.account_summaries) for s in self._ctx.sessions)

    @property
    def clients(self) -> tuple[ClientInfo, ...]:
        """A snapshot of every open socket."""
        return tuple(s.info() for s in self._ctx.sessions if s.phase is not Phase.CLOSED)

    @property
    def addresses(self) -> tuple[tuple[str, int], ...]:
        """Every ``(address, port)`` listened on (one port for all); ``()`` when not serving.

        ``host=""`` listens on every IPv4 and IPv6 interface: ``(("0.0.0.0", p), ("::", p))``.
        """
        if self._server is None:
            return ()
        return tuple((s.getsockname()[0], s.getsockname()[1]) for s in self._server.sockets)

    # ---- internals

    async def _listen(
        self, loop: asyncio.AbstractEventLoop, host: str, port: int
    ) -> asyncio.Server:
        """Listen on ``host:port`` with ONE port for every address ``host`` stands for (``""``:
        IPv4 and IPv6), so that :attr:`port` is well defined."""
        ctx = self._ctx
        for _ in range(_BIND_ATTEMPTS):
            server = await loop.create_server(lambda: ClientSession(ctx), host, port,
                                              reuse_address=True)  # fmt: skip
            ports = [s.getsockname()[1] for s in server.sockets]
            if len(set(ports)) == 1:
                return server
            server.close()  # port 0 picked one port per address family: retry on the first one
            await server.wait_closed()
            with contextlib.suppress(OSError):  # taken on another family: pick again
                return await loop.create_server(lambda: ClientSession(ctx), host, ports[0],
                                                reuse_address=True)  # fmt: skip
        raise OSError(f"cannot listen on one port for every address of {host!r}")

    async def _close_sessions(self, reset: bool, graceful: bool = True) -> None:
        sessions = list(self._ctx.sessions)
        for session in sessions:
            if graceful and not reset:
                session.close()
            else:
                session.abort(reset=reset)
        waiters = [s.closed for s in sessions if not s.closed.done()]
        if waiters:
            _, pending = await asyncio.wait(waiters, timeout=_CLOSE_GRACE)
            if pending:  # a peer that does not read keeps close() from finishing: abort it
                for session in sessions:
                    session.abort()
                await asyncio.wait(pending, timeout=_CLOSE_GRACE)


def format_addresses(addresses: Iterable[tuple[str, int]]) -> str:
    """``127.0.0.1:4002`` or ``0.0.0.0:4002, [::]:4002``."""
    return ", ".join(f"[{a}]:{p}" if ":" in a else f"{a}:{p}" for a, p in addresses)
