"""Pricing: USD quotes from OKX, the unique amounts and address holds that make each payment
identifiable."""

from payments.pricing.quotes import QuoteService

__all__ = ["QuoteService"]
