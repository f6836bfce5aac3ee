"""BPE encode: applies the first mergeable pair from the left.

Mistake: ``next(p for p in pairs if p in merges)``.
Component: bpe_encode (notebook 11).
Expected effect: other tokens where the order matters; the message names the learned order.
"""

# ruff: noqa: F821, F841, B905, E501  (the names come from the notebook's earlier cells)



COMPONENT = "bpe_encode"
EXPECT = "caught"
HINTS = ('order they were learned',)

# --- answer cell ---

def encode(text: str, merges: dict[tuple[int, int], int]) -> list[int]:
    """Text -> token ids with the learned merges."""
    ids = []
    for chunk in regex.findall(GPT2_PATTERN, text):
        chunk_ids = list(chunk.encode("utf-8"))
        while len(chunk_ids) >= 2:
            pairs = get_pair_counts(chunk_ids)
            pair = next((p for p in zip(chunk_ids, chunk_ids[1:]) if p in merges), None)
            if pair not in merges:
                break
            chunk_ids = merge(chunk_ids, pair, merges[pair])
        ids.extend(chunk_ids)
    return ids
