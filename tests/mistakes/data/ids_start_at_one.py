"""CharTokenizer: ids counted from 1 (``enumerate(chars, start=1)``).

Mistake: the largest id equals vocab_size, one past the end of an ``nn.Embedding(vocab_size, d)``.
Component: tokenizer (notebook 01).
Expected effect: s2i/i2s/encode are off by one; the message should point at the mapping.
"""


COMPONENT = "tokenizer"
EXPECT = "caught"
HINTS = ('s2i', 'enumerate', 'id')

# --- answer cell ---


class CharTokenizer:
    def __init__(self, chars):
        self.chars = list(chars)
        self.s2i = {ch: i for i, ch in enumerate(self.chars, start=1)}
        self.i2s = {i: ch for i, ch in enumerate(self.chars, start=1)}

    @property
    def vocab_size(self):
        return len(self.chars)

    def encode(self, text):
        unknown = [ch for ch in text if ch not in self.s2i]
        if unknown:
            raise ValueError(f"characters outside the vocabulary: {unknown}")
        return [self.s2i[ch] for ch in text]

    def decode(self, ids):
        return "".join(self.i2s[int(i)] for i in ids)
