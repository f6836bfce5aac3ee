"""CharTokenizer: the characters are de-duplicated with set(), which loses their (sorted) order.

Mistake: ``self.chars = list(set(chars))`` — the id of each character now depends on Python's string hashing, so it
changes from one run to the next and a saved model decodes to garbage.
Component: tokenizer (notebook 01).
Expected effect: s2i/i2s/encode differ from the ids the sorted vocabulary gives; the message should point at s2i.
"""


COMPONENT = "tokenizer"
EXPECT = "caught"
HINTS = ('s2i', 'enumerate(chars)', 'order')

# --- answer cell ---


class CharTokenizer:
    def __init__(self, chars):
        self.chars = list(set(chars))
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
        return "".join(self.i2s[int(i)] for i in ids)
