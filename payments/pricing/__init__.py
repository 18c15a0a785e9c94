"""Pricing: USD quotes from OKX, the unique amounts and address holds that make each payment
identifiable."""
