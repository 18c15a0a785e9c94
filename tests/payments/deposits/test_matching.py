"""Pure unit tests of ``payments.deposits.matching`` (docs/architecture.md, 1-2): which invoice, if
any, each
deposit of a batch belongs to. No database, no HTTP: facts in, decisions out."""

from __future__ import annotations

from dataclasses import replace

import pytest

from payments.deposits.matching import Attach, Freeze, Unmatched, Update, match_deposits
from tests.helpers_facts import (
    RULES,
    TTL_MS,
    T,
    as_attached,
    deposit,
    invoice,
    reservation,
    rules,
    snapshot,
)

MIN = 60_000
A = invoice("A", "29.0037")
B = invoice("B", "29.0041")


# --- exact amounts ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["29.0037", "29.00370000", "29.003700"])
def test_exact_match_by_currency_and_units(text: str) -> None:
    decisions = match_deposits([deposit("d1", text)], snapshot(A, B), RULES)
    assert decisions == [Attach("d1", "A", "exact")]


def test_same_amount_of_another_currency_is_not_exact() -> None:
    usdc = invoice("C", "29.0041", currency="USDC", chain="USDC-TRC20")
    decisions = match_deposits(
        [deposit("d1", "29.0037", currency="USDC", chain="USDC-TRC20")], snapshot(A, usdc), RULES
    )
    assert decisions == [Attach("d1", "C", "tolerance")]  # inexact, the only USDC invoice


def test_more_decimals_than_the_scale_never_exact_matches() -> None:
    # truncated to 8 decimals this would be 29.0037 exactly: it must not become an exact match
    dep = deposit("d1", "29.003700001")
    assert dep.amount_units is None
    assert match_deposits([dep], snapshot(A, B), RULES) == [
        Unmatched("d1", "ambiguous", candidates=("A", "B"))
    ]
    assert match_deposits([dep], snapshot(A), RULES) == [Attach("d1", "A", "over")]


def test_eth_with_twelve_decimals_never_exact_matches() -> None:
    eth = invoice(
        "E", "0.01234571", currency="ETH", chain="ETH-ERC20", rate="2349", step="0.00000001"
    )
    dep = deposit("d1", "0.012345710001", currency="ETH", chain="ETH-ERC20")
    decisions = match_deposits([dep], snapshot(eth), RULES)
    assert decisions == [Attach("d1", "E", "over")]


@pytest.mark.parametrize("text", ["29", "29.0", "29.00", "29.0000"])
def test_rounded_deposit_never_exact_matches(text: str) -> None:
    # a wallet that sent 29.0037 rounded to two decimals: inexact, decided by tolerance
    assert match_deposits([deposit("d1", text)], snapshot(A), RULES) == [
        Attach("d1", "A", "tolerance")
    ]
    assert match_deposits([deposit("d1", text)], snapshot(A, B), RULES) == [
        Unmatched("d1", "ambiguous", candidates=("A", "B"))
    ]
    # even if an amount ending in 0 were reserved (the allocator never issues one), it is not
    # an exact match: fewer decimals than the step never counts as exact
    z = invoice("Z", "29.0000")
    assert match_deposits([deposit("d1", text)], snapshot(A, z), RULES) == [
        Unmatched("d1", "ambiguous", candidates=("A", "Z"))
    ]
    decisions = match_deposits([deposit("d1", text)], snapshot(z), RULES)
    assert [d for d in decisions if isinstance(d, Attach) and d.kind == "exact"] == []


def test_truncated_to_fewer_decimals_never_exact_matches() -> None:
    y = invoice("Y", "29.0030")  # impossible by construction; the matcher must not rely on it
    decisions = match_deposits([deposit("d1", "29.003")], snapshot(y, A), RULES)
    assert decisions == [Unmatched("d1", "ambiguous", candidates=("A", "Y"))]


# --- time ---------------------------------------------------------------------------------------


