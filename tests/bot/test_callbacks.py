"""Callback data (bot/callbacks.py): every action round-trips, and nothing else is parsed."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot import callbacks as cb

EVERY_ACTION: list[cb.Action] = [
    cb.Menu(),
    cb.ChoosePlan("pro"),
    cb.Renew("enterprise"),
    cb.ChooseCoin("pro", "USDT"),
    cb.ChooseNetwork("pro", "USDT", "TRC20"),
    cb.PayStars("pro"),
    cb.StarsRenewal("ABCD2345", on=True),
    cb.StarsRenewal("ABCD2345", on=False),
    cb.CheckInvoice("ABCD2345"),
    cb.ClaimInvoice("ABCD2345"),
    cb.CancelInvoice("ABCD2345"),
    cb.AdminConfirm("ABCD2345", force=False),
    cb.AdminConfirm("ABCD2345", force=True),
    cb.AdminReject("ABCD2345"),
    cb.AdminPage(0),
    cb.AdminPage(9999),
]


@pytest.mark.parametrize("action", EVERY_ACTION, ids=repr)
def test_every_action_round_trips(action: cb.Action) -> None:
    data = cb.encode(action)
    assert data.startswith(f"{cb.VERSION}:")
    assert len(data.encode()) <= cb.MAX_BYTES
    assert cb.parse(data) == action


def test_every_action_type_is_covered() -> None:
    assert {type(a) for a in EVERY_ACTION} == set(cb.Action.__args__)


def test_the_longest_catalogue_values_fit() -> None:
    longest = cb.ChooseNetwork("p" * 24, "C" * 10, "N" * 12)
    assert len(cb.encode(longest)) <= cb.MAX_BYTES
    assert cb.parse(cb.encode(longest)) == longest


@pytest.mark.parametrize(
    "data",
    [
        "",
        "1",
        "1:",
        "2:m",
        "1:m:",
        "1:m:x",
        "1:p",
        "1:p:",
        "1:p:Pro",
        "1:p:pro:",
        "1:p:pro\n",
        "1:k:ABCD\n",
        "1:k:abcd2345",
        "1:k:ABC",
        "1:k:ABCD2345:extra",
        "1:ap:01",
        "1:ap:-1",
        "1:ap:10000",
        "1:ap:1\n",
        "1:ac:ABCD2345:1",
        "1:zz:ABCD2345",
        " 1:m",
        "1:m ",
        "1:k:ＡＢＣＤ",
        "1:ap:١",
    ],
)
def test_anything_not_canonical_is_refused(data: str) -> None:
    assert cb.parse(data) is None


def test_nothing_longer_than_64_bytes_is_parsed() -> None:
    assert cb.parse("1:k:" + "A" * 61) is None


_TAGS = ["m", "p", "r", "c", "n", "k", "l", "x", "ac", "af", "ar", "ap", "", "zz"]
_PART = st.one_of(
    st.from_regex(r"[a-z0-9_-]{0,26}", fullmatch=True),
    st.from_regex(r"[A-Z0-9]{0,17}", fullmatch=True),
    st.from_regex(r"[0-9]{1,6}", fullmatch=True),
    st.text(max_size=6),
)


@st.composite
def _shaped(draw: st.DrawFn) -> str:
    """Data that looks like ours: version, a known tag and a few plausible arguments."""
    version = draw(st.sampled_from(["1", "1", "1", "0", "2", ""]))
    parts = [draw(st.sampled_from(_TAGS)), *draw(st.lists(_PART, max_size=4))]
    return ":".join([version, *parts]) + draw(st.sampled_from(["", "", "\n", " ", ":"]))


def _at_most_64_bytes(text: str) -> bool:
    return len(text.encode("utf-8", "surrogatepass")) <= cb.MAX_BYTES


@given(st.one_of(st.text(max_size=64), _shaped()).filter(_at_most_64_bytes))
@example("1:n:pro:USDT:TRC20")
@example("1:ap:0")
@example("\ud800")
def test_parse_never_raises_and_accepts_only_what_encode_makes(data: str) -> None:
    action = cb.parse(data)
    if action is not None:
        assert isinstance(action, cb.Action.__args__)
        assert cb.encode(action) == data
