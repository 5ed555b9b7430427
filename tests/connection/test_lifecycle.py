"""The lifecycle seam: which participant hears which moment, and what a failure inside one does."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from loguru import logger

from tests.connection.fakes import FakeLink
from tests.helpers import log_lines
from v6.connection.lifecycle import Participants, QuietParticipant, SessionStart
from v6.connection.system_messages import FarmStatus
from v6.manager import IBConnectionManager
from v6.protocol.codes import SYSTEM_MESSAGES, farm_notice

Factory = Callable[..., IBConnectionManager]


class Recorder(QuietParticipant):
    """Acts on live, farm and system_message only: every other moment is QuietParticipant's."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, Any]] = []

    def live(self, reconnect: bool) -> None:
        self.heard.append(("live", reconnect))

    def farm(self, status: FarmStatus) -> None:
        self.heard.append(("farm", status))

    def system_message(self, code: int, text: str) -> None:
        self.heard.append(("system_message", code))


class Everything:
    """A participant written against the Protocol alone (no QuietParticipant): hears it all."""

    def __init__(self, fail: str | None = None) -> None:
        self.heard: list[str] = []
        self._fail = fail

    def _note(self, moment: str) -> None:
        self.heard.append(moment)
        if moment == self._fail:
            raise RuntimeError(f"{moment} failed")

    def before_connect(self) -> None:
        self._note("before_connect")

    def handshake(self, session: SessionStart) -> None:
        self._note("handshake")

    def before_live(self, reconnect: bool) -> None:
        self._note("before_live")

    def live(self, reconnect: bool) -> None:
        self._note("live")

    def data_lost(self) -> None:
        self._note("data_lost")

    def farm(self, status: FarmStatus) -> None:
        self._note("farm")

    def system_message(self, code: int, text: str) -> None:
        self._note("system_message")

    def lost(self, reason: str) -> None:
        self._note("lost")

    async def stopped(self) -> None:
        self._note("stopped")

    def may_rotate_client_id(self) -> bool:
        return True

    def health(self) -> Mapping[str, Any]:
        return {}


def test_a_quiet_participants_inherited_moments_are_never_called() -> None:
    participants = Participants(logger)
    recorder = Recorder()

    class Tripwire(QuietParticipant):
        def __getattribute__(self, name: str) -> Any:
            if name in ("before_connect", "handshake", "before_live", "data_lost", "lost"):
                raise AssertionError(f"{name} looked up on a participant that does not act on it")
            return super().__getattribute__(name)

    participants.join(Tripwire())  # joining reads only the class: no lookup on the instance
    participants.join(recorder)
    participants.before_connect()
    participants.handshake(SessionStart(1, FakeLink().endpoint))
    participants.before_live(False)
    participants.live(False)
    participants.data_lost()
    participants.lost("gone")
    assert recorder.heard == [("live", False)]


async def test_a_failing_notification_is_logged_and_the_next_participant_still_hears() -> None:
    participants = Participants(logger)
    failing, after = Everything(fail="live"), Everything()
    participants.join(failing)
    participants.join(after)
    with log_lines("ERROR") as lines:
        participants.live(True)
    assert after.heard == ["live"]
    assert len(lines) == 1
    assert "raised; ignored" in lines[0]
    participants.join(Everything(fail="before_live"))
    with pytest.raises(RuntimeError, match="before_live failed"):  # fails the attempt instead
        participants.before_live(False)


async def test_farm_notices_arrive_read_once_and_other_system_messages_as_they_came(
    fake_manager: Factory,
) -> None:
    link = FakeLink()
    code, text = farm_notice("market_data", "usfarm", ok=False)
    link.handshake_messages = [(code, text)]
    manager = fake_manager(link)
    recorder, everything = Recorder(), Everything()
    manager.connection.join(recorder)
    manager.connection.join(everything)
    await manager.connect()
    link.system_message(1102, SYSTEM_MESSAGES[1102])
    assert recorder.heard == [
        ("farm", FarmStatus("market_data", "usfarm", ok=False)),
        ("live", False),
        ("system_message", 1102),
    ]
    assert everything.heard == [
        "before_connect", "handshake", "farm", "before_live", "live", "system_message"]  # fmt: skip
    assert manager.health().farms == {"market_data:usfarm": "broken"}
