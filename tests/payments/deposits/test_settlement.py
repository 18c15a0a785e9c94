"""Pure unit tests of ``payments.deposits.settlement.evaluate`` (docs/architecture.md, 4): what
status and
exceptions an invoice's attached deposits call for. No database: facts in, a verdict out."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments import states as sts
from payments.deposits.settlement import Verdict, evaluate
from payments.facts import DepositFacts, InvoiceFacts
from tests.helpers_facts import CHAIN, POOL, RULES, T, as_attached, deposit, invoice, rules

MIN = 60_000
A = invoice("A", "29.0037")
GRACE = RULES.late_grace_ms
LATE = A.expires_at + GRACE + 1  # a deposit created after expiry and its grace
ONE = Decimal(1)


def on_a(
    amount: str = "29.0037",
    kind: str = "exact",
    *,
    state: str = "2",
    ts: int = T + 10 * MIN,
    dep_id: str = "d1",
    chain: str = CHAIN,
    to: str = POOL,
) -> DepositFacts:
    dep = deposit(dep_id, amount, state=state, ts=ts, chain=chain, to=to)
    return as_attached(dep, "A", kind)


def verdict(
    inv: InvoiceFacts, *deposits: DepositFacts, rate: Decimal | None = ONE, settle_on: int = 2
) -> Verdict:
    return evaluate(inv, deposits, rules(settle_on_state=settle_on), rate_now=rate)


# --- settled amounts ----------------------------------------------------------------------------


def test_settled_exact_payment_pays() -> None:
    assert verdict(A, on_a()) == Verdict(
        status="paid",
        exceptions=frozenset(),
        received=Decimal("29.0037"),
        settled=Decimal("29.0037"),
        shortfall=Decimal(0),
        partial=False,
        late_review=False,
        on_hold=False,
    )


@pytest.mark.parametrize(
    ("amount", "status", "exceptions", "shortfall"),
    [
        ("28.42", "paid", set(), "0.5837"),  # exactly the lower bound: 29 - 2 %
        ("28.9", "paid", set(), "0.1037"),
        ("29.0038", "paid", {"paid_over"}, "0"),
        ("35", "paid", {"paid_over"}, "0"),
        ("28.4199", "processing", {"paid_partial"}, "0.5838"),
        ("10", "processing", {"paid_partial"}, "19.0037"),
    ],
)
def test_settled_total_against_the_lower_bound(
    amount: str, status: str, exceptions: set[str], shortfall: str
) -> None:
    result = verdict(A, on_a(amount, "tolerance"))
    assert (result.status, set(result.exceptions)) == (status, exceptions)
    assert result.shortfall == Decimal(shortfall)
    assert result.partial is (status == "processing")


def test_partial_payments_add_up() -> None:
    result = verdict(A, on_a("10", "partial"), on_a("18.5", "tolerance", dep_id="d2"))
    assert (result.status, result.received, result.exceptions) == (
        "paid",
        Decimal("28.5"),
        frozenset(),
    )


def test_chain_allowance_lowers_the_bound() -> None:
    wide = rules(allowances={CHAIN: "1"})
    assert evaluate(A, [on_a("27.42", "tolerance")], wide, rate_now=ONE).status == "paid"
    assert evaluate(A, [on_a("27.41", "tolerance")], wide, rate_now=ONE).status == "processing"


def test_partial_after_expiry_waits_for_an_admin_without_a_top_up() -> None:
    result = verdict(replace(A, status="expired"), on_a("10", "partial"))
    assert (result.status, result.exceptions, result.partial) == (
        "expired",
        frozenset({"paid_partial"}),
        False,
    )


def test_paid_top_up_is_not_an_over_payment() -> None:
    # 10 paid, then the top-up asked (19.0043, at least minDep) paid exactly: 29.0043 in all
    topped = replace(A, status="processing", topup_units=1_900_430_000)
    result = verdict(topped, on_a("10", "partial"), on_a("19.0043", "topup", dep_id="d2"))
    assert (result.status, result.exceptions) == ("paid", frozenset())


# --- deposit states -----------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["0", "1", "8", "17"])
def test_waiting_states_keep_the_invoice_processing(state: str) -> None:
    result = verdict(A, on_a(state=state))
    assert (result.status, result.exceptions) == ("processing", frozenset())
    assert (result.received, result.settled, result.partial) == (
        Decimal("29.0037"),
        Decimal(0),
        False,
    )


@pytest.mark.parametrize("state", ["11", "12", "13", "14", "99", "", "2 "])
def test_on_hold_and_unknown_states_never_pay(state: str) -> None:
    result = verdict(A, on_a(state=state))
    assert (result.status, result.exceptions) == ("processing", frozenset({"on_hold"}))
    assert (result.on_hold, result.settled, result.partial) == (True, Decimal(0), False)
    # together with a settled partial payment it is still not paid
    mixed = verdict(A, on_a("10", "partial", dep_id="d0"), on_a("19.0037", state=state))
    assert (mixed.status, mixed.settled, mixed.on_hold) == ("processing", Decimal(10), True)


def test_on_hold_deposit_settles_once_okx_releases_it() -> None:
    held = replace(A, status="processing", exceptions=frozenset({"on_hold"}))
    result = verdict(held, on_a(state="2"))
    assert (result.status, result.on_hold) == ("paid", False)


def test_settle_on_state_one() -> None:
    assert verdict(A, on_a(state="1"), settle_on=1).status == "paid"
    assert verdict(A, on_a(state="1"), settle_on=2).status == "processing"
    for state in ["0", "8", "17"]:
        assert verdict(A, on_a(state=state), settle_on=1).status == "processing"


# --- late payments ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "expired"])
def test_late_payment_that_keeps_its_value_pays_late(status: str) -> None:
    result = verdict(replace(A, status=status), on_a(ts=LATE), rate=Decimal("1"))
    assert (result.status, result.exceptions, result.late_review) == (
        "paid",
        frozenset({"paid_late"}),
        False,
    )


@pytest.mark.parametrize("rate", [Decimal("0.97"), None])
def test_late_payment_that_lost_value_or_has_no_rate_goes_to_review(rate: Decimal | None) -> None:
    # 29.0037 x 0.97 = 28.13 USD: below 29 - 2 %; no current rate: nothing to judge by
    result = verdict(replace(A, status="expired"), on_a(ts=LATE), rate=rate)
    assert (result.status, result.exceptions, result.late_review) == (
        "expired",
        frozenset({"paid_late"}),
        True,
    )


def test_lateness_is_judged_by_the_deposit_ts_with_grace() -> None:
    on_time = verdict(replace(A, status="expired"), on_a(ts=A.expires_at + GRACE), rate=None)
    assert (on_time.status, on_time.exceptions) == ("paid", frozenset())


def test_late_btc_payment_is_judged_at_the_current_rate() -> None:
    btc = invoice(
        "A", "0.00032223", currency="BTC", chain="BTC-Bitcoin", rate="90000", step="0.00000001"
    )
    btc = replace(btc, status="expired")  # 29 USD / 90,000 = 0.00032223 BTC (rounded up)
    dep = as_attached(
        deposit("d1", "0.00032223", currency="BTC", chain="BTC-Bitcoin", ts=LATE), "A"
    )
    risen = evaluate(btc, [dep], RULES, rate_now=Decimal("95000"))
    assert (risen.status, risen.exceptions) == ("paid", frozenset({"paid_late"}))
    fallen = evaluate(btc, [dep], RULES, rate_now=Decimal("85000"))  # 27.39 USD
    assert (fallen.status, fallen.late_review) == ("expired", True)


# --- frozen and closed invoices, duplicates, mismatches -----------------------------------------


@pytest.mark.parametrize("status", ["pending", "processing", "expired"])
def test_frozen_invoice_never_moves(status: str) -> None:
    frozen = replace(A, status=status, frozen=True)
    assert verdict(frozen, on_a()).status == status
    assert verdict(frozen, on_a("10", "partial")).partial is False


def test_duplicates_never_count_toward_the_total() -> None:
    result = verdict(A, on_a(), on_a(kind="duplicate", dep_id="d2"))
    assert (result.status, result.received, result.exceptions) == (
        "paid",
        Decimal("29.0037"),
        frozenset({"duplicate"}),  # and not paid_over
    )
    paid = verdict(replace(A, status="paid"), on_a(), on_a(kind="duplicate", dep_id="d2"))
    assert (paid.status, paid.exceptions) == ("paid", frozenset({"duplicate"}))


@pytest.mark.parametrize("status", ["cancelled", "invalid"])
def test_payment_after_close_is_flagged_and_credits_nothing(status: str) -> None:
    result = verdict(replace(A, status=status), on_a(kind="after_close"))
    assert (result.status, result.received, result.exceptions) == (
        status,
        Decimal(0),
        frozenset({"paid_late"}),
    )


def test_mismatch_of_a_counted_deposit_is_recorded() -> None:
    other_chain = verdict(A, on_a(chain="USDT-ERC20", to="0xabc"))
    assert (other_chain.status, other_chain.exceptions) == ("paid", frozenset({"mismatch"}))
    internal = verdict(A, as_attached(deposit("d1", type="3", to=""), "A"))
    assert (internal.status, internal.exceptions) == ("paid", frozenset())


def test_no_deposit_changes_nothing() -> None:
    kept = replace(A, exceptions=frozenset({"marked"}))
    assert (verdict(kept).status, verdict(kept).exceptions) == ("pending", frozenset({"marked"}))


# --- property -----------------------------------------------------------------------------------

ALL_KINDS = sorted(sts.COUNTED_KINDS | {sts.KIND_DUPLICATE, sts.KIND_AFTER_CLOSE})
deposits_on_a = st.lists(
    st.builds(
        on_a,
        amount=st.decimals(Decimal("0.01"), Decimal("40"), places=4).map(str),
        kind=st.sampled_from(ALL_KINDS),
        state=st.sampled_from(["0", "1", "2", "8", "12", "17", "99"]),
        ts=st.integers(T, A.monitor_until),
        dep_id=st.uuids().map(str),
    ),
    max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(
    deposits_on_a,
    st.sampled_from(sorted(sts.ALL_STATUSES)),
    st.booleans(),
    st.sampled_from([None, Decimal("0.9"), ONE, Decimal("1.1")]),
)
def test_only_settled_counted_money_pays(
    deps: list[DepositFacts], status: str, frozen: bool, rate: Decimal | None
) -> None:
    inv = replace(A, status=status, frozen=frozen)
    result = evaluate(inv, deps, RULES, rate_now=rate)
    counted = [d for d in deps if d.match_kind in sts.COUNTED_KINDS]
    assert result.received == sum((d.amount for d in counted), Decimal(0))
    assert result.settled == sum((d.amount for d in counted if d.state == "2"), Decimal(0))
    if frozen or status not in sts.UNPAID_STATUSES:
        assert result.status == status
    elif result.status == "paid":
        assert result.settled >= RULES.lower_bound(inv)
    assert result.status in sts.ALL_STATUSES
    assert inv.exceptions <= result.exceptions <= sts.ALL_EXCEPTIONS
