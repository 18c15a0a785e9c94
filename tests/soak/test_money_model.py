"""The money path under an adversary's choice of sequence (tests/money_model.py), at CI size on
both databases. ``MONEY_MODEL_EXAMPLES`` and ``MONEY_MODEL_STEPS`` make it longer; the long runs
and their figures are in docs/reliability.md."""

from __future__ import annotations

import os

import pytest
from hypothesis.stateful import run_state_machine_as_test

from tests.conftest import PG_URL, backends
from tests.money_model import machine_for, run_settings

EXAMPLES = int(os.environ.get("MONEY_MODEL_EXAMPLES", "25"))
STEPS = int(os.environ.get("MONEY_MODEL_STEPS", "40"))


@pytest.mark.parametrize("backend", backends())
def test_the_money_path_holds_whatever_sequence_an_adversary_picks(backend: str) -> None:
    database = "sqlite" if backend == "sqlite" else PG_URL
    run_state_machine_as_test(machine_for(database), settings=run_settings(EXAMPLES, STEPS))
