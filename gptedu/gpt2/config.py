"""``GPTConfig``: every size of a GPT-2-style model in one place, with the four OpenAI GPT-2 sizes as presets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace


@dataclass
class GPTConfig:
    """Hyper-parameters of ``GPTModel``; the names follow the config dict of Raschka's book.

    (Sebastian Raschka, *Build a Large Language Model (From Scratch)*, 2024; it writes ``context_length``.)

    - ``context_len``: the most tokens the model sees at once (number of learned positions).
    - ``vocab_size``: number of token ids (50,257 for GPT-2's BPE).
    - ``emb_dim``: width of the residual stream (``d_model``).
    - ``n_heads``: attention heads per block; ``emb_dim`` must be divisible by it.
    - ``n_layers``: number of ``TransformerBlock``\\ s.
    - ``drop_rate``: dropout after the embeddings, on the attention weights and on both residual branches.
    - ``qkv_bias``: whether the query/key/value projections have a bias (OpenAI's GPT-2 has one; Raschka's
      from-scratch model does not).
    - ``tie_weights``: share one matrix between the token embedding and the output head (as GPT-2 does).

    Fields read both ways, ``cfg.emb_dim`` and ``cfg["emb_dim"]`` (Raschka's book keeps its config in a plain dict);
    every class that takes a ``cfg`` also accepts such a dict.
    """

    context_len: int = 1024
    vocab_size: int = 50257
    emb_dim: int = 768
    n_heads: int = 12
    n_layers: int = 12
    drop_rate: float = 0.1
    qkv_bias: bool = False
    tie_weights: bool = False

    def __post_init__(self) -> None:
        if self.emb_dim % self.n_heads != 0:
            raise ValueError(
                f"emb_dim ({self.emb_dim}) must be divisible by n_heads ({self.n_heads}): each head gets "
                f"emb_dim // n_heads dimensions. Pick n_heads among the divisors of {self.emb_dim}."
            )
        if not 0.0 <= self.drop_rate < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), got {self.drop_rate}.")

    def __getitem__(self, name: str):
        if name not in self.to_dict():
            raise KeyError(f"GPTConfig has no field {name!r}; its fields are {list(self.to_dict())}.")
        return getattr(self, name)

    def get(self, name: str, default=None):
        return getattr(self, name, default)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def coerce(cls, cfg: GPTConfig | Mapping) -> GPTConfig:
        """``cfg`` itself if it is a ``GPTConfig``; a plain dict becomes one (unknown keys are an error)."""
        if isinstance(cfg, GPTConfig):
            return cfg
        if isinstance(cfg, Mapping):
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(cfg) - known)
            if unknown:
                raise ValueError(f"Unknown config keys {unknown}; GPTConfig fields are {sorted(known)}.")
            return cls(**cfg)
        raise TypeError(f"cfg must be a GPTConfig or a dict of its fields, got {type(cfg).__name__}.")

    def replace(self, **changes) -> GPTConfig:
        """A copy with some fields changed: ``GPT2_124M.replace(context_len=256, drop_rate=0.0)``."""
        return replace(self, **changes)


# OpenAI's four GPT-2 sizes (widths/depths/heads from the GPT-2 paper's Table 2 and the released checkpoints).
# Like Raschka's from-scratch model, the presets have no QKV bias and untied weights; ``gptedu.gpt2.hf`` turns
# both on when it loads the real checkpoints.
GPT2_124M = GPTConfig(emb_dim=768, n_heads=12, n_layers=12)
GPT2_355M = GPTConfig(emb_dim=1024, n_heads=16, n_layers=24)
GPT2_774M = GPTConfig(emb_dim=1280, n_heads=20, n_layers=36)
GPT2_1558M = GPTConfig(emb_dim=1600, n_heads=25, n_layers=48)

GPT2_PRESETS: dict[str, GPTConfig] = {
    "gpt2-124m": GPT2_124M,
    "gpt2-355m": GPT2_355M,
    "gpt2-774m": GPT2_774M,
    "gpt2-1558m": GPT2_1558M,
}
