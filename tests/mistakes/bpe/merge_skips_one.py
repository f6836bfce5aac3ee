"""merge: advances by one after a merge.

Mistake: ``i += 1`` after emitting new_id.
Component: bpe_merge (notebook 11).
Expected effect: overlapping output; the message names merging.
"""



COMPONENT = "bpe_merge"
EXPECT = "caught"
HINTS = ('merge',)

# --- answer cell ---

def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace each non-overlapping occurrence of pair (left to right) by new_id."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 1
        else:
            out.append(ids[i])
            i += 1
    return out
