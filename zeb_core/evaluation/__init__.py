"""Evaluation: matches between players, the benchmark table, and the rating ladder.

- match: team-symmetric batched matches on the benchmark deals
- strength: the benchmark table vs random, heuristic and the expert
- ladder: which weights and baselines play the rating ladder
- ratings: the Bradley–Terry fit with confidence intervals
"""
