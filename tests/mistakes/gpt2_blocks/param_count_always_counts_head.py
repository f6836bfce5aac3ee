"""gpt_param_count: out_head counted even when tied.

Mistake: the tie_weights branch removed.
Component: gpt2_param_count (notebook 10).
Expected effect: off by vocab_size * emb_dim for tied configs; the message names out_head.
"""



COMPONENT = "gpt2_param_count"
EXPECT = "caught"
HINTS = ('out_head',)

# --- answer cell ---

def gpt_param_count(cfg: dict) -> int:
    """Number of parameters of GPTModel(cfg), from the config alone."""
    d, vocab, n = cfg["emb_dim"], cfg["vocab_size"], cfg["n_layers"]
    per_block = 2 * 2 * d + 3 * d * d + (3 * d if cfg["qkv_bias"] else 0) + d * d + d + 8 * d * d + 5 * d
    total = vocab * d + cfg["context_len"] * d + n * per_block + 2 * d
    return total
