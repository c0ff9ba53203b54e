"""Helpers shared by the test tiers (lab access, a single-node Clique chain)."""
