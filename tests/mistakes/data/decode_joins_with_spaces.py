"""CharTokenizer: decode puts a space between characters.

Mistake: ``" ".join(...)`` instead of ``"".join(...)``.
Component: tokenizer (notebook 01).
Expected effect: decode(encode(s)) != s; the decode check fails and should say ''.join.
"""


COMPONENT = "tokenizer"
EXPECT = "caught"
HINTS = ('join', "''")

# --- answer cell ---


class CharTokenizer:
    def __init__(self, chars):
        self.chars = list(chars)
        self.s2i = {ch: i for i, ch in enumerate(self.chars)}
        self.i2s = {i: ch for i, ch in enumerate(self.chars)}

    @property
    def vocab_size(self):
        return len(self.chars)

    def encode(self, text):
        unknown = [ch for ch in text if ch not in self.s2i]
        if unknown:
            raise ValueError(f"characters outside the vocabulary: {unknown}")
        return [self.s2i[ch] for ch in text]

    def decode(self, ids):
        return " ".join(self.i2s[int(i)] for i in ids)
