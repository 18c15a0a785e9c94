"""Property-based tests of ``payments.deposits.matching.match_deposits``: for random invoices,
reservations
and deposits (exact, near, rounded and unrelated amounts; random ts, depIds, addresses and states)
the decisions never depend on the order of the batch or of the snapshot, every deposit is decided
once, no invoice counts the same reserved amount twice, and no deposit credits a stranger."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments import states as sts
from payments.deposits.matching import Attach, Snapshot, Unmatched, match_deposits
from payments.facts import DepositFacts, InvoiceFacts
from payments.money import format_units
from tests.helpers_facts import RULES, T, as_attached, deposit, invoice, reservation, snapshot

MIN = 60_000
STEP = Decimal("0.0001")
ADDRESSES = ["POOL", "TAddrA", "TAddrB"]
CURRENCIES = ["USDT", "USDC"]
CHAINS = {"USDT": "USDT-TRC20", "USDC": "USDC-TRC20"}
INEXACT_KINDS = frozenset({sts.KIND_TOLERANCE, sts.KIND_OVER, sts.KIND_PARTIAL})
RESERVED_KINDS = frozenset(
    {sts.KIND_EXACT, sts.KIND_TOPUP, sts.KIND_DUPLICATE, sts.KIND_AFTER_CLOSE}
)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

offsets = st.integers(1, 99).filter(lambda k: k % 10 != 0)  # unique amounts never end in 0


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Snapshot, list[DepositFacts]]:
    count = draw(st.integers(1, 6))
    ks = draw(st.lists(offsets, min_size=count, max_size=count, unique=True))
    topup_ks = draw(st.lists(offsets, min_size=count, max_size=count, unique=True))
    invoices: list[InvoiceFacts] = []
    extra = []
    attached: dict[str, list[DepositFacts]] = {}
    for i, (k, topup_k) in enumerate(zip(ks, topup_ks, strict=True)):
        currency = draw(st.sampled_from(CURRENCIES))
        inv = invoice(
            f"I{i}",
            format_units(2_900_000_000 + k * 10_000, STEP),
            currency=currency,
            chain=CHAINS[currency],
            address=draw(st.sampled_from(ADDRESSES)),
            status=draw(st.sampled_from(sorted(sts.ALL_STATUSES))),
            created_at=T + draw(st.integers(0, 180)) * MIN,
            frozen=draw(st.integers(0, 9)) == 0,
        )
        invoices.append(inv)
        if draw(st.booleans()):
            topup = format_units(1_000_000_000 + topup_k * 10_000, STEP)
            extra.append(reservation(inv, topup, kind="topup"))
        if draw(st.integers(0, 3)) == 0:  # its exact amount arrived in an earlier poll
            earlier = deposit(f"e{i}", format_units(inv.amount_units, STEP), currency=currency)
            attached[inv.id] = [as_attached(earlier, inv.id, matched_state="0")]
    earlier_polls = dict(attached)

    amounts = [format_units(inv.amount_units, STEP) for inv in invoices]
    amounts += [format_units(r.amount_units, STEP) for r in extra]
    dep_ids = draw(st.lists(st.integers(0, 999), min_size=1, max_size=8, unique=True))
    batch: list[DepositFacts] = []
    for n in dep_ids:
        amount = draw(
            st.one_of(
                st.sampled_from(amounts),  # exact
                st.sampled_from(amounts).map(lambda a: a + "000"),  # exact, other text
                st.sampled_from(["29", "29.00", "29.003", "10", "28.42"]),  # rounded
                st.integers(2_800_000_000, 3_000_000_000).map(lambda u: format_units(u, STEP)),
                st.decimals(Decimal("28"), Decimal("30"), places=10).map(str),  # near
                st.decimals(Decimal("5"), Decimal("28.5"), places=4).map(str),  # partial
                st.decimals(Decimal("0.5"), Decimal("100"), places=6).map(str),  # unrelated
            )
        )
        currency = draw(st.sampled_from([inv.currency for inv in invoices] + CURRENCIES))
        to = draw(st.sampled_from([*ADDRESSES, "TElsewhere", ""]))
        dep = deposit(
            f"d{n:03d}",
            amount,
            currency=currency,
            chain=draw(st.sampled_from([CHAINS[currency], f"{currency}-ERC20"])),
            to=to,
            type="3" if to == "" else draw(st.sampled_from(["4", "4", "3"])),
            state=draw(st.sampled_from(["0", "1", "2", "12", "99"])),
            ts=draw(
                st.one_of(
                    st.sampled_from([T + 5 * MIN, T + 60 * MIN]),  # shared milliseconds
                    st.integers(T - 60 * MIN, T + 30 * 60 * MIN),
                )
            ),
        )
        mode = draw(st.integers(0, 9))
        bare = [inv for inv in invoices if inv.id not in attached]
        if mode == 0 and bare:  # attached to its invoice by an earlier poll, changed since
            inv = draw(st.sampled_from(bare))
            exact = format_units(inv.amount_units, STEP)
            matched = draw(st.sampled_from(["0", "2"]))
            dep = deposit(dep.dep_id, exact, currency=inv.currency, state=dep.state, ts=dep.ts)
            dep = as_attached(dep, inv.id, matched_state=matched)
            attached[inv.id] = [dep]  # at most one attached deposit per invoice
        elif mode == 1:
            dep = deposit(dep.dep_id, amount, currency=currency, disposition="unmatched")
        batch.append(dep)
    # the snapshot holds what is attached and not being decided again (as load_snapshot does)
    return snapshot(*invoices, extra=extra, attached=earlier_polls), batch


@PROPERTY
@given(scenarios(), st.data())
def test_decisions_do_not_depend_on_batch_or_snapshot_order(
    scenario: tuple[Snapshot, list[DepositFacts]], data: st.DataObject
) -> None:
    snap, batch = scenario
    decisions = match_deposits(batch, snap, RULES)
    shuffled = data.draw(st.permutations(batch))
    again = match_deposits(shuffled, snap, RULES)
    assert Counter(again) == Counter(decisions)
    order = data.draw(st.permutations(list(snap.invoices)))
    reordered = Snapshot(
        invoices={k: snap.invoices[k] for k in order},
        reservations=snap.reservations,
        attached=snap.attached,
    )
    assert Counter(match_deposits(batch, reordered, RULES)) == Counter(decisions)


@PROPERTY
@given(scenarios())
def test_every_deposit_is_decided_once_and_never_counted_twice(
    scenario: tuple[Snapshot, list[DepositFacts]],
) -> None:
    snap, batch = scenario
    decisions = match_deposits(batch, snap, RULES)
    by_dep = {d.dep_id: d for d in batch}

    # every new or attached deposit gets exactly one decision; unmatched ones none
    decided = Counter(d.dep_id for d in decisions)
    assert all(n == 1 for n in decided.values())
    assert set(decided) == {d.dep_id for d in batch if d.disposition != "unmatched"}

    # no invoice counts two deposits of one of its reserved amounts
    counted: dict[str, list[int | None]] = {
        inv_id: [d.amount_units for d in deps if d.match_kind in sts.COUNTED_KINDS]
        for inv_id, deps in snap.attached.items()
    }
    for dep in batch:  # attached in an earlier poll, re-read now: still attached
        if dep.disposition == "attached" and dep.invoice_id and dep.match_kind in sts.COUNTED_KINDS:
            counted.setdefault(dep.invoice_id, []).append(dep.amount_units)
    for decision in decisions:
        if isinstance(decision, Attach) and decision.kind in sts.COUNTED_KINDS:
            counted.setdefault(decision.invoice_id, []).append(by_dep[decision.dep_id].amount_units)
    for (_, units), res in snap.reservations.items():
        assert counted.get(res.invoice_id, []).count(units) <= 1

    for decision in decisions:
        if isinstance(decision, Unmatched):
            assert decision.reason in {
                "no_candidate",
                "ambiguous",
                "after_window",
                "address_owner",
                "possible_duplicate",
                "maybe_closed_invoice",
            }
        if not isinstance(decision, Attach):
            continue
        dep, inv = by_dep[decision.dep_id], snap.invoices[decision.invoice_id]
        assert dep.currency == inv.currency
        assert dep.ts >= inv.created_at - RULES.pre_invoice_slack_ms  # never before the invoice
        if decision.kind in RESERVED_KINDS:  # only the invoice that holds that very amount
            assert dep.amount_units is not None
            assert snap.reservations[(dep.currency, dep.amount_units)].invoice_id == inv.id
            assert dep.amount_units % 10_000 == 0 and (dep.amount_units // 10_000) % 10 != 0
        else:
            assert decision.kind in INEXACT_KINDS
            assert inv.status in sts.UNPAID_STATUSES and not inv.frozen
            assert dep.ts <= inv.monitor_until
            owners = [
                i
                for i in snap.invoices.values()
                if dep.type != "3"
                and dep.to_address
                and i.address == dep.to_address
                and i.currency == dep.currency
                and i.status in sts.UNPAID_STATUSES
                and (i.status != sts.EXPIRED or dep.ts <= i.monitor_until)
            ]
            if len(owners) == 1:  # its address's only unpaid invoice, never a stranger
                assert inv.id == owners[0].id
            elif decision.kind == sts.KIND_PARTIAL:
                raise AssertionError("a partial payment needs an address of its own")
