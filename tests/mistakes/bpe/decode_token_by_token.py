"""BPE decode: decodes each token's bytes separately.

Mistake: ``''.join(vocab[i].decode(...))``.
Component: bpe_decode (notebook 11).
Expected effect: multi-byte characters split across tokens come out as replacement characters; the message says decode once.
"""

# ruff: noqa: F821, F841, B905, E501  (the names come from the notebook's earlier cells)



COMPONENT = "bpe_decode"
EXPECT = "caught"
HINTS = ('decode once',)

# --- answer cell ---

def decode(ids: list[int], merges: dict[tuple[int, int], int]) -> str:
    """Token ids -> text."""
    vocab = {i: bytes([i]) for i in range(256)}
    for (a, b), new_id in sorted(merges.items(), key=lambda item: item[1]):
        vocab[new_id] = vocab[a] + vocab[b]
    return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)
