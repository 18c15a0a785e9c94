"""State the Telegram layer keeps in the database: the invoice photos it sent, the replica lease
that picks who runs the singleton jobs, and the signals between replicas."""
