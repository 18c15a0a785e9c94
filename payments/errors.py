"""The one exception tree of the payments core.

Every error the core raises on purpose is a :class:`PaymentsError`. Callers (the Telegram layer,
the HTTP API) catch the specific subclasses they can explain to a person and treat anything else
as an internal error. Messages never contain secrets.
"""

from __future__ import annotations


class PaymentsError(Exception):
    """Base class of every deliberate error of the payments core."""


# --- configuration ---------------------------------------------------------------------------


class ConfigError(PaymentsError):
    """The plans file or a setting is invalid; the message names the problem."""


class DatabaseUnavailable(ConfigError):
    """DATABASE_URL cannot be opened (unreachable, refused, no such database)."""


class CopyRefused(ConfigError):
    """``migrate-to`` did not start (nothing written): same database, a live bot, a target
    with shop data or a source at another schema version; the message says which."""


class UnsafeApiKey(PaymentsError):
    """The OKX API key can trade or withdraw and ALLOW_UNSAFE_API_KEY is not set."""


# --- exchange (OKX) --------------------------------------------------------------------------


class ExchangeError(PaymentsError):
    """Base class of every failure talking to the exchange."""


class ExchangeUnavailable(ExchangeError):
    """Transient: network trouble, time-outs, HTTP 5xx, maintenance. Skip this poll, retry later."""


class ExchangeRateLimited(ExchangeUnavailable):
    """The exchange asked us to slow down (OKX 50011 or HTTP 429)."""


class ExchangeAuthError(ExchangeError):
    """The API key, secret or passphrase is wrong, expired, or not allowed from this IP."""


class ExchangeDataError(ExchangeError):
    """The exchange answered something we cannot parse safely."""


# --- quotes ----------------------------------------------------------------------------------


class QuoteUnavailable(PaymentsError):
    """No fresh price for the coin: prices are unavailable, try again shortly."""


# --- invoices --------------------------------------------------------------------------------


class InvoiceError(PaymentsError):
    """Base class of refusals about creating or changing an invoice. ``retry_after_ms``: when
    trying again can succeed (None: it will not by waiting, or nobody can tell)."""

    def __init__(self, message: str = "", *, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms


class UnknownChoice(InvoiceError):
    """The plan, coin or network is not in the catalogue."""


class CryptoUnavailable(InvoiceError):
    """OKX refuses the API key: a crypto invoice could never be matched to its deposit, so none is
    made (nor an open one handed back) until OKX accepts the key again."""


class DepositsDisabled(InvoiceError):
    """OKX does not accept deposits on this chain right now."""


class BelowMinimumDeposit(InvoiceError):
    """The amount would be below OKX's minimum deposit for the chain (OKX would not credit it)."""


class NoFreeAmount(InvoiceError):
    """Every unique amount under the offset cap is held: busy, try again in a few minutes."""


class UnpaidBudgetExhausted(NoFreeAmount):
    """Customers who never paid hold their whole budget of this coin's amounts (for this price):
    busy for them, while customers who have paid still get amounts."""


class TooManyOpenInvoices(InvoiceError):
    """The customer already has MAX_OPEN_INVOICES open invoices."""


class InvoiceRateLimited(InvoiceError):
    """The customer created (or was refused) too many invoices in the last hour."""


class TooManyHeldAmounts(InvoiceRateLimited):
    """The customer's invoices hold MAX_HELD_AMOUNTS unique amounts already (every invoice holds
    its amount until its monitoring window ends, paid and cancelled ones included)."""


class CustomerBlocked(InvoiceError):
    """An admin blocked this customer (/block): no new invoices, no claims."""


class InvoiceNotFound(InvoiceError):
    """No such invoice (or it belongs to somebody else)."""


class InvalidTransition(InvoiceError):
    """The invoice is not in a state that allows this action."""


class DepositNotFound(InvoiceError):
    """No such deposit is known (yet)."""


class ClaimRejected(InvoiceError):
    """A claim was refused; ``reason`` says why in a stable, machine-readable word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# --- admin actions ---------------------------------------------------------------------------


class InvalidGrant(InvoiceError):
    """An admin's grant was refused (e.g. days out of range); the message says why."""


# --- test mode -------------------------------------------------------------------------------


class SimulationRefused(PaymentsError):
    """A simulated deposit outside test mode (OKX_MODE is not simulated): nothing changes."""


class BadSimulatedAmount(InvoiceError):
    """A simulated deposit's amount is not a positive number in the coin's step."""