def test_deposit_created_before_the_invoice_never_matches() -> None:
    slack = RULES.pre_invoice_slack_ms
    early = deposit("d1", ts=T - slack - 1)
    assert match_deposits([early], snapshot(A), RULES) == [Unmatched("d1", "address_owner", "A")]
    on_edge = deposit("d2", ts=T - slack)
    assert match_deposits([on_edge], snapshot(A), RULES) == [Attach("d2", "A", "exact")]


def test_deposit_after_the_reservation_hold_goes_to_an_admin() -> None:
    held = T + 3 * 60 * MIN
    snap = snapshot(A, main=False, extra=[reservation(A, held_until=held)])
    late = deposit("d1", ts=held + 1)
    assert match_deposits([late], snap, RULES) == [Unmatched("d1", "after_window", "A")]
    assert match_deposits([deposit("d2", ts=held)], snap, RULES) == [Attach("d2", "A", "exact")]


def test_expired_invoice_inside_the_window_still_matches_exactly() -> None:
    expired = replace(A, status="expired")
    dep = deposit("d1", ts=T + TTL_MS + 5 * 60 * MIN)
    assert match_deposits([dep], snapshot(expired), RULES) == [Attach("d1", "A", "exact")]


# --- closed invoices, top-ups, duplicates -------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [("paid", "duplicate"), ("cancelled", "after_close"), ("invalid", "after_close")],
)
def test_payment_to_a_closed_invoice_attaches_for_an_admin(status: str, kind: str) -> None:
    closed = replace(A, status=status)
    decisions = match_deposits([deposit("d1")], snapshot(closed, B), RULES)
    assert decisions == [Attach("d1", "A", kind)]


def test_topup_reservation_attaches_as_topup_and_only_once() -> None:
    partial = invoice("A", status="processing", address="TAddrA", topup="19.0043")
    snap = snapshot(
        partial,
        B,
        extra=[reservation(partial, "19.0043", kind="topup")],
        attached={"A": [as_attached(deposit("d0", "10", to="TAddrA"), "A", "partial")]},
    )
    batch = [deposit("d2", "19.0043", ts=T + 30 * MIN), deposit("d1", "19.0043", ts=T + 20 * MIN)]
    assert match_deposits(batch, snap, RULES) == [
        Attach("d1", "A", "topup", mismatch=True),  # to POOL, not to the invoice's own TAddrA
        Attach("d2", "A", "duplicate", mismatch=True),
    ]


def test_topup_of_the_same_amount_as_the_partial_payment_counts() -> None:
    # a customer who pays in two equal halves: the top-up asked equals the partial payment
    # (soak finding: the top-up was taken for a second payment of the partial's amount)
    partial = invoice("A", status="processing", address="TAddrA", topup="14.5019")
    snap = snapshot(
        partial,
        B,
        extra=[reservation(partial, "14.5019", kind="topup")],
        attached={"A": [as_attached(deposit("d0", "14.5019", to="TAddrA"), "A", "partial")]},
    )
    topup = deposit("d1", "14.5019", to="TAddrA", ts=T + 20 * MIN)
    assert match_deposits([topup], snap, RULES) == [Attach("d1", "A", "topup")]


@pytest.mark.parametrize(("ts1", "ts2"), [(T + 5 * MIN, T + 9 * MIN), (T + 9 * MIN, T + 9 * MIN)])
def test_two_same_exact_deposits_in_one_batch(ts1: int, ts2: int) -> None:
    batch = [deposit("d2", ts=ts2), deposit("d1", ts=ts1)]
    expected = [Attach("d1", "A", "exact"), Attach("d2", "A", "duplicate")]
    assert match_deposits(batch, snapshot(A, B), RULES) == expected
    assert match_deposits(batch[::-1], snapshot(A, B), RULES) == expected


def test_same_exact_amount_as_an_earlier_attached_deposit_is_a_duplicate() -> None:
    snap = snapshot(
        replace(A, status="processing"),
        attached={"A": [as_attached(deposit("d0", state="0"), "A")]},
    )
    assert match_deposits([deposit("d1")], snap, RULES) == [Attach("d1", "A", "duplicate")]


