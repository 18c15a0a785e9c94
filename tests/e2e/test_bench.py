"""The benchmarks still run (tiny sizes) and their figures have the right shape; no times."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench import __main__ as runner
from bench import (
    contention,
    flood,
    history_cost,
    history_scale,
    poll_cost,
    process_cost,
    qr_render,
    refusals,
)
from tests.paths import REPO

ROOT = REPO


def _table(text: str, first_cell: str) -> list[list[str]]:
    """The rows of the markdown table whose header starts with ``first_cell``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_cell} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


async def test_poll_requests_do_not_depend_on_the_number_of_open_invoices() -> None:
    results, _ = await poll_cost.run((3, 30), (4,), extra=False)
    sqlite = [r for r in results if r.backend == "sqlite"]
    assert [r.invoices for r in sqlite] == [3, 30]
    assert [r.requests for r in sqlite] == [1, 1]  # one page of history for four deposits
    assert [r.paid for r in sqlite] == [2, 2]  # half of the deposits pay an invoice
    assert sqlite[0].rows_read == sqlite[1].rows_read > 0  # nor do the rows the poll reads


def test_poll_cost_section_is_a_table() -> None:
    rows = _table(poll_cost.section(quick=True), "db")
    assert {row[0] for row in rows} >= {"sqlite"}
    assert all(row[4] == "1" for row in rows)


async def test_contention_allocates_without_duplicates_or_errors() -> None:
    results, _ = await contention.run(total=12, levels=(1, 4))
    for level in results:
        assert level.created == 12
        assert level.duplicates == 0
        assert not level.errors and not level.refusals


def test_contention_section_names_every_level() -> None:
    rows = _table(contention.section(quick=True), "db")
    assert [row[1] for row in rows if row[0] == "sqlite"] == ["1", "10", "100"]
    assert all(row[6] == "0" and row[8] == "0" for row in rows)  # duplicates, errors


def test_refusals_section_reports_every_refusal_and_one_capacity_check() -> None:
    rows = _table(refusals.section(quick=True), "db")
    assert {row[0] for row in rows} >= {"sqlite"}
    assert all(row[1] == "50" and row[7] == "1" for row in rows)


def test_qr_section_compares_with_qrcode_default() -> None:
    rows = {row[0]: row for row in _table(qr_render.section(quick=True), "render")}
    assert rows["qrcode.make().save(PNG) ~400px"][2] == "1.00"
    assert int(rows["fast path render_invoice_png"][3]) > 0


def test_process_cost_reports_start_memory_and_imports() -> None:
    text = process_cost.section(quick=True)
    measures = {row[0]: row[1] for row in _table(text, "measure")}
    cold = [v for k, v in measures.items() if k.startswith("cold start to the first getUpdates")]
    assert len(cold) == 1 and cold[0].endswith(" s")
    assert measures["idle RSS"].endswith(" MB")
    imports = [row[0] for row in _table(text, "import")]
    assert imports[0] == "python (bare interpreter)"
    assert any(label.startswith("ccxt") for label in imports)


def test_the_runner_prints_the_chosen_sections_without_writing(tmp_path: Path) -> None:
    before = runner.DOCS.read_text() if runner.DOCS.exists() else None
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "poll_cost", "--no-write"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "## Poll cost vs. scale" in result.stdout
    assert "## QR rendering" not in result.stdout
    assert (runner.DOCS.read_text() if runner.DOCS.exists() else None) == before


def test_the_runner_refuses_an_unknown_section(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        runner.main(["--only", "nonsense", "--no-write"])
    assert "nonsense" in capsys.readouterr().err


def test_machine_header_names_cpu_ram_python_and_os() -> None:
    lines = runner.machine()
    assert [line.split(":")[0] for line in lines] == ["- CPU", "- RAM", "- Python", "- OS"]


async def test_flood_rows_all_answer_bob_and_the_flood_never_drains_first() -> None:
    rows = await flood.measure(quick=True)
    assert [r.scenario.split(" (")[0] for r in rows] == [
        "alone",
        "text flood",
        "command flood",
        "429 in another chat",
        "429 in another chat",
    ]
    assert all(r.seconds > 0 and r.alone > 0 for r in rows)  # every answer arrived
    for row in rows[1:3]:
        assert row.mallory_sent == 200
        assert row.mallory_before is not None and row.mallory_before < row.mallory_sent
    text = flood.report(rows)
    assert text.startswith("## One customer flooding, or a 429 in one chat\n")
    assert len(_table(text, "scenario")) == 5


def test_history_cost_compares_a_year_pruned_and_unpruned_with_a_month() -> None:
    text = history_cost.section(quick=True)
    rows = _table(text, "db")
    sqlite = [row for row in rows if row[0] == "sqlite"]
    assert [row[1] for row in sqlite] == [
        "30 days (baseline)",
        "120 days, unpruned",
        "120 days, pruned to 90",
    ]
    assert sqlite[0][7] == sqlite[0][9] == sqlite[0][11] == "1.00"  # the month is the baseline
    month, year, pruned = (int(row[2].replace(",", "")) for row in sqlite)  # sent messages
    assert month < pruned < year  # the prune kept the last 90 days of them
    assert "The prune of the year's backlog" in text


def test_history_scale_compares_every_view_with_the_empty_history() -> None:
    text = history_scale.section(quick=True)
    assert text.startswith("## Cost at a million invoices\n")
    if "PostgreSQL skipped" in text:  # the section is PostgreSQL's alone
        return
    rows = _table(text, "view")
    assert [row[0] for row in rows] == ["a deposit poll's reads", "/pending", "/stats", "/user"]
    assert all(float(row[3]) > 0 for row in rows)
    assert "EXPLAIN (ANALYZE, BUFFERS)" in text and "Execution Time" in text


def test_a_new_run_keeps_the_hand_written_sections_of_the_page() -> None:
    page = "# Benchmarks\n\nold figures\n\n## Running them\n\nhow\n\n## Poll cost\n\n| a |\n"
    assert runner.kept_sections(page) == ["## Running them\n\nhow\n"]
    assert runner.kept_sections("# Benchmarks\n") == []
