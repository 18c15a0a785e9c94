"""``python -m tests.soak``: one soak run, its figures printed; exit status 1 on any violation.

python -m tests.soak --customers 300 --crashes 10 --fault-rate 0.1 --seed 7
python -m tests.soak --database-url postgresql://postgres@127.0.0.1:5432/test --replicas 2
python -m tests.soak --database-url postgresql://... --replicas 2 --pauses 3 \
    --unban-failures 0.5 --endpoints 2
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.soak.run import SoakConfig, run_soak


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__)
    parser.add_argument("--customers", type=int, default=60)
    parser.add_argument("--crashes", type=int, default=3)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--database-url", default=None, help="a PostgreSQL server (a database is created on it)"
    )
    parser.add_argument("--replicas", type=int, default=1, help="webhook replicas (PostgreSQL)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs and the database")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--stagger", type=float, default=0.25, help="seconds between customers")
    parser.add_argument(
        "--settle", type=float, default=240.0, help="seconds the bot may take to finish at the end"
    )
    parser.add_argument(
        "--flood", type=int, default=2000, help="updates the flooder queues while answers are timed"
    )
    parser.add_argument(
        "--pauses",
        type=int,
        default=0,
        help="SIGSTOP the primary mid-send, mid-webhook, mid-access (needs --replicas 2)",
    )
    parser.add_argument(
        "--unban-failures",
        type=float,
        default=0.0,
        help="share of unbans right after a ban that fail (late payers intrude first)",
    )
    parser.add_argument("--endpoints", type=int, default=1, help="merchant webhook URLs")
    args = parser.parse_args(argv)
    config = SoakConfig(
        customers=args.customers,
        crashes=args.crashes,
        fault_rate=args.fault_rate,
        seed=args.seed,
        database_url=args.database_url,
        replicas=args.replicas,
        workdir=args.workdir,
        log_level=args.log_level,
        stagger_s=args.stagger,
        settle_s=args.settle,
        flood=args.flood,
        pauses=args.pauses,
        unban_failures=args.unban_failures,
        endpoints=args.endpoints,
    )
    result = asyncio.run(run_soak(config))
    print(result.report(), flush=True)
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
