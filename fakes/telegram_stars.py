"""Telegram Stars in the fake Telegram Bot API: invoices, pre-checkout queries, payments,
subscriptions, refunds and the bot's Star ledger.

:class:`TelegramStars` is mixed into :class:`fakes.telegram_state.TelegramState`, so every
control below is a method of ``FakeTelegram`` (thread-safe, under the state's ``_lock``; none
waits for the bot: a payment is a :class:`Payment` handle the test polls or waits on).

What the bot issued: ``invoices(chat_id=None)`` (sendInvoice messages) and ``invoice_links()``
(createInvoiceLink), each an :class:`IssuedInvoice`.
The user pays: ``pay(user_id, invoice, lose_update=, now_s=)`` queues a ``pre_checkout_query``
and returns a :class:`Payment`; the bot has ``precheckout_deadline_s`` (default 10 s) to answer.
``ok=true`` in time charges the user (a ledger entry and a ``successful_payment`` message
update, unless ``lose_update``); ``ok=false`` refuses it; no answer in time times it out; a
late answer is a 400.
Subscriptions (links with ``subscription_period``): ``charge_renewals(now_s)``,
``fail_renewal(user_id)``, ``subscriptions(user_id=None)``.
Outside the bot: ``refund_elsewhere(charge_id)`` (a refund by Telegram's support: the ledger
shows it, no update). The ledger: ``star_transactions()`` (oldest first; the API answers newest
first).

Like Telegram: only Stars ("XTR", exactly one price, no provider token, no tips) are accepted;
a subscription period, only on createInvoiceLink, is 30 days (2592000 s) exactly; a refund is
an outgoing transaction with the charge's id and ends the subscription's renewals. Dates are
``clock()`` seconds (see :mod:`fakes.telegram_chats`) unless a control takes ``now_s``.
Not modelled: other currencies and providers, shipping, tips, paid media, business accounts,
a limit on paying one invoice message twice.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fakes.telegram_html import ApiError, bad_request

if TYPE_CHECKING:
    from collections.abc import Callable

    from fakes.telegram_state import ChatMessage

STARS_METHODS: tuple[str, ...] = ("sendInvoice", "createInvoiceLink", "answerPreCheckoutQuery")
STARS_METHODS += ("refundStarPayment", "editUserStarSubscription", "getStarTransactions")
STARS_API = frozenset(m.lower() for m in STARS_METHODS)

STARS = "XTR"
SUBSCRIPTION_PERIOD_S = 2_592_000  # 30 days, the only period Telegram accepts
MAX_INVOICE_STARS = 25_000
MAX_SUBSCRIPTION_STARS = 10_000
PRECHECKOUT_DEADLINE_S = 10.0

QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
PRICES_UNPARSABLE = "Bad Request: can't parse prices JSON object"
AMOUNT_INVALID = "Bad Request: CURRENCY_TOTAL_AMOUNT_INVALID"
PAYLOAD_INVALID = "Bad Request: INVOICE_PAYLOAD_INVALID"
TITLE_INVALID = "Bad Request: TITLE_INVALID"
DESCRIPTION_INVALID = "Bad Request: DESCRIPTION_INVALID"
STARS_INVOICE_INVALID = "Bad Request: STARS_INVOICE_INVALID"
PROVIDER_INVALID = "Bad Request: PAYMENT_PROVIDER_INVALID"
PERIOD_INVALID = "Bad Request: SUBSCRIPTION_PERIOD_INVALID"
PERIOD_NOT_HERE = "Bad Request: subscription_period is not a parameter of sendInvoice"
BUY_BUTTON_FIRST = "Bad Request: REPLY_MARKUP_BUY_EMPTY"
ERROR_MESSAGE_EMPTY = "Bad Request: ERROR_MESSAGE_EMPTY"
CHARGE_NOT_FOUND = "Bad Request: CHARGE_NOT_FOUND"
CHARGE_ALREADY_REFUNDED = "Bad Request: CHARGE_ALREADY_REFUNDED"
CHARGE_ID_INVALID = "Bad Request: CHARGE_ID_INVALID"
SUBSCRIPTION_EXPIRED = "Bad Request: SUBSCRIPTION_EXPIRED"
LIMIT_INVALID = "Bad Request: LIMIT_INVALID"
OFFSET_INVALID = "Bad Request: OFFSET_INVALID"


@dataclass
class IssuedInvoice:
    """One invoice the bot issued: a sendInvoice message (``chat_id``, ``message_id``,
    ``message``) or a createInvoiceLink (``link``). ``amount`` is in Stars."""

    title: str
    description: str
    payload: str
    currency: str
    amount: int
    subscription_period: int | None = None
    chat_id: int | None = None
    message_id: int | None = None
    message: ChatMessage | None = None
    link: str | None = None


@dataclass
class Payment:
    """A user's press of Pay (or a renewal): ``done`` is set once it is decided; ``outcome``
    is then "paid", "refused: <error_message>" or "timed out". ``charge_id`` is the
    telegram_payment_charge_id of a paid one; ``answered_in_s`` how long the bot took to
    answer the pre-checkout query (None: no answer, or a renewal); ``update_id`` the
    successful_payment update's (None: none was sent, as with ``lose_update``)."""

    user_id: int
    invoice_payload: str
    currency: str
    total_amount: int
    subscription_period: int | None
    query_id: str | None
    done: threading.Event = field(default_factory=threading.Event)
    outcome: str | None = None
    charge_id: str | None = None
    answered_in_s: float | None = None
    date: int | None = None
    subscription_expiration_date: int | None = None
    update_id: int | None = None


