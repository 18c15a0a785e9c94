"""The fake OKX itself: authentication as OKX does it, shapes, caps, faults, lifecycle."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from fakes.okx import FakeOkx
from fakes.okx_auth import sign
from fakes.okx_state import OkxParamError
from payments.clock import ManualClock
from tests.paths import REPO


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeOkx]:
    with FakeOkx(clock=clock) as server:
        yield server


def iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def get(
    fake: FakeOkx,
    path: str,
    *,
    ts: int | None = None,
    signed_path: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """GET ``path`` signed like OKX wants (``signed_path`` lets a test sign something else)."""
    stamp = iso(fake.now_ms() if ts is None else ts)
    sent = {
        "OK-ACCESS-KEY": fake.api_key,
        "OK-ACCESS-PASSPHRASE": fake.passphrase,
        "OK-ACCESS-TIMESTAMP": stamp,
        "OK-ACCESS-SIGN": sign(fake.secret, stamp, "GET", signed_path or path),
    }
    sent.update(headers or {})
    request = urllib.request.Request(fake.base_url + path, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        with refused:
            body = refused.read()
        try:
            return refused.code, json.loads(body)
        except ValueError:
            return refused.code, body.decode()


def test_a_correctly_signed_request_is_served(fake: FakeOkx) -> None:
    status, body = get(fake, "/api/v5/asset/deposit-address?ccy=BTC")
    assert status == 200 and body["code"] == "0" and body["msg"] == ""
    (row,) = body["data"]
    assert row["selected"] is True and row["addr"].startswith("bc1q") and row["to"] == "6"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"signed_path": "/api/v5/asset/deposit-address?ccy=ETH"}, "50113"),  # query tampered
        ({"headers": {"OK-ACCESS-SIGN": "bm9wZQ=="}}, "50113"),
        ({"headers": {"OK-ACCESS-KEY": "other"}}, "50111"),
        ({"headers": {"OK-ACCESS-PASSPHRASE": "other"}}, "50105"),
        ({"headers": {"OK-ACCESS-KEY": ""}}, "50103"),
        ({"headers": {"OK-ACCESS-TIMESTAMP": "yesterday"}}, "50112"),
        ({"ts": 1_790_000_000_000 - 31_000}, "50102"),
        ({"ts": 1_790_000_000_000 + 31_000}, "50102"),
    ],
)
def test_bad_authentication_is_refused_like_okx(
    fake: FakeOkx, kwargs: dict[str, Any], code: str
) -> None:
    status, body = get(fake, "/api/v5/asset/deposit-address?ccy=BTC", **kwargs)
    assert status == 401 and body["code"] == code and body["data"] == []


def test_timestamp_within_30_seconds_is_accepted(fake: FakeOkx) -> None:
    status, _ = get(fake, "/api/v5/account/config", ts=fake.now_ms() - 29_000)
    assert status == 200


def test_numbers_are_strings_and_flags_booleans(fake: FakeOkx) -> None:
    _, currencies = get(fake, "/api/v5/asset/currencies?ccy=USDT,BTC")
    chains = {row["chain"] for row in currencies["data"]}
    assert chains == {"USDT-TRC20", "USDT-ERC20", "USDT-BSC", "USDT-Solana", "BTC-Bitcoin"}
    for row in currencies["data"]:
        assert isinstance(row["canDep"], bool) and isinstance(row["needTag"], bool)
        assert all(isinstance(row[k], str) for k in ("minDep", "fee", "wdTickSz", "ctAddr"))
    _, tickers = get(fake, "/api/v5/market/tickers?instType=SPOT")
    inst_ids = {row["instId"] for row in tickers["data"]}
    assert {"BTC-USDT", "ETH-USDT", "SOL-USDT", "BNB-USDT", "USDC-USDT"} < inst_ids
    assert all(isinstance(v, str) for row in tickers["data"] for v in row.values())
    _, unknown = get(fake, "/api/v5/market/ticker?instId=NOPE-USDT")
    assert unknown["code"] == "51001"


def test_deposit_history_cap_and_params(fake: FakeOkx) -> None:
    for i in range(120):
        fake.add_deposit("USDT", "USDT-TRC20", "1", ts=fake.now_ms() - i)
    assert len(fake.deposit_history({})) == 100
    assert len(fake.deposit_history({"limit": "500"})) == 100
    assert len(fake.deposit_history({"limit": "7"})) == 7
    with pytest.raises(OkxParamError):
        fake.deposit_history({"limit": "0"})
    status, body = get(fake, "/api/v5/asset/deposit-history?after=abc")
    assert status == 400 and body["code"] == "51000"
    internal = fake.add_deposit("USDT", "USDT-TRC20", "2", type="3")
    (row,) = fake.deposit_history({"type": "3"})
    assert row["depId"] == internal and row["to"] == "" and row["from"]
    assert "type" not in row
    with pytest.raises(TypeError):
        fake.add_deposit("USDT", "USDT-TRC20", 1.5)  # type: ignore[arg-type]


def test_faults_counts_and_query_log(fake: FakeOkx) -> None:
    fake.fail_next(1, "rate_limit", "/api/v5/asset")
    assert get(fake, "/api/v5/public/time")[0] == 200  # other prefix: not consumed
    status, body = get(fake, "/api/v5/asset/deposit-history?ccy=BTC")
    assert (status, body["code"]) == (429, "50011")
    fake.fail_next(1, "server_error")
    status, text = get(fake, "/api/v5/public/time")
    assert status == 500 and isinstance(text, str) and "<html>" in text
    assert fake.count("/api/v5/asset/deposit-history") == 1
    assert fake.queries("/api/v5/asset/deposit-history") == [{"ccy": "BTC"}]
    assert fake.count() == 3
    fake.reset_counts()
    assert fake.count() == 0 and fake.requests == []


def test_random_faults_are_reproducible(clock: ManualClock) -> None:
    counted: list[dict[str, int]] = []

    def run() -> list[int]:
        with FakeOkx(clock=clock) as server:
            server.fail_rate(0.5, ["rate_limit", "maintenance"], seed=7)
            statuses = [get(server, "/api/v5/public/time")[0] for _ in range(12)]
            counted.append(dict(server.faults_injected))
            return statuses

    first = run()
    assert first == run()
    assert {200, 429} <= set(first) or {200, 503} <= set(first)
    # every fault is counted by kind: 429 is a rate limit, 503 maintenance
    assert counted[0] == {
        kind: n
        for kind, n in (("rate_limit", first.count(429)), ("maintenance", first.count(503)))
        if n
    }


def test_lifecycle_and_standalone_runner() -> None:
    fake = FakeOkx()
    fake.stop()  # stopping a server that never ran is harmless
    fake.start()
    with pytest.raises(RuntimeError):
        fake.start()
    fake.stop()
    fake.stop()
    process = subprocess.Popen(
        [sys.executable, "-m", "fakes.okx", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(REPO),
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert json.loads(process.stdout.readline())["api_key"] == "test-key"
        with urllib.request.urlopen(url + "/api/v5/public/time", timeout=5) as response:
            assert json.loads(response.read())["code"] == "0"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def test_more_api_keys_are_accepted_and_each_request_records_its_key(fake: FakeOkx) -> None:
    """add_key: one key per replica, so a test sees which replica called OKX."""
    path = "/api/v5/asset/deposit-history"
    fake.add_key("replica-b", "secret-b", "pass-b")
    stamp = iso(fake.now_ms())
    as_b = {
        "OK-ACCESS-KEY": "replica-b",
        "OK-ACCESS-PASSPHRASE": "pass-b",
        "OK-ACCESS-TIMESTAMP": stamp,
        "OK-ACCESS-SIGN": sign("secret-b", stamp, "GET", path),
    }
    assert get(fake, path, headers=as_b)[0] == 200
    assert get(fake, path)[0] == 200  # the first key still works
    signed_with_a = as_b | {"OK-ACCESS-SIGN": sign(fake.secret, stamp, "GET", path)}
    status, body = get(fake, path, headers=signed_with_a)
    assert (status, body["code"]) == (401, "50113")  # each key has its own secret
    wrong_pass = as_b | {"OK-ACCESS-PASSPHRASE": fake.passphrase}
    assert get(fake, path, headers=wrong_pass)[1]["code"] == "50105"
    assert [r.key for r in fake.requests] == ["replica-b", fake.api_key, "replica-b", "replica-b"]
    assert fake.count(path, key="replica-b") == 3 and fake.count(path, key=fake.api_key) == 1
    get(fake, "/api/v5/public/time", headers={"OK-ACCESS-KEY": ""})
    assert fake.requests[-1].key == "" and fake.count(key="") == 1
