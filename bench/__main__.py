"""``python -m bench``: every benchmark, default sizes."""

from bench import poll_cost

poll_cost.main()