def test_deposit_re_read_in_the_same_batch_still_counts_for_its_invoice() -> None:
    # d0 was attached by an earlier poll and is decided again now (its state moved on), so the
    # snapshot (which holds only deposits not being decided again) does not list it
    earlier = as_attached(deposit("d0", state="2", ts=T + 5 * MIN), "A", matched_state="0")
    snap = snapshot(replace(A, status="processing"), B)
    assert match_deposits([deposit("d1"), earlier], snap, RULES) == [
        Update("d0", "A"),
        Attach("d1", "A", "duplicate"),  # not a second counted exact payment
    ]
    assert match_deposits([deposit("d2", "29.00"), earlier], snap, RULES) == [
        Update("d0", "A"),
        # A has its money at this address: 29.00 there may be A's payer paying twice
        Unmatched("d2", "possible_duplicate", "A"),
    ]
    by_transfer = deposit("d2", "29.00", type="3", to="")  # no address: nobody's second payment
    assert match_deposits([by_transfer, earlier], snap, RULES) == [
        Update("d0", "A"),
        Attach("d2", "B", "tolerance"),  # A is covered: B is the only candidate left
    ]


# --- chain / address mismatch, internal transfers -----------------------------------------------


def test_other_chain_of_the_currency_still_matches_with_mismatch() -> None:
    dep = deposit("d1", chain="USDT-ERC20", to="0xabc")
    assert match_deposits([dep], snapshot(A, B), RULES) == [Attach("d1", "A", "exact", True)]


def test_other_address_of_ours_still_matches_with_mismatch() -> None:
    dep = deposit("d1", to="TSomeOtherPoolAddress")
    assert match_deposits([dep], snapshot(A, B), RULES) == [Attach("d1", "A", "exact", True)]


def test_internal_transfer_matches_exactly_without_mismatch() -> None:
    dep = deposit("d1", type="3", to="")
    assert match_deposits([dep], snapshot(A, B), RULES) == [Attach("d1", "A", "exact", False)]


# --- inexact amounts ----------------------------------------------------------------------------

PRO99 = invoice("P", "99.0013", price="99")  # same address, far from 29: never a candidate


@pytest.mark.parametrize(
    ("amount", "kind"),
    [("28.42", "tolerance"), ("28.9", "tolerance"), ("29.0037", "exact"), ("29.5", "over")],
)
def test_one_candidate_within_tolerance_settles(amount: str, kind: str) -> None:
    # A and P share the address, so no address owner: the tolerance window alone decides
    decisions = match_deposits([deposit("d1", amount)], snapshot(A, PRO99), RULES)
    assert decisions == [Attach("d1", "A", kind)]


@pytest.mark.parametrize("amount", ["28.4199", "29.6", "15"])
def test_no_candidate_within_tolerance_goes_unmatched(amount: str) -> None:
    decisions = match_deposits([deposit("d1", amount)], snapshot(A, PRO99), RULES)
    assert decisions == [Unmatched("d1", "no_candidate")]


def test_fixed_chain_allowance_widens_the_lower_bound() -> None:
    wide = rules(allowances={"USDT-TRC20": "1"})
    decisions = match_deposits([deposit("d1", "27.42")], snapshot(A, PRO99), wide)
    assert decisions == [Attach("d1", "A", "tolerance")]


def test_two_candidates_within_tolerance_are_ambiguous() -> None:
    decisions = match_deposits([deposit("d1", "28.9")], snapshot(A, B), RULES)
    assert decisions == [Unmatched("d1", "ambiguous", candidates=("A", "B"))]


def test_internal_transfer_is_never_decided_by_address() -> None:
    own = invoice("A", address="TAddrA")
    decisions = match_deposits([deposit("d1", "10", type="3", to="")], snapshot(own), RULES)
    assert decisions == [Unmatched("d1", "no_candidate")]


