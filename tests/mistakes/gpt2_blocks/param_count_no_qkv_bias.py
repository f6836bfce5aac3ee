"""gpt_param_count: QKV biases forgotten.

Mistake: ``0`` instead of ``3 * d`` with qkv_bias.
Component: gpt2_param_count (notebook 10).
Expected effect: off by 3 * emb_dim per block; the message names the QKV biases.
"""



COMPONENT = "gpt2_param_count"
EXPECT = "caught"
HINTS = ('QKV biases',)

# --- answer cell ---

def gpt_param_count(cfg: dict) -> int:
    """Number of parameters of GPTModel(cfg), from the config alone."""
    d, vocab, n = cfg["emb_dim"], cfg["vocab_size"], cfg["n_layers"]
    per_block = 2 * 2 * d + 3 * d * d + 0 + d * d + d + 8 * d * d + 5 * d
    total = vocab * d + cfg["context_len"] * d + n * per_block + 2 * d
    if not cfg.get("tie_weights", False):
        total += vocab * d
    return total
