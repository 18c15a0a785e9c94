"""The crash-and-fault soak: the real bot process(es) against the fakes, with simulated customers,
injected faults and SIGKILL crashes, then invariants checked from the database and the fakes.

``python -m tests.soak --customers 60 --crashes 3 --fault-rate 0.1 --seed 1`` runs one and prints
the figures; ``tests/soak/test_soak.py`` is the small version CI runs.
"""
