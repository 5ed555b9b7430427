"""The TWS application without sockets: one request in, the reply messages out."""

from __future__ import annotations

import typing

import pytest

from v6.protocol import codec, requests
from v6.protocol.codec import ClientCodec, ContractSpec, Message
from v6.testing import AccountState, AccountValue, Position
from v6.testing.gateway.app import TwsApp
from v6.testing.gateway.clients import ClientState
from v6.testing.gateway.config import GatewaySettings
from v6.testing.gateway.streams import StreamKind
from v6.testing.gateway.trading import new_broker

NOW = 1_795_518_499.0


def decode(replies: list[bytes]) -> list[tuple[str, ...]]:
    reader = ClientCodec()
    reader.receive_data(codec.encode_server_hello(178, "now"))
    events = reader.receive_data(b"".join(replies))
    assert all(isinstance(e, Message) for e in events)
    return [e.fields for e in events if isinstance(e, Message)]


@pytest.fixture
def app() -> TwsApp:
    state = AccountState(
        accounts=("DU1", "DU2"),
        positions=(Position("DU1", "AAPL", 10, 150.0, con_id=265598),),
        values={"DU1": (AccountValue("NetLiquidation", "1000"),)},
    )
    settings = GatewaySettings(account_state=state, wall_clock=lambda: NOW, next_order_id=42)
    return TwsApp(settings, new_broker(settings))


@pytest.fixture
def client() -> ClientState:
    return ClientState(peer="test", server_version=178)


def test_welcome_is_accounts_next_id_and_farm_notices(app: TwsApp, client: ClientState) -> None:
    fields = decode(app.welcome(client))
    assert fields[0] == ("15", "1", "DU1,DU2")
    assert fields[1] == ("9", "1", "42")
    assert [f[3] for f in fields[2:]] == ["2104", "2106", "2158"]
    app.settings.farm_notices = False
    assert len(app.welcome(client)) == 2


def test_simple_requests(app: TwsApp, client: ClientState) -> None:
    assert decode(app.handle(client, codec.ReqCurrentTime())) == [("49", "1", str(int(NOW)))]
    assert decode(app.handle(client, codec.ReqIds(1))) == [("9", "1", "42")]
    assert decode(app.handle(client, codec.ReqExecutions(5))) == [("55", "1", "5")]
    assert [f[0] for f in decode(app.handle(client, codec.ReqPositions()))] == ["61", "62"]


def test_account_summary_limit_is_per_client(app: TwsApp, client: ClientState) -> None:
    summary = codec.ReqAccountSummary(1, "All", ("NetLiquidation",))
    assert decode(app.handle(client, summary))[0][4:6] == ("NetLiquidation", "1000")
    app.handle(client, codec.ReqAccountSummary(2, "All", ()))
    assert decode(app.handle(client, codec.ReqAccountSummary(3, "All", ())))[0][3] == "322"
    app.handle(client, codec.CancelAccountSummary(1))
    assert client.account_summaries == {2}
    assert app.handle(ClientState(), codec.ReqAccountSummary(9, "All", ()))  # another client


def test_market_data_registers_a_stream_unless_snapshot(app: TwsApp, client: ClientState) -> None:
    contract = ContractSpec(con_id=1, symbol="X")
    snapshot = decode(app.handle(client, codec.ReqMktData(1, contract, "", True)))
    assert snapshot[-1] == ("57", "1", "1")
    assert client.streams == {}
    app.handle(client, codec.ReqMktData(2, contract))
    assert list(client.streams) == [(StreamKind.MARKET_DATA, 2)]
    assert app.handle(client, codec.CancelMktData(2)) == []
    assert client.streams == {}


def test_account_updates_read_the_state_replaced_at_runtime(
    app: TwsApp, client: ClientState
) -> None:
    assert decode(app.handle(client, codec.ReqAccountUpdates(True, "")))[-1] == ("54", "1", "DU1")
    app.settings.account_state = AccountState.with_accounts(["DU9"])
    assert decode(app.handle(client, codec.ReqAccountUpdates(True, "")))[-1] == ("54", "1", "DU9")
    assert app.handle(client, codec.ReqAccountUpdates(False, "")) == []


NO_REPLY = [
    codec.StartApi(1),
    codec.CancelPositions(),
    codec.CancelAccountUpdatesMulti(1),
    codec.ReqAutoOpenOrders(True),
    codec.CancelHistoricalData(1),
]


@pytest.mark.parametrize("request_", NO_REPLY, ids=lambda r: type(r).__name__)
def test_requests_without_reply(app: TwsApp, client: ClientState, request_: codec.Request) -> None:
    assert app.handle(client, request_) == []


def test_every_registered_request_type_is_handled(app: TwsApp, client: ClientState) -> None:
    """Each registered type, parsed from an all-zero message, gets through the dispatch."""
    assert set(typing.get_args(codec.Request)) == set(requests.REGISTERED)
    whole = {  # parsed with exact field counts (tests/protocol/test_orders_codec.py)
        codec.ClientMessage.PLACE_ORDER: codec.PlaceOrder(
            1, codec.ContractSpec(con_id=1, symbol="X"), "BUY", 1, "MKT"
        ),
        codec.ClientMessage.CANCEL_ORDER: codec.CancelOrder(1),
        codec.ClientMessage.REQ_EXECUTIONS: codec.ReqExecutions(1),
        codec.ClientMessage.REQ_GLOBAL_CANCEL: codec.ReqGlobalCancel(),
    }
    for msg_id in requests._PARSERS:
        parsed = whole.get(msg_id) or codec.parse_request(
            Message(msg_id, (str(msg_id), *("0" * 40)))
        )
        assert parsed is not None
        app.handle(client, parsed)  # no exception, no fall-through