@dataclass
class StarSubscription:
    """A user's subscription bought through a subscription link: ``charge_ids`` oldest first
    (the first purchase, then each renewal); ``renewal_on`` false once canceled (by the bot,
    or by a refund); ``ended`` once it ran out without renewal or a renewal failed."""

    user_id: int
    invoice_payload: str
    total_amount: int
    link: str | None
    charge_ids: list[str]
    expiration_date: int
    renewal_on: bool = True
    ended: bool = False


@dataclass
class _Charge:
    user_id: int
    amount: int
    payload: str
    period: int | None
    subscription: StarSubscription | None
    date: int
    refunded: bool = False


@dataclass
class _Tx:
    id: str
    amount: int
    date: int
    user_id: int
    payload: str
    period: int | None
    incoming: bool
    seq: int


@dataclass
class _Pending:
    payment: Payment
    invoice: IssuedInvoice
    started: float  # time.monotonic()
    timer: threading.Timer
    now_s: float | None
    lose_update: bool


def _flag(params: dict[str, Any], key: str) -> bool:
    value = params.get(key)
    if value is None or value == "":
        raise bad_request(f'parameter "{key}" is required')
    if value in (True, "true", "True", "1", 1):
        return True
    if value in (False, "false", "False", "0", 0):
        return False
    raise bad_request(f"invalid {key} specified")


def _number(params: dict[str, Any], key: str, default: int | None = None) -> int:
    value = params.get(key)
    if value is None or value == "":
        if default is None:
            raise bad_request(f"{key} is empty")
        return default
    if isinstance(value, bool):
        raise bad_request(f"invalid {key} specified")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {key} specified") from None


def _given(params: dict[str, Any], key: str) -> bool:
    return params.get(key) not in (None, "", 0, "0", [], "[]")


