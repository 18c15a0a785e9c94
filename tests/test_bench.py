"""The benchmarks still run (tiny sizes); they print figures and assert no times."""

from __future__ import annotations

import pytest

from bench import poll_cost


async def test_poll_cost_benchmark_runs_on_tiny_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    await poll_cost.run([3], [4])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:4] == ["db", "invoices", "deposits", "requests"]
    fields = lines[1].split()
    assert fields[:4] == ["sqlite", "3", "4", "1"]  # one page of history for four deposits
    assert fields[6] == "2"  # half of the deposits pay an invoice
