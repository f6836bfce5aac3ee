"""CharTokenizer: unknown characters raise KeyError, where the exercise asks for ValueError.

Mistake: ``raise KeyError(...)`` naming the characters.
Component: tokenizer (notebook 01).
Expected effect: the check for unknown characters says the exercise asks for a ValueError.
"""


import torch

COMPONENT = "tokenizer"
EXPECT = "caught"
HINTS = ('ValueError',)

# --- answer cell ---

class CharTokenizer:
    """Character-level vocabulary: encode text to ids and decode ids to text."""

    def __init__(self, chars):
        self.chars = list(chars)
        self.s2i = {ch: i for i, ch in enumerate(self.chars)}
        self.i2s = {i: ch for i, ch in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        unknown = sorted({ch for ch in text if ch not in self.s2i})
        if unknown:
            raise KeyError(f"characters not in the vocabulary: {unknown}")
        return [self.s2i[ch] for ch in text]

    def decode(self, ids) -> str:
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return "".join(self.i2s[int(i)] for i in ids)