class TelegramStars:
    """Invoices, payments, subscriptions and the Star ledger; mixed into TelegramState."""

    _lock: threading.RLock
    clock: Callable[[], float]
    if TYPE_CHECKING:

        def _user(self, user_id: int) -> dict[str, Any]: ...
        def add_update(self, update: dict[str, Any]) -> dict[str, Any]: ...
        def _new(self, chat_id: int, from_bot: bool, **fields: Any) -> ChatMessage: ...
        def to_api(self, msg: ChatMessage) -> dict[str, Any]: ...
        def _markup(self, params: dict[str, Any]) -> dict[str, Any] | None: ...
        def _ts(self, now: float | None) -> int: ...

    def _init_stars(self) -> None:
        for pending in getattr(self, "_queries", {}).values():  # reset(): stop old deadlines
            pending.timer.cancel()
        self.precheckout_deadline_s = PRECHECKOUT_DEADLINE_S
        self._issued: list[IssuedInvoice] = []
        self._queries: dict[str, _Pending] = {}
        self._charges: dict[str, _Charge] = {}
        self._subscriptions: list[StarSubscription] = []
        self._ledger: list[_Tx] = []
        self._failing_renewals: Counter[int] = Counter()

    # --- reading what the bot issued (tests) ---------------------------------------------------

    def invoices(self, chat_id: int | None = None) -> list[IssuedInvoice]:
        """The invoice messages the bot sent (to ``chat_id`` only unless None), oldest first;
        ``message`` is the message as it is now."""
        with self._lock:
            found = [
                dataclasses.replace(i, message=self._message_now(i))
                for i in self._issued
                if i.link is None and (chat_id is None or i.chat_id == chat_id)
            ]
        return found

    def invoice_links(self) -> list[IssuedInvoice]:
        """The invoice links the bot created, oldest first."""
        with self._lock:
            return [dataclasses.replace(i) for i in self._issued if i.link is not None]

    def _message_now(self, invoice: IssuedInvoice) -> ChatMessage | None:
        chats: dict[int, list[ChatMessage]] = getattr(self, "_chats", {})
        for msg in chats.get(invoice.chat_id or 0, []):
            if msg.message_id == invoice.message_id:
                return dataclasses.replace(msg)
        return None

    # --- what users do (tests) -----------------------------------------------------------------

    def pay(
        self,
        user_id: int,
        invoice: ChatMessage | str,
        *,
        lose_update: bool = False,
        now_s: float | None = None,
    ) -> Payment:
        """The user presses Pay on an invoice message or opens an invoice link and pays: a
        ``pre_checkout_query`` update is queued and the returned :class:`Payment` is decided
        by the bot's answer (or its absence for ``precheckout_deadline_s``). ``now_s``: the
        charge's date (default ``clock()``); ``lose_update``: the payment goes through but its
        ``successful_payment`` update is never delivered."""
        with self._lock:
            issued = self._issued_for(invoice)
            query_id = self._query_id()
            payment = Payment(
                user_id,
                issued.payload,
                issued.currency,
                issued.amount,
                issued.subscription_period,
                query_id,
            )
            timer = threading.Timer(self.precheckout_deadline_s, self._expire, (query_id,))
            timer.daemon = True
            pending = _Pending(payment, issued, time.monotonic(), timer, now_s, lose_update)
            self._queries[query_id] = pending
            query: dict[str, Any] = {
                "id": query_id,
                "from": self._user(user_id),
                "currency": issued.currency,
            }
            query |= {"total_amount": issued.amount, "invoice_payload": issued.payload}
            self.add_update({"pre_checkout_query": query})
            timer.start()
        return payment

    def charge_renewals(self, now_s: float) -> list[Payment]:
        """Renew every subscription whose renewal is on and whose expiration date is at or
        before ``now_s`` (period after period, each charged at the moment it ends: a charge,
        a ledger entry and a ``successful_payment`` update with ``is_recurring``). A
        subscription whose renewal is off ends instead; one whose user has a failing renewal
        (:meth:`fail_renewal`) ends without a charge. Returns the payments made."""
        made: list[Payment] = []
        with self._lock:
            for sub in sorted(self._subscriptions, key=lambda s: s.expiration_date):
                while not sub.ended and sub.expiration_date <= now_s:
                    if not sub.renewal_on:
                        sub.ended = True
                    elif self._failing_renewals[sub.user_id] > 0:
                        self._failing_renewals[sub.user_id] -= 1
                        sub.ended, sub.renewal_on = True, False
                    else:
                        made.append(self._renew(sub))
        return made

    def fail_renewal(self, user_id: int) -> None:
        """The user's next renewal fails (not enough Stars): that subscription ends, with no
        charge, no ledger entry and no update."""
        with self._lock:
            self._failing_renewals[user_id] += 1

    def refund_elsewhere(self, charge_id: str, *, now_s: float | None = None) -> None:
        """Telegram's support refunds ``charge_id`` to the user at ``now_s`` (default
        ``clock()``): the ledger shows the refund and the subscription (if any) renews no
        more; the bot gets no update."""
        with self._lock:
            charge = self._charges.get(charge_id)
            if charge is None:
                raise KeyError(f"no charge {charge_id!r}")
            if charge.refunded:
                raise ValueError(f"charge {charge_id!r} is already refunded")
            self._refund(charge_id, charge, now_s)

    # --- reading state (tests) -----------------------------------------------------------------

    def subscriptions(self, user_id: int | None = None) -> list[StarSubscription]:
        """Every subscription (of ``user_id`` only unless None), oldest first."""
        with self._lock:
            return [
                dataclasses.replace(s, charge_ids=list(s.charge_ids))
                for s in self._subscriptions
                if user_id is None or s.user_id == user_id
            ]

    def star_transactions(self) -> list[dict[str, Any]]:
        """The bot's Star ledger as StarTransaction dicts, oldest first (by date, then
        order of entry); ``getStarTransactions`` answers the same, newest first."""
        with self._lock:
            return [self._tx_api(tx) for tx in sorted(self._ledger, key=lambda t: (t.date, t.seq))]

    # --- the Bot API methods --------------------------------------------------------------------

    def _stars_api(self, method: str, params: dict[str, Any]) -> Any:
        with self._lock:
            if method == "sendinvoice":
                return self._send_invoice(params)
            if method == "createinvoicelink":
                issued = self._invoice_of(params, link=True)
                issued.link = f"https://t.me/${secrets.token_urlsafe(12)}"
                self._issued.append(issued)
                return issued.link
            if method == "answerprecheckoutquery":
                return self._answer_query(params)
            if method == "refundstarpayment":
                user_id = _number(params, "user_id")
                charge_id = str(params.get("telegram_payment_charge_id") or "")
                charge = self._charges.get(charge_id)
                if charge is None or charge.user_id != user_id:
                    raise ApiError(400, CHARGE_NOT_FOUND)
                if charge.refunded:
                    raise ApiError(400, CHARGE_ALREADY_REFUNDED)
                self._refund(charge_id, charge)
                return True
            if method == "edituserstarsubscription":
                return self._edit_subscription(params)
            if method == "getstartransactions":
                offset, limit = _number(params, "offset", 0), _number(params, "limit", 100)
                if offset < 0:
                    raise ApiError(400, OFFSET_INVALID)
                if not 1 <= limit <= 100:
                    raise ApiError(400, LIMIT_INVALID)
                newest = sorted(self._ledger, key=lambda t: (t.date, t.seq), reverse=True)
                return {"transactions": [self._tx_api(t) for t in newest[offset:][:limit]]}
        raise ApiError(404, "Not Found")

    def _send_invoice(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        try:
            chat_id = int(chat_id)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise bad_request("chat not found") from None
        if _given(params, "subscription_period"):
            raise ApiError(400, PERIOD_NOT_HERE)
        issued = self._invoice_of(params, link=False)
        markup = self._markup(params)
        rows = (markup or {}).get("inline_keyboard") or []
        if rows and (not rows[0] or not rows[0][0].get("pay")):
            raise ApiError(400, BUY_BUTTON_FIRST)
        start = str(params.get("start_parameter") or "")
        invoice: dict[str, Any] = {"title": issued.title, "description": issued.description}
        invoice |= {"start_parameter": start, "currency": issued.currency}
        invoice |= {"total_amount": issued.amount}
        msg = self._new(
            chat_id,
            True,
            plain=f"{issued.title}\n{issued.description}",
            reply_markup=markup,
            invoice=invoice,
        )
        issued.chat_id, issued.message_id = chat_id, msg.message_id
        self._issued.append(issued)
        return self.to_api(msg)

    def _invoice_of(self, params: dict[str, Any], *, link: bool) -> IssuedInvoice:
        """The checked invoice of a sendInvoice / createInvoiceLink call."""
        title, description = str(params.get("title") or ""), str(params.get("description") or "")
        payload = str(params.get("payload") or "")
        if not 1 <= len(title) <= 32:
            raise ApiError(400, TITLE_INVALID)
        if not 1 <= len(description) <= 255:
            raise ApiError(400, DESCRIPTION_INVALID)
        if not 1 <= len(payload.encode()) <= 128:
            raise ApiError(400, PAYLOAD_INVALID)
        currency = str(params.get("currency") or "")
        if currency != STARS or _given(params, "provider_token"):
            raise ApiError(400, PROVIDER_INVALID)  # the fake has no payment provider
        if _given(params, "max_tip_amount") or _given(params, "suggested_tip_amounts"):
            raise ApiError(400, STARS_INVOICE_INVALID)
        prices = params.get("prices")
        if isinstance(prices, str):
            try:
                prices = json.loads(prices)
            except ValueError:
                raise ApiError(400, PRICES_UNPARSABLE) from None
        well_formed = isinstance(prices, list) and all(
            isinstance(p, dict) and isinstance(p.get("label"), str) and "amount" in p
            for p in prices
        )
        if not well_formed:
            raise ApiError(400, PRICES_UNPARSABLE)
        assert isinstance(prices, list)
        if len(prices) != 1:
            raise ApiError(400, STARS_INVOICE_INVALID)
        amount = prices[0]["amount"]
        if isinstance(amount, str) and amount.isdigit():
            amount = int(amount)
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ApiError(400, AMOUNT_INVALID)
        period: int | None = None
        if link and params.get("subscription_period") not in (None, ""):
            try:
                period = int(params["subscription_period"])
            except (TypeError, ValueError):
                raise ApiError(400, PERIOD_INVALID) from None
            if period != SUBSCRIPTION_PERIOD_S:
                raise ApiError(400, PERIOD_INVALID)
        ceiling = MAX_SUBSCRIPTION_STARS if period else MAX_INVOICE_STARS
        if not 1 <= amount <= ceiling:
            raise ApiError(400, AMOUNT_INVALID)
        return IssuedInvoice(title, description, payload, currency, amount, period)

    def _answer_query(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("pre_checkout_query_id") or "")
        ok = _flag(params, "ok")
        pending = self._queries.get(query_id)
        if pending is None:
            raise ApiError(400, QUERY_INVALID)
        took = time.monotonic() - pending.started
        if took > self.precheckout_deadline_s:
            self._expire(query_id)
            raise ApiError(400, QUERY_INVALID)
        error_message = str(params.get("error_message") or "")
        if not ok and not error_message:
            raise ApiError(400, ERROR_MESSAGE_EMPTY)
        del self._queries[query_id]
        pending.timer.cancel()
        payment = pending.payment
        payment.answered_in_s = took
        if ok:
            self._charge(pending)
        else:
            payment.outcome = f"refused: {error_message}"
        payment.done.set()
        return True

    def _edit_subscription(self, params: dict[str, Any]) -> bool:
        user_id = _number(params, "user_id")
        charge_id = str(params.get("telegram_payment_charge_id") or "")
        canceled = _flag(params, "is_canceled")
        sub = next(
            (s for s in self._subscriptions if s.user_id == user_id and charge_id in s.charge_ids),
            None,
        )
        if sub is None:
            raise ApiError(400, CHARGE_ID_INVALID)
        if not canceled and sub.ended:
            raise ApiError(400, SUBSCRIPTION_EXPIRED)
        sub.renewal_on = not canceled
        return True

    # --- helpers --------------------------------------------------------------------------------

    def _issued_for(self, invoice: ChatMessage | str) -> IssuedInvoice:
        if isinstance(invoice, str):
            found = next((i for i in self._issued if i.link == invoice), None)
            if found is None:
                raise ValueError(f"the bot created no invoice link {invoice!r}")
            return found
        found = next(
            (
                i
                for i in self._issued
                if i.chat_id == invoice.chat_id and i.message_id == invoice.message_id
            ),
            None,
        )
        now = self._message_now(found) if found else None
        if found is None or now is None or now.deleted:
            raise ValueError(f"message {invoice.message_id} is not an invoice the user can pay")
        return found

    def _query_id(self) -> str:
        while True:
            query_id = str(secrets.randbelow(9 * 10**18) + 10**18)
            if query_id not in self._queries:
                return query_id

    def _charge_id(self) -> str:
        while True:
            charge_id = "stx" + secrets.token_urlsafe(48)
            if charge_id not in self._charges:
                return charge_id

    def _expire(self, query_id: str) -> None:
        """The pre-checkout query's deadline passed without an answer (a timer, or a late
        answer that found it first)."""
        with self._lock:
            pending = self._queries.pop(query_id, None)
            if pending is None:
                return
            pending.timer.cancel()
            pending.payment.outcome = "timed out"
            pending.payment.done.set()

    def _charge(self, pending: _Pending) -> None:
        payment, issued = pending.payment, pending.invoice
        date = self._ts(pending.now_s)
        sub: StarSubscription | None = None
        charge_id = self._charge_id()
        if issued.subscription_period:
            expiration = date + issued.subscription_period
            sub = StarSubscription(
                payment.user_id, issued.payload, issued.amount, issued.link, [], expiration
            )
            self._subscriptions.append(sub)
        self._book(charge_id, payment, date, sub)
        extra: dict[str, Any] = {}
        if sub is not None:
            extra = {"is_recurring": True, "is_first_recurring": True}
            extra["subscription_expiration_date"] = sub.expiration_date
        self._announce(payment, charge_id, extra, lose_update=pending.lose_update)

    def _renew(self, sub: StarSubscription) -> Payment:
        payment = Payment(
            sub.user_id, sub.invoice_payload, STARS, sub.total_amount, SUBSCRIPTION_PERIOD_S, None
        )
        date = sub.expiration_date
        sub.expiration_date += SUBSCRIPTION_PERIOD_S
        charge_id = self._charge_id()
        self._book(charge_id, payment, date, sub)
        extra = {"is_recurring": True, "subscription_expiration_date": sub.expiration_date}
        self._announce(payment, charge_id, extra, lose_update=False)
        payment.done.set()
        return payment

    def _book(
        self, charge_id: str, payment: Payment, date: int, sub: StarSubscription | None
    ) -> None:
        """A charge: the ledger's incoming transaction and the charge's record."""
        period = payment.subscription_period
        amount, payload = payment.total_amount, payment.invoice_payload
        self._charges[charge_id] = _Charge(payment.user_id, amount, payload, period, sub, date)
        seq = len(self._ledger)
        self._ledger.append(
            _Tx(charge_id, amount, date, payment.user_id, payload, period, True, seq)
        )
        if sub is not None:
            sub.charge_ids.append(charge_id)
        payment.charge_id, payment.date, payment.outcome = charge_id, date, "paid"
        payment.subscription_expiration_date = sub.expiration_date if sub else None

    def _announce(
        self, payment: Payment, charge_id: str, extra: dict[str, Any], *, lose_update: bool
    ) -> None:
        """The user's service message with ``successful_payment`` (its update unless lost)."""
        paid: dict[str, Any] = {"currency": payment.currency, "total_amount": payment.total_amount}
        paid |= {"invoice_payload": payment.invoice_payload}
        paid |= {"telegram_payment_charge_id": charge_id, "provider_payment_charge_id": ""}
        paid |= extra
        msg = self._new(payment.user_id, False, plain="", successful_payment=paid)
        if not lose_update:
            update = self.add_update({"message": self.to_api(msg)})
            payment.update_id = int(update["update_id"])

    def _refund(self, charge_id: str, charge: _Charge, now_s: float | None = None) -> None:
        """The outgoing transaction, dated no earlier than the charge it refunds."""
        charge.refunded = True
        date, seq = max(self._ts(now_s), charge.date), len(self._ledger)
        user_id, payload = charge.user_id, charge.payload
        self._ledger.append(_Tx(charge_id, charge.amount, date, user_id, payload, None, False, seq))
        if charge.subscription is not None:
            charge.subscription.renewal_on = False

    def _tx_api(self, tx: _Tx) -> dict[str, Any]:
        partner: dict[str, Any] = {"type": "user", "transaction_type": "invoice_payment"}
        partner |= {"user": self._user(tx.user_id), "invoice_payload": tx.payload}
        if tx.period:
            partner["subscription_period"] = tx.period
        out: dict[str, Any] = {"id": tx.id, "amount": tx.amount, "date": tx.date}
        out["source" if tx.incoming else "receiver"] = partner
        return copy.deepcopy(out)
