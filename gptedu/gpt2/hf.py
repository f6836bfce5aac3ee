"""Load OpenAI's GPT-2 weights from a Hugging Face checkpoint you already have (no download).

Accepted: a ``model.safetensors`` or ``pytorch_model.bin`` file, or the folder holding it (a sharded checkpoint with
its ``*.index.json`` too), for any GPT-2 size (124M, 355M, 774M, 1.5B, or a small one you trained). The config is
read from the tensor shapes; the number of heads, which shapes do not reveal, comes from ``n_heads=``, from a
``config.json`` next to the file, or from the standard sizes.

Name mapping (Hugging Face ``transformer.`` prefix optional) onto ``gptedu.gpt2.GPTModel``:

==============================  ==========================================================
Hugging Face                    gptedu
==============================  ==========================================================
``wte.weight``                  ``emb.tok_emb.weight``
``wpe.weight``                  ``emb.pos_emb.weight``
``h.{i}.ln_1.weight/.bias``     ``trf_blocks.{i}.norm1.scale/.shift``
``h.{i}.attn.c_attn.*``         ``trf_blocks.{i}.att.W_query / W_key / W_value`` (split in 3)
``h.{i}.attn.c_proj.*``         ``trf_blocks.{i}.att.out_proj``
``h.{i}.ln_2.*``                ``trf_blocks.{i}.norm2``
``h.{i}.mlp.c_fc.*``            ``trf_blocks.{i}.ff.layers.0``
``h.{i}.mlp.c_proj.*``          ``trf_blocks.{i}.ff.layers.2``
``ln_f.*``                      ``final_norm``
``lm_head.weight`` (optional)   ``out_head.weight`` (absent or equal to ``wte`` → tied)
==============================  ==========================================================

Hugging Face stores GPT-2's linear layers as ``Conv1D`` with weights ``(in, out)``; ``nn.Linear`` wants
``(out, in)``, so every such weight is transposed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from gptedu.gpt2.config import GPTConfig
from gptedu.gpt2.model import GPTModel

# Heads of OpenAI's released sizes, by width (the GPT-2 paper / released hparams.json).
STANDARD_HEADS = {768: 12, 1024: 16, 1280: 20, 1600: 25}
_LAYER_KEYS = (
    "ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias",
    "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias",
)  # fmt: skip
_BUFFERS = re.compile(r"^h\.\d+\.attn\.(bias|masked_bias)$")  # causal-mask buffers of older checkpoints


class CheckpointError(ValueError):
    """The file is not a (complete) GPT-2 checkpoint; the message says what was expected and what was found."""


def _describe(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def _find_file(path: Path) -> list[Path]:
    """The checkpoint file(s) for ``path`` (a file, or a folder as written by ``save_pretrained``)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(
            f"{path} does not exist. Pass the model.safetensors / pytorch_model.bin file of a Hugging Face GPT-2 "
            "checkpoint, or the folder that holds it."
        )
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (path / name).is_file():
            return [path / name]
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (path / index).is_file():
            weight_map = json.loads((path / index).read_text())["weight_map"]
            return [path / name for name in sorted(set(weight_map.values()))]
    raise FileNotFoundError(
        f"No model.safetensors or pytorch_model.bin in {path} (found: {sorted(p.name for p in path.iterdir())}). "
        "Point to the checkpoint file itself if it has another name."
    )


def _read_one(file: Path) -> dict[str, torch.Tensor]:
    size = file.stat().st_size
    with open(file, "rb") as f:
        head = f.read(16)
    try:
        if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":  # torch.save zip archive or legacy pickle
            sd = torch.load(file, map_location="cpu", weights_only=True)
            if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
                sd = sd["state_dict"]
        else:
            from safetensors.torch import load_file

            sd = load_file(str(file))
    except Exception as err:  # the libraries' own messages are cryptic; say what the file looks like
        raise CheckpointError(
            f"Could not read {file} ({size:,} bytes, starts with {head!r}) as a safetensors or PyTorch checkpoint: "
            f"{type(err).__name__}: {err}. Is it incompletely downloaded, or another kind of file (a config, an "
            "HTML error page)?"
        ) from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{file} holds a {type(sd).__name__}, not a dict of tensors (a state_dict).")
    return sd


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """All tensors of a Hugging Face GPT-2 checkpoint, keys without the ``transformer.`` prefix, buffers dropped."""
    sd: dict[str, torch.Tensor] = {}
    for file in _find_file(Path(path).expanduser()):
        sd.update(_read_one(file))
    sd = {k.removeprefix("transformer."): v for k, v in sd.items()}
    return {k: v for k, v in sd.items() if not _BUFFERS.match(k)}