@pytest.mark.parametrize(("amount", "kind"), [("10", "partial"), ("28.9", None), ("35", "over")])
def test_address_of_its_own_makes_the_invoice_the_only_candidate(
    amount: str, kind: str | None
) -> None:
    own = invoice("A", address="TAddrA")
    others = [B, invoice("C", "29.0043"), PRO99]  # on POOL; B and C fit 28.9 too
    decisions = match_deposits([deposit("d1", amount, to="TAddrA")], snapshot(own, *others), RULES)
    if kind is not None:  # an amount only A can be meant for
        assert decisions == [Attach("d1", "A", kind)]
    else:  # B's or C's payer may have used A's address by mistake: a claim picks
        assert decisions == [Unmatched("d1", "ambiguous", candidates=("A", "B", "C"))]
    alone = match_deposits([deposit("d1", amount, to="TAddrA")], snapshot(own, PRO99), RULES)
    assert alone == [Attach("d1", "A", kind or "tolerance")]


def test_partial_then_rest_to_its_own_address_in_one_batch() -> None:
    own = invoice("A", address="TAddrA")
    batch = [deposit("d2", "19.01", to="TAddrA", ts=T + 20 * MIN), deposit("d1", "10", to="TAddrA")]
    assert match_deposits(batch, snapshot(own, B), RULES) == [
        Attach("d1", "A", "partial"),
        Attach("d2", "A", "over"),  # 29.01 in all, more than 29.0037
    ]


def test_address_shared_by_two_open_invoices_is_no_owner() -> None:
    a, b = invoice("A", address="TAddrA"), invoice("B", "29.0041", address="TAddrA")
    decisions = match_deposits([deposit("d1", "10", to="TAddrA")], snapshot(a, b), RULES)
    assert decisions == [Unmatched("d1", "no_candidate")]


def test_exact_pass_runs_first_whatever_the_ts_order() -> None:
    # earlier, inexact (by internal transfer: no address), fits A and B
    rounded = deposit("d1", "29.00", type="3", to="", ts=T + 5 * MIN)
    exact = deposit("d2", "29.0037", ts=T + 6 * MIN)  # later, exact for A
    decisions = match_deposits([rounded, exact], snapshot(A, B), RULES)
    assert decisions == [Attach("d2", "A", "exact"), Attach("d1", "B", "tolerance")]


def test_deposit_to_a_paid_owners_address_never_credits_another_invoice() -> None:
    # A (its own address) got its exact amount; the same customer sends a rounded 29.00 too.
    # It may be A's payer paying twice: the deposit must not settle B, a stranger.
    own = invoice("A", address="TAddrA")
    batch = [deposit("d1", "29.00", to="TAddrA", ts=T + 5 * MIN), deposit("d2", to="TAddrA")]
    assert match_deposits(batch, snapshot(own, B), RULES) == [
        Attach("d2", "A", "exact"),
        Unmatched("d1", "possible_duplicate", "A"),
    ]
    fresh = invoice("A", address="TAddrA", created_at=T + 60 * MIN)  # created after the deposit
    assert match_deposits([deposit("d1", "29.00", to="TAddrA")], snapshot(fresh, B), RULES) == [
        Unmatched("d1", "address_owner", "A")
    ]


# --- deposits decided before --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("matched_state", "state", "amount", "expected"),
    [
        ("2", "2", "29.0037", Update("d1", "A")),
        ("0", "2", "29.0037", Update("d1", "A")),
        ("0", "12", "29.0037", Update("d1", "A")),  # on hold: the invoice is re-evaluated
        ("2", "0", "29.0037", Freeze("d1", "A", "state_reverted")),
        ("2", "12", "29.0037", Freeze("d1", "A", "state_reverted")),
        ("2", "2", "29.0036", Freeze("d1", "A", "amount_changed")),
        ("0", "2", "30", Freeze("d1", "A", "amount_changed")),
    ],
)
def test_attached_deposit_is_rechecked(
    matched_state: str, state: str, amount: str, expected: object
) -> None:
    dep = deposit(
        "d1",
        amount,
        state=state,
        disposition="attached",
        invoice_id="A",
        kind="exact",
        matched_amount="29.0037",
        matched_state=matched_state,
    )
    assert match_deposits([dep], snapshot(A), RULES) == [expected]


