"""get_pair_counts: every pair counted once.

Mistake: iterates over ``set(zip(ids, ids[1:]))`` with count 1.
Component: bpe_pair_counts (notebook 11).
Expected effect: wrong counts for repeated pairs; the message names overlapping pairs.
"""

# ruff: noqa: F821, F841, B905, E501  (the names come from the notebook's earlier cells)



COMPONENT = "bpe_pair_counts"
EXPECT = "caught"
HINTS = ('overlapping',)

# --- answer cell ---

def get_pair_counts(ids: list[int]) -> dict[tuple[int, int], int]:
    """{(a, b): how often b follows a in ids}."""
    counts = {}
    for pair in set(zip(ids, ids[1:])):
        counts[pair] = 1
    return counts
