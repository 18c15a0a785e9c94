"""Delivery: the messages a decision causes (the outbox) and the merchant's signed webhooks."""
