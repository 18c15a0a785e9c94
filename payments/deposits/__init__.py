"""Deposits: the minute cycle that reads OKX, decides which invoice each deposit pays, writes
the decision, takes claims and expires what ran out."""