def _heads_from_config_json(path: Path) -> int | None:
    folder = path if path.is_dir() else path.parent
    config = folder / "config.json"
    if config.is_file():
        try:
            return int(json.loads(config.read_text())["n_head"])
        except (KeyError, ValueError, TypeError, json.JSONDecodeError):
            return None
    return None


def gpt2_config_from_state_dict(
    sd: dict[str, torch.Tensor], n_heads: int | None = None, drop_rate: float = 0.0
) -> GPTConfig:
    """Infer ``GPTConfig`` (with ``qkv_bias=True``, tying detected) from a checkpoint's tensor shapes."""
    if "wte.weight" not in sd or "wpe.weight" not in sd:
        raise CheckpointError(
            "This does not look like a GPT-2 checkpoint: it has no token/position embeddings ('wte.weight', "
            f"'wpe.weight'). Its keys are: {_describe(sorted(sd))}."
        )
    vocab_size, emb_dim = sd["wte.weight"].shape
    context_len = sd["wpe.weight"].shape[0]
    layers = {int(m.group(1)) for k in sd if (m := re.match(r"h\.(\d+)\.", k))}
    if not layers:
        raise CheckpointError("The checkpoint has embeddings but no transformer blocks ('h.0.*'): a partial file?")
    n_layers = max(layers) + 1
    if n_heads is None:
        n_heads = STANDARD_HEADS.get(emb_dim)
    if n_heads is None:
        raise CheckpointError(
            f"Width {emb_dim} is not one of OpenAI's GPT-2 sizes {sorted(STANDARD_HEADS)}, so the number of heads "
            "cannot be inferred: pass n_heads=..., or keep the config.json next to the checkpoint."
        )
    tied = "lm_head.weight" not in sd or torch.equal(sd["lm_head.weight"], sd["wte.weight"])
    return GPTConfig(
        context_len=context_len, vocab_size=vocab_size, emb_dim=emb_dim, n_heads=n_heads, n_layers=n_layers,
        drop_rate=drop_rate, qkv_bias=True, tie_weights=tied,
    )  # fmt: skip


def hf_to_gptedu_state_dict(sd: dict[str, torch.Tensor], cfg: GPTConfig) -> dict[str, torch.Tensor]:
    """Rename (and transpose/split) a Hugging Face GPT-2 state dict into ``GPTModel(cfg)``'s names.

    Raises ``CheckpointError`` listing missing keys, unexpected keys and wrong shapes, all at once.
    """
    expected = {"wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"}
    expected |= {f"h.{i}.{k}" for i in range(cfg.n_layers) for k in _LAYER_KEYS}
    optional = {"lm_head.weight"}
    missing = sorted(expected - set(sd))
    unexpected = sorted(set(sd) - expected - optional)
    problems = []
    if missing:
        problems.append(f"missing keys: {_describe(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_describe(unexpected)}")
    if problems:
        raise CheckpointError(
            f"Not a complete GPT-2 checkpoint for {cfg.n_layers} layers — " + "; ".join(problems) + ". A partial "
            "(interrupted) download, a file of another architecture, or a fine-tuned model with extra heads?"
        )

    d = cfg.emb_dim
    want = {"wte.weight": (cfg.vocab_size, d), "wpe.weight": (cfg.context_len, d)}
    want["lm_head.weight"] = (cfg.vocab_size, d)
    per_layer = {
        "ln_1.weight": (d,), "ln_1.bias": (d,), "ln_2.weight": (d,), "ln_2.bias": (d,),
        "attn.c_attn.weight": (d, 3 * d), "attn.c_attn.bias": (3 * d,), "attn.c_proj.weight": (d, d),
        "attn.c_proj.bias": (d,), "mlp.c_fc.weight": (d, 4 * d), "mlp.c_fc.bias": (4 * d,),
        "mlp.c_proj.weight": (4 * d, d), "mlp.c_proj.bias": (d,),
    }  # fmt: skip
    want |= {f"h.{i}.{k}": s for i in range(cfg.n_layers) for k, s in per_layer.items()}
    want |= {"ln_f.weight": (d,), "ln_f.bias": (d,)}
    wrong = [f"{k} {tuple(sd[k].shape)} (expected {s})" for k, s in want.items() if k in sd and tuple(sd[k].shape) != s]
    if wrong:
        raise CheckpointError("Tensors with the wrong shape for a GPT-2 model: " + _describe(wrong, 5) + ".")

    out = {
        "emb.tok_emb.weight": sd["wte.weight"],
        "emb.pos_emb.weight": sd["wpe.weight"],
        "final_norm.scale": sd["ln_f.weight"],
        "final_norm.shift": sd["ln_f.bias"],
        "out_head.weight": sd.get("lm_head.weight", sd["wte.weight"]),
    }
    for i in range(cfg.n_layers):
        h, b = f"h.{i}.", f"trf_blocks.{i}."
        q, k, v = sd[h + "attn.c_attn.weight"].split(d, dim=1)
        qb, kb, vb = sd[h + "attn.c_attn.bias"].split(d)
        out |= {
            b + "norm1.scale": sd[h + "ln_1.weight"], b + "norm1.shift": sd[h + "ln_1.bias"],
            b + "att.W_query.weight": q.T, b + "att.W_key.weight": k.T, b + "att.W_value.weight": v.T,
            b + "att.W_query.bias": qb, b + "att.W_key.bias": kb, b + "att.W_value.bias": vb,
            b + "att.out_proj.weight": sd[h + "attn.c_proj.weight"].T,
            b + "att.out_proj.bias": sd[h + "attn.c_proj.bias"],
            b + "norm2.scale": sd[h + "ln_2.weight"], b + "norm2.shift": sd[h + "ln_2.bias"],
            b + "ff.layers.0.weight": sd[h + "mlp.c_fc.weight"].T, b + "ff.layers.0.bias": sd[h + "mlp.c_fc.bias"],
            b + "ff.layers.2.weight": sd[h + "mlp.c_proj.weight"].T, b + "ff.layers.2.bias": sd[h + "mlp.c_proj.bias"],
        }  # fmt: skip
    return {k: v.contiguous() for k, v in out.items()}


