"""Seller performance: seller profiles, team managers, monthly targets, performance figures,
leaderboards, and single-level commission statements capped per the direct-selling regulations."""
