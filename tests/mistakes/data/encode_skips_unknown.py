"""CharTokenizer: encode silently skips characters outside the vocabulary.

Mistake: ``[self.s2i[ch] for ch in text if ch in self.s2i]`` — typos in a prompt vanish without a word.
Component: tokenizer (notebook 01).
Expected effect: no error for unknown characters; the check asks for a ValueError naming them.
"""


COMPONENT = "tokenizer"
EXPECT = "caught"
HINTS = ('unknown', 'ValueError')

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
        return [self.s2i[ch] for ch in text if ch in self.s2i]

    def decode(self, ids):
        return "".join(self.i2s[int(i)] for i in ids)
