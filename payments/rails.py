"""Which payment rails a shop runs: crypto into OKX, Telegram Stars, or both.

Crypto needs OKX's three settings and coins in the plans file; Stars needs a ``stars`` price on a
plan. A shop without OKX keys sells for Stars only, so every plan needs a Stars price then.
Start-up and ``python -m bot check`` both decide it here and say it in one line::

    rails = payment_rails(catalog, okx_keys=True)
    rails.line()   # "payment rails: crypto (OKX), Telegram Stars (2 of 3 plans)"

In test mode (``OKX_MODE=simulated``) crypto goes to the simulated exchange and the line says
"test mode (simulated exchange)".
"""

from __future__ import annotations

from dataclasses import dataclass

from payments.catalog import Catalog
from payments.errors import ConfigError

OKX_SETTINGS = ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE")
SIMULATED_LINE = "test mode (simulated exchange)"


@dataclass(frozen=True)
class Rails:
    crypto: bool  # OKX keys are set and the plans file has coins: OKX is called
    stars_plans: int  # how many plans are sold for Telegram Stars
    plans: int
    unused_keys: bool = False  # OKX keys are set, but no coin: nothing calls OKX
    # test mode (OKX_MODE=simulated): crypto goes to the in-process simulated exchange
    simulated: bool = False

    @property
    def stars_only(self) -> bool:
        return not self.crypto

    def line(self) -> str:
        """``payment rails: ...`` as the start-up log and ``check`` say it."""
        test = f" [{SIMULATED_LINE}]" if self.simulated else ""
        if not self.crypto:
            return f"payment rails: Telegram Stars only{test}"
        crypto = SIMULATED_LINE if self.simulated else "crypto (OKX)"
        if not self.stars_plans:
            return f"payment rails: {crypto}"
        plans = "plan" if self.plans == 1 else "plans"
        return (
            f"payment rails: {crypto}, Telegram Stars ({self.stars_plans} of {self.plans} {plans})"
        )

    def warning(self) -> str | None:
        """What a merchant may not expect: OKX keys that nothing uses."""
        if self.simulated and not self.crypto:
            return (
                "OKX_MODE=simulated but the plans file has no [[coins]]: there is no crypto"
                " payment to rehearse"
            )
        if not self.unused_keys:
            return None
        return (
            "OKX_API_KEY, OKX_SECRET_KEY and OKX_PASSPHRASE are set but the plans file has no"
            " [[coins]]: the shop sells for Telegram Stars only and never calls OKX"
        )


def payment_rails(catalog: Catalog, *, okx_keys: bool, simulated: bool = False) -> Rails:
    """The rails of ``catalog`` with or without OKX keys; ConfigError (one line naming the
    plan) when a plan could not be sold at all: no Stars price and no OKX keys. ``simulated``
    (test mode): crypto needs no keys, the simulated exchange takes the payments."""
    if simulated:
        return Rails(
            crypto=bool(catalog.coins),
            stars_plans=len(catalog.stars_plans),
            plans=len(catalog.plans),
            simulated=True,
        )
    if not okx_keys:
        for plan in catalog.plans:
            if plan.stars is None:
                raise ConfigError(
                    f"plan {plan.id!r} has no stars price and no OKX keys are set: either set"
                    f" {', '.join(OKX_SETTINGS[:-1])} and {OKX_SETTINGS[-1]} or give every plan"
                    " a stars price"
                )
    crypto = okx_keys and bool(catalog.coins)
    return Rails(
        crypto=crypto,
        stars_plans=len(catalog.stars_plans),
        plans=len(catalog.plans),
        unused_keys=okx_keys and not crypto,
    )
