"""CharTokenizer: decode works on a list but not on a tensor of ids.

Mistake: ``self.i2s[i]`` with i a 0-d tensor (a KeyError).
Component: tokenizer (notebook 01).
Expected effect: the check that decode accepts a 1-D tensor fails and says to turn each id into an int.
"""



COMPONENT = "tokenizer"
EXPECT = "caught"
HINTS = ('tensor',)

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
            raise ValueError(f"characters not in the vocabulary: {unknown}")
        return [self.s2i[ch] for ch in text]

    def decode(self, ids) -> str:
        return "".join(self.i2s[i] for i in ids)
