"""train_bpe: pairs counted across chunk boundaries.

Mistake: no pre-tokenization.
Component: bpe_train (notebook 11).
Expected effect: other merges; the message says never across chunks.
"""

# ruff: noqa: F821, F841, B905, E501  (the names come from the notebook's earlier cells)



COMPONENT = "bpe_train"
EXPECT = "caught"
HINTS = ('never across chunks',)

# --- answer cell ---

def train_bpe(text: str, num_merges: int) -> dict[tuple[int, int], int]:
    """Learn num_merges merges on text; returns {(a, b): new_id} in learning order (new ids 256, 257, ...)."""
    chunk_counts = Counter([text])
    words = {chunk: list(chunk.encode("utf-8")) for chunk in chunk_counts}
    merges = {}
    for k in range(num_merges):
        counts = {}
        for chunk, ids in words.items():
            for pair, c in get_pair_counts(ids).items():
                counts[pair] = counts.get(pair, 0) + c * chunk_counts[chunk]
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        merges[best] = 256 + k
        words = {chunk: merge(ids, best, 256 + k) for chunk, ids in words.items()}
    return merges
