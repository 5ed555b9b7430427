from __future__ import annotations

import pytest

from v6.connection.system_messages import (
    IGNORE,
    MAX_FARM_NAME,
    CutOff,
    Farms,
    FarmStatus,
    Restored,
    interpret,
)
from v6.protocol.codes import SYSTEM_MESSAGES


@pytest.mark.parametrize(
    ("code", "effect"),
    [
        (1100, CutOff(1100, SYSTEM_MESSAGES[1100])),
        (2110, CutOff(2110, SYSTEM_MESSAGES[2110])),
        (1101, Restored(1101, SYSTEM_MESSAGES[1101], data_lost=True)),
        (1102, Restored(1102, SYSTEM_MESSAGES[1102], data_lost=False)),
        (2103, FarmStatus("market_data", "usfarm", ok=False)),
        (2104, FarmStatus("market_data", "usfarm", ok=True)),
        (2105, FarmStatus("historical_data", "ushmds", ok=False)),
        (2106, FarmStatus("historical_data", "ushmds", ok=True)),
        (2157, FarmStatus("sec_def", "secdefnj", ok=False)),
        (2158, FarmStatus("sec_def", "secdefnj", ok=True)),
    ],
)
def test_tws_own_texts(code: int, effect: object) -> None:
    assert interpret(code, SYSTEM_MESSAGES[code]) == effect


@pytest.mark.parametrize("code", [0, 100, 326, 1300, 2107, 10147, -1])
def test_other_codes_are_ignored(code: int) -> None:
    assert interpret(code, "whatever") is IGNORE


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("", "market_data:?"),
        ("no colon at all", "market_data:no colon at all"),
        ("broken:  ", "market_data:?"),
        ("a:b:eufarm", "market_data:eufarm"),
        ("x:" + "f" * 10_000, "market_data:" + "f" * MAX_FARM_NAME),
        ("x:\x00\udcff", "market_data:\x00\udcff"),
    ],
)
def test_malformed_farm_texts_never_raise_and_stay_short(text: str, key: str) -> None:
    effect = interpret(2103, text)
    assert isinstance(effect, FarmStatus)
    assert (effect.key, effect.ok) == (key, False)


def test_farms_are_bounded_and_keep_the_latest_news() -> None:
    farms = Farms(cap=3)
    for name in ("a", "b", "c"):
        farms.update(FarmStatus("market_data", name, ok=True))
    farms.update(FarmStatus("market_data", "a", ok=False))  # refreshed: now the newest
    farms.update(FarmStatus("market_data", "d", ok=True))  # evicts the oldest, "b"
    assert dict(farms) == {
        "market_data:c": "ok", "market_data:a": "broken", "market_data:d": "ok"}  # fmt: skip
    for n in range(1000):
        farms.update(FarmStatus("market_data", f"flood{n}", ok=True))
    assert len(farms) == 3