def load_hf_gpt2(
    path: str | os.PathLike[str],
    n_heads: int | None = None,
    drop_rate: float = 0.0,
    device: torch.device | str = "cpu",
) -> GPTModel:
    """A ``GPTModel`` holding the weights of a Hugging Face GPT-2 checkpoint, in eval mode (float32)."""
    path = Path(path).expanduser()
    sd = read_checkpoint(path)
    cfg = gpt2_config_from_state_dict(sd, n_heads or _heads_from_config_json(path), drop_rate)
    weights = hf_to_gptedu_state_dict(sd, cfg)
    model = GPTModel(cfg)
    model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True)
    return model.to(device).eval()


def main(argv: list[str] | None = None) -> int:
    """``python -m gptedu.gpt2.hf CHECKPOINT --prompt "..."``: continue a prompt with real GPT-2 weights."""
    import argparse

    from gptedu.gpt2.bpe import BPETokenizer
    from gptedu.gpt2.generate import gen_text, text_to_token_ids, token_ids_to_text

    parser = argparse.ArgumentParser(
        prog="python -m gptedu.gpt2.hf",
        description="Load a Hugging Face GPT-2 checkpoint (model.safetensors or pytorch_model.bin, or their folder) "
        "into gptedu's GPTModel and continue a prompt. Nothing is downloaded.",
    )
    parser.add_argument("checkpoint", help="the checkpoint file, or the folder that holds it")
    parser.add_argument("--prompt", required=True, help="text to continue")
    parser.add_argument("--tokenizer-dir", default=None,
                        help="folder with GPT-2's encoder.json and merges.txt (default: $GPTEDU_GPT2_DIR)")
    parser.add_argument("--max-new-tokens", type=int, default=40, help="tokens to generate (default 40)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default); e.g. 0.8 to sample")
    parser.add_argument("--top-k", type=int, default=None, help="sample among the k most likely tokens only")
    parser.add_argument("--n-heads", type=int, default=None, help="heads, for a non-standard width without config.json")
    parser.add_argument("--seed", type=int, default=0, help="random seed for sampling (default 0)")
    args = parser.parse_args(argv)
    if not args.prompt.strip():
        parser.error("--prompt is empty: give some text to continue.")
    try:
        model = load_hf_gpt2(args.checkpoint, n_heads=args.n_heads)
        tokenizer = BPETokenizer.from_gpt2_files(args.tokenizer_dir)
    except (CheckpointError, FileNotFoundError) as err:
        parser.exit(2, f"error: {err}\n")
    if tokenizer.vocab_size != model.cfg.vocab_size:
        parser.exit(2, f"error: the tokenizer has {tokenizer.vocab_size} ids but the model {model.cfg.vocab_size}; "
                       "use the tokenizer the checkpoint was trained with.\n")
    torch.manual_seed(args.seed)
    idx = text_to_token_ids(args.prompt, tokenizer)
    out = gen_text(model, idx, args.max_new_tokens, model.cfg.context_len, args.temperature, args.top_k,
                   eos_id=tokenizer.eos_id)
    print(token_ids_to_text(out, tokenizer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