def test_state_one_is_not_a_reversal_when_it_settles() -> None:
    one = rules(settle_on_state=1)
    dep = as_attached(deposit("d1", state="1"), "A", matched_state="2")
    assert match_deposits([dep], snapshot(A), one) == [Update("d1", "A")]
    assert match_deposits([dep], snapshot(A), RULES) == [Freeze("d1", "A", "state_reverted")]


@pytest.mark.parametrize("disposition", ["unmatched", "refunded"])
def test_unmatched_and_refunded_deposits_are_not_decided_again(disposition: str) -> None:
    dep = deposit("d1", disposition=disposition)
    assert match_deposits([dep, deposit("d2", "29.0041")], snapshot(A, B), RULES) == [
        Attach("d2", "B", "exact")
    ]


# --- what a claim may later pick from ---------------------------------------------------------


def test_an_ambiguous_deposit_keeps_exactly_its_eligible_candidates() -> None:
    ts = T + 20 * 60 * MIN  # inside A's monitoring window
    dep = deposit("d1", "28.9", type="3", to="", ts=ts)
    fits = [
        invoice("A", status="expired"),
        invoice("B", "29.0041", status="processing"),
        invoice("C", "29.0043", created_at=ts + RULES.pre_invoice_slack_ms),
    ]
    unfit = [
        invoice("P", "29.0044", status="paid"),
        invoice("F", "29.0046", frozen=True),
        invoice("L", "29.0047", created_at=ts + RULES.pre_invoice_slack_ms + 1),  # too late
        invoice("M", "29.0048", monitor_until=ts - 1),
        invoice("U", "29.0049", currency="USDC", chain="USDC-TRC20"),
        PRO99,
    ]
    [decision] = match_deposits([dep], snapshot(*fits, *unfit), RULES)
    assert decision == Unmatched("d1", "ambiguous", candidates=("A", "B", "C"))
    # a cancelled invoice it could also be for: nobody takes it by itself, an admin decides
    cancelled = invoice("X", "29.0045", status="cancelled")
    [decision] = match_deposits([dep], snapshot(*fits, *unfit, cancelled), RULES)
    assert decision == Unmatched("d1", "maybe_closed_invoice", "X")


def test_an_invoice_already_covered_is_no_candidate() -> None:
    covered = snapshot(A, B, attached={"A": [as_attached(deposit("d0", state="0"), "A")]})
    decisions = match_deposits([deposit("d1", "28.9", type="3", to="")], covered, RULES)
    assert decisions == [Attach("d1", "B", "tolerance")]


def test_a_part_paid_invoice_takes_inexact_money_only_on_its_own_address() -> None:
    own = invoice("A", address="TAddrA")
    part = {"A": [as_attached(deposit("d0", "20", to="TAddrA"), "A", kind="partial")]}
    snap = snapshot(own, B, attached=part)
    assert match_deposits([deposit("d1", "9", to="TAddrA")], snap, RULES) == [
        Attach("d1", "A", "tolerance")
    ]
    # the same money to any other address, or by internal transfer: never A's rest
    for elsewhere in (deposit("d1", "9.1", to="TElsewhere"), deposit("d1", "9.1", type="3", to="")):
        assert match_deposits([elsewhere], snap, RULES) == [Unmatched("d1", "no_candidate")]


