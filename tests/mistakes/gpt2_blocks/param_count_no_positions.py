"""gpt_param_count: position embedding forgotten.

Mistake: no ``context_len * d`` term.
Component: gpt2_param_count (notebook 10).
Expected effect: off by context_len * emb_dim; the message names the position embedding.
"""



COMPONENT = "gpt2_param_count"
EXPECT = "caught"
HINTS = ('position embedding',)

# --- answer cell ---

def gpt_param_count(cfg: dict) -> int:
    """Number of parameters of GPTModel(cfg), from the config alone."""
    d, vocab, n = cfg["emb_dim"], cfg["vocab_size"], cfg["n_layers"]
    per_block = 2 * 2 * d + 3 * d * d + (3 * d if cfg["qkv_bias"] else 0) + d * d + d + 8 * d * d + 5 * d
    total = vocab * d  + n * per_block + 2 * d
    if not cfg.get("tie_weights", False):
        total += vocab * d
    return total
