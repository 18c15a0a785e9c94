"""The OKX client loads without ccxt's other exchanges, and ccxt still works as a package."""

from __future__ import annotations

import subprocess
import sys

from tests.paths import REPO

ROOT = REPO

PROBE = """
import sys
from payments.exchange.okx import OkxExchange
exchange = OkxExchange("k", "s", "p", base_url="http://127.0.0.1:9")
loaded = sorted(n for n in sys.modules if n.startswith("ccxt.async_support.") and "." not in n[19:])
print(" ".join(n for n in loaded if n not in ("ccxt.async_support.base",)))
import ccxt, ccxt.async_support
print(ccxt.RateLimitExceeded.__name__, ccxt.async_support.binance.__name__, ccxt.kraken.__name__)
"""


def test_only_okx_is_imported_and_other_exchanges_load_on_use() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    exchanges, names = result.stdout.strip().splitlines()
    assert exchanges.split() == ["ccxt.async_support.okx"]
    assert names.split() == ["RateLimitExceeded", "binance", "kraken"]