def test_a_second_payment_at_a_paid_invoices_address_is_nobody_elses() -> None:
    paid = replace(invoice("A", address="TShared"), status="paid")
    stranger = invoice("S", "29.0041", address="TShared", created_at=T + 20 * 60 * MIN)
    snap = snapshot(paid, stranger, attached={"A": [as_attached(deposit("d0", to="TShared"), "A")]})
    # 0.5 short of A's amount: S is the only unpaid invoice it fits, but it may be A's payer
    # paying twice (an exchange took its fee): an admin decides, S is never credited
    second = deposit("d1", "28.5037", to="TShared")
    assert match_deposits([second], snap, RULES) == [Unmatched("d1", "possible_duplicate", "A")]
    # after A's monitoring window the same deposit is S's by tolerance
    later = deposit("d1", "28.5037", to="TShared", ts=paid.monitor_until + 1)
    assert match_deposits([later], snap, RULES) == [Attach("d1", "S", "tolerance")]


def test_a_partial_payment_for_an_invoice_cancelled_after_it_is_not_the_next_ones() -> None:
    # V paid part of C to the shop's one address, then cancelled C before a poll saw it; W is
    # now the address's only open invoice. The part is V's, or maybe W's: an admin decides.
    cancelled = invoice("C", address="TShared", status="cancelled")
    fresh = invoice("W", "29.0041", address="TShared", customer_id=2)
    part = deposit("d1", "17.4", to="TShared")
    assert match_deposits([part], snapshot(cancelled, fresh), RULES) == [
        Unmatched("d1", "maybe_closed_invoice", "C")
    ]
    # with W alone on the address, the same part is W's partial payment
    assert match_deposits([part], snapshot(fresh), RULES) == [Attach("d1", "W", "partial")]


def test_a_part_of_a_rejected_invoice_is_not_the_next_ones_overpayment() -> None:
    # 59.4 of a 99 invoice, rejected before a poll saw it; W (29) is now the address's only
    # open invoice: for W it would be an overpayment, but it is more likely R's money
    rejected = invoice("R", "99.0001", price="99", address="TShared", status="invalid")
    fresh = invoice("W", "29.0041", address="TShared", customer_id=2)
    part = deposit("d1", "59.4", to="TShared")
    assert match_deposits([part], snapshot(rejected, fresh), RULES) == [
        Unmatched("d1", "maybe_closed_invoice", "R")
    ]


def test_a_payment_for_a_closed_invoice_sent_to_another_address_is_nobodys() -> None:
    # V paid V's invoice short to W's address by mistake, and V's invoice was cancelled
    mine = invoice("V", "29.0037", address="TAddrV", status="cancelled")
    theirs = invoice("W", "29.0041", address="TAddrW", customer_id=2)
    wrong = deposit("d1", "28.7037", to="TAddrW")
    assert match_deposits([wrong], snapshot(mine, theirs), RULES) == [
        Unmatched("d1", "maybe_closed_invoice", "V")
    ]


def test_a_coin_or_chain_the_shop_does_not_sell_is_unmatched_without_a_look() -> None:
    sold = replace(RULES, sold=frozenset({("USDT", "USDT-TRC20")}))
    dust = [
        deposit("d1", "1", currency="TRX", chain="TRX-TRC20"),
        deposit("d2", "29.0037", chain="USDT-Polygon"),  # A's exact amount, on a chain not sold
        deposit("d3", "29.0041"),
    ]
    assert match_deposits(dust, snapshot(A, B), sold) == [
        Unmatched("d1", "not_sold"),
        Unmatched("d2", "not_sold"),
        Attach("d3", "B", "exact"),
    ]


def test_monitoring_window_bounds_inexact_matches() -> None:
    expired = replace(A, status="expired")
    # internal transfers: no address, so P (open, alone on POOL) is not the only candidate
    inside = deposit("d1", "28.9", type="3", to="", ts=A.monitor_until)
    outside = deposit("d2", "28.9", type="3", to="", ts=A.monitor_until + 1)
    assert match_deposits([inside], snapshot(expired, PRO99), RULES) == [
        Attach("d1", "A", "tolerance")
    ]
    assert match_deposits([outside], snapshot(expired, PRO99), RULES) == [
        Unmatched("d2", "no_candidate")
    ]
