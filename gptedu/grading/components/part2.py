"""Part 2 (GPT-2, notebooks 10-14): one :class:`Component` per graded exercise.

Same life as part 1 (:mod:`gptedu.grading.components.part1`): plain-data cases (hidden ones drawn from the course
secret), :func:`gptedu.grading.runner.run_case`, and ``compare`` against ``gptedu.gpt2``. Model configs travel as plain
dicts (the cases must load with ``torch.load(weights_only=True)`` in the sandbox), so the exercises read them as
``cfg["emb_dim"]``. An exercise that calls the student's earlier ones (the block calls ``LayerNorm``,
``FeedForward``, ...) runs with the reference's versions of them (its ``prerequisites``): a mistake costs points in
its own component only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812

from gptedu.gpt2 import attention, finetune, layers, model
from gptedu.gpt2.bpe import BPETokenizer, get_pair_counts, merge
from gptedu.gpt2.generate import gen_text
from gptedu.gpt2.kvcache import LayerKVCache
from gptedu.gpt2.train import calc_loss_batch
from gptedu.grading.components.base import (
    Draw,
    ModuleCheck,
    build_reference,
    calls_case,
    component,
    match_variant,
    module_component,
    python_result,
    sampling_failure,
)
from gptedu.grading.report import Failure, tensor_failure
from gptedu.grading.runner import TinyCausalLM

NB10 = "10_gpt2_blocks"
NB11 = "11_bpe_tokenizer"


def _cfg(context_len, vocab_size, emb_dim, n_heads, n_layers, drop_rate=0.1, qkv_bias=False, tie_weights=False):
    return dict(context_len=context_len, vocab_size=vocab_size, emb_dim=emb_dim, n_heads=n_heads, n_layers=n_layers,
                drop_rate=drop_rate, qkv_bias=qkv_bias, tie_weights=tie_weights)


def _hidden_cfg(d: Draw, i: int, **fixed) -> tuple[dict, tuple[int, int], int]:
    """The ``i``-th hidden ``(cfg, (batch, seq), seed)`` of a component, drawn from the course secret."""
    heads = d(i, "heads", low=1, high=4)
    cfg = _cfg(d(i, "ctx", low=4, high=16), d(i, "vocab", low=5, high=40), heads * d(i, "head_dim", low=2, high=8),
               heads, d(i, "layers", low=1, high=2), d(i, "drop", high=5) / 10,
               qkv_bias=i % 2 == 0 if i < 2 else bool(d(i, "qkv", high=1)), tie_weights=i % 2 == 1)
    cfg.update(fixed)
    return cfg, (d(i, "batch", low=1, high=3), d(i, "seq", low=1, high=cfg["context_len"])), d.seed(i)


def _hidden_cfgs(secret: bytes, name: str, n: int, **fixed) -> list[tuple[dict, tuple[int, int], int]]:
    return [_hidden_cfg(Draw(secret, name), i, **fixed) for i in range(n)]


def _cfg_size(init: Callable[[dict], dict], min_seq: int = 1, tokens: bool = False, **fixed) -> Callable:
    """The ``hidden_size`` of a module built from ``init(cfg)``, on token ids (``tokens``) or ``(b, seq, emb)``."""

    def size(d: Draw, i: int) -> tuple[dict, tuple, int]:
        c, (b, s), seed = _hidden_cfg(d, i, **fixed)
        return init(c), (b, max(min_seq, s)) if tokens else (b, max(min_seq, s), c["emb_dim"]), seed

    return size


def _att_size(**options) -> Callable:
    """Hidden sizes of an attention module; case 1 fills a window longer than the notebooks' (16) and any visible
    case's, so a mask size written into the code shows."""
    size = _cfg_size(_att_init, **options)

    def att_size(d: Draw, i: int) -> tuple[dict, tuple, int]:
        init, (b, s, e), seed = size(d, i)
        if i != 1:
            return init, (b, s, e), seed
        window = d(i, "long_ctx", low=33, high=96)
        return dict(init, context_len=window), (b, window, e), seed

    return att_size


def _att_init(cfg: dict) -> dict:
    return dict(d_in=cfg["emb_dim"], d_out=cfg["emb_dim"], context_len=cfg["context_len"], drop_rate=cfg["drop_rate"],
                n_heads=cfg["n_heads"], qkv_bias=cfg["qkv_bias"])


# ============================================================================================== LayerNorm
def _ln_size(d: Draw, i: int) -> tuple[dict, tuple, int]:
    c, (b, s), seed = _hidden_cfg(d, i)
    return dict(emb_dim=c["emb_dim"] + i), (b, s, c["emb_dim"] + i), seed


def _ln_inputs(cases: list[dict]) -> list[dict]:
    for i, c in enumerate(cases):
        # inputs far from mean 0 / variance 1, so normalising matters; the last case has a variance close to eps,
        # where eps inside or outside the square root makes a difference
        small = i == len(cases) - 1
        c["inputs"] = {"x": c["inputs"]["x"] * 0.003 + 0.001 if small else c["inputs"]["x"] * 3.0 + 1.5}
    return cases


def _ln_variants(ref, x, method):
    mean = x.mean(-1, keepdim=True)
    var_b = x.var(-1, keepdim=True, unbiased=False)
    var_u = x.var(-1, keepdim=True, unbiased=True)
    s, b, eps = ref.scale, ref.shift, ref.eps
    return [
        ("the variance is unbiased (divides by n-1): use x.var(dim=-1, keepdim=True, unbiased=False).",
         s * (x - mean) / torch.sqrt(var_u + eps) + b),
        ("eps is added outside the square root: divide by torch.sqrt(var + eps).",
         s * (x - mean) / (torch.sqrt(var_b) + eps) + b),
        ("scale and shift are not applied: return self.scale * norm + self.shift.",
         (x - mean) / torch.sqrt(var_b + eps)),
        ("the statistics are taken over the wrong axis: normalise over the last axis (dim=-1, keepdim=True).",
         s * (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, keepdim=True, unbiased=False) + eps) + b),
        ("the mean is not subtracted.", s * x / torch.sqrt(var_b + eps) + b),
    ]


# ============================================================================================== GELU
def _gelu_variants(ref, x, method):
    c = math.sqrt(2 / math.pi)
    return [
        ("this is the exact (erf) GELU; GPT-2 uses the tanh approximation "
         "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).", F.gelu(x)),
        ("ReLU is not GELU.", F.relu(x)),
        ("the factor 0.5 is missing.", x * (1 + torch.tanh(c * (x + 0.044715 * x**3)))),
        ("the cubic term is missing: tanh(sqrt(2/pi) * (x + 0.044715 * x**3)).", 0.5 * x * (1 + torch.tanh(c * x))),
    ]


def _gelu_inputs(cases: list[dict]) -> list[dict]:
    for c in cases:
        c["inputs"] = {"x": c["inputs"]["x"] * 3.0}
    return cases


# ============================================================================================== FeedForward
def _ff_variants(ref, x, method):
    lin1, lin2 = ref.layers[0], ref.layers[2]
    return [
        ("exact GELU (nn.GELU()): use the GELU class above (tanh approximation).", lin2(F.gelu(lin1(x)))),
        ("ReLU is used where GPT-2 uses GELU.", lin2(F.relu(lin1(x)))),
        ("the activation is missing between the two linear layers.", lin2(lin1(x))),
        ("a residual connection is added inside FeedForward: return the MLP's output only.", x + ref(x)),
    ]


# ============================================================================================== attention
def _manual_mha(ref, x, scale=None, mask="causal", split="ok", proj=True, dim=-1, dropout_at=None):
    """The reference attention ``ref`` on ``x`` written with one typical mistake (``dropout_at``: ``"scores"`` or
    ``"heads"``, where the exercise does not put ``ref.dropout``)."""
    b, seq, _ = x.shape
    h, hd = ref.n_heads, ref.head_dim

    def heads(t):
        if split == "no_transpose":
            return t.reshape(b, h, seq, hd)
        return t.view(b, seq, h, hd).transpose(1, 2)

    q, k, v = heads(ref.W_query(x)), heads(ref.W_key(x)), heads(ref.W_value(x))
    scores = q @ k.transpose(2, 3) * (1 / math.sqrt(hd) if scale is None else scale)
    if mask == "causal":
        scores = scores.masked_fill(torch.triu(torch.ones(seq, seq, dtype=torch.bool), 1), float("-inf"))
    w = torch.softmax(ref.dropout(scores) if dropout_at == "scores" else scores, dim=dim)
    ctx = (w @ v).transpose(1, 2).reshape(b, seq, h * hd)
    ctx = ref.dropout(ctx) if dropout_at == "heads" else ctx
    return ref.out_proj(ctx) if proj else ctx


def _att_variants(ref, x, method):
    d_out = ref.d_out
    return [
        ("the scores are not scaled: divide by sqrt(head_dim) before the softmax.", _manual_mha(ref, x, scale=1.0)),
        ("the scores are scaled by sqrt(d_out); scale by sqrt(head_dim) = sqrt(d_out // n_heads), the size of one "
         "head's keys.", _manual_mha(ref, x, scale=1 / math.sqrt(d_out))),
        ("the causal mask is missing: fill the scores above the diagonal with -inf before the softmax.",
         _manual_mha(ref, x, mask="none")),
        ("the heads are split without a transpose: view (batch, seq, n_heads, head_dim), then .transpose(1, 2).",
         _manual_mha(ref, x, split="no_transpose")),
        ("out_proj is not applied to the combined heads.", _manual_mha(ref, x, proj=False)),
        ("the softmax runs over the wrong axis: softmax(scores, dim=-1).", _manual_mha(ref, x, dim=-2)),
    ]


def _dropout_elsewhere(ref, x):
    """Attention with dropout where the exercise does not put it: (cause, output thunk) pairs."""
    return [("dropout acts on the scores before the softmax: apply self.dropout to the attention WEIGHTS, after the "
             "softmax (weights = self.dropout(torch.softmax(scores, dim=-1))).",
             lambda: _manual_mha(ref, x, dropout_at="scores")),
            ("dropout acts on the combined heads: apply it to the attention weights, after the softmax.",
             lambda: _manual_mha(ref, x, dropout_at="heads"))]


# ============================================================================================== embedding

def _emb_variants(ref, x, method):
    seq = x.size(1)
    tok = ref.tok_emb(x)
    out = [("the position embedding is not added.", tok),
           ("the position embedding is looked up with the token ids; it takes the positions torch.arange(seq).",
            tok + ref.pos_emb(x.clamp(max=ref.pos_emb.num_embeddings - 1)))]
    if seq < ref.pos_emb.num_embeddings:
        out.append(("positions start at 1; the first position is 0.",
                    tok + ref.pos_emb(torch.arange(1, seq + 1))))
    return out


# ============================================================================================== block
# The student's earlier classes that the block and the model call, with the graded classes those are built from
# (the sandbox's copy of the reference holds every other graded class as a stub): they run with the reference's.
# ``*_ALLOWED``: the reference code that runs then (also GPTConfig.coerce(cfg) and the dataclass's __init__).
BLOCK_PARTS = {"LayerNorm": "gptedu.gpt2.layers.LayerNorm", "GELU": "gptedu.gpt2.layers.GELU",
               "FeedForward": "gptedu.gpt2.layers.FeedForward",
               "MultiHeadAttention": "gptedu.gpt2.attention.MultiHeadAttention"}
MODEL_PARTS = {**BLOCK_PARTS, "GPTEmbedding": "gptedu.gpt2.model.GPTEmbedding",
               "TransformerBlock": "gptedu.gpt2.model.TransformerBlock"}
BLOCK_ALLOWED = (*(f"{name}." for name in BLOCK_PARTS), "GPTConfig.", "__create_fn__.")
MODEL_ALLOWED = (*(f"{name}." for name in MODEL_PARTS), "GPTConfig.", "__create_fn__.")


def _block_variants(ref, x, method):
    post = ref.norm1(x + ref.att(x))
    post = ref.norm2(post + ref.ff(post))
    h = x + ref.att(ref.norm1(x))
    return [
        ("post-LN: GPT-2 normalises *before* each sub-layer: x = x + att(norm1(x)); x = x + ff(norm2(x)).", post),
        ("the shortcut (residual) connections are missing: add the input back after att and after ff.",
         ref.ff(ref.norm2(ref.att(ref.norm1(x))))),
        ("norm1 is used before the feed-forward too: use norm2 there.", h + ref.ff(ref.norm1(h))),
        ("the feed-forward branch is missing.", h),
    ]


# ============================================================================================== model
def _tying_cause(cases: list[dict]) -> list[dict]:
    for case in cases:
        if case["init"]["cfg"]["tie_weights"]:
            case["error_causes"] = {"load_error": "with cfg['tie_weights'], out_head must reuse the embedding matrix: "
                                                  "self.out_head.weight = self.emb.tok_emb.weight (one parameter, "
                                                  "counted once)."}
    return cases


def _model_variants(ref, x, method):
    h = ref.trf_blocks(ref.emb(x))
    return [
        ("final_norm is not applied before out_head.", ref.out_head(h)),
        ("forward returns probabilities: return the raw logits (batch, seq, vocab_size).", torch.softmax(ref(x), -1)),
        ("the transformer blocks are skipped.", ref.out_head(ref.final_norm(ref.emb(x)))),
    ]


# ============================================================================================== parameter count
_COUNT_CFGS_VISIBLE = [_cfg(1024, 50257, 768, 12, 12), _cfg(1024, 50257, 768, 12, 12, tie_weights=True),
                       _cfg(16, 40, 32, 4, 2, qkv_bias=True)]


def _count_cases(hidden: bool, secret: bytes) -> list[dict]:
    d = Draw(secret, "gpt2_param_count")
    cfgs = ([dict(c, context_len=c["context_len"] * d(i, "ctx_scale", low=1, high=64)) for i, (c, _, _) in
             enumerate(_hidden_cfgs(secret, "gpt2_param_count", 3))] if hidden else _COUNT_CFGS_VISIBLE)
    calls = [{"name": f"c{i}", "args": [cfg], "describe": f"cfg with {_short(cfg)}"} for i, cfg in enumerate(cfgs)]
    return [calls_case("gpt2_param_count/0", "gpt_param_count", calls,
                       "gpt_param_count on " + "; ".join(_short(c) for c in cfgs))]


def _short(cfg: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in cfg.items() if k != "drop_rate")


def _count_parts(cfg: dict) -> dict[str, int]:
    d, v, n = cfg["emb_dim"], cfg["vocab_size"], cfg["n_layers"]
    return {
        "token embedding (vocab_size * emb_dim)": v * d,
        "position embedding (context_len * emb_dim)": cfg["context_len"] * d,
        "the LayerNorms (2 per block + final, each 2 * emb_dim)": (2 * n + 1) * 2 * d,
        "the QKV biases (3 * emb_dim per block, only with qkv_bias)": 3 * d * n if cfg["qkv_bias"] else 0,
        "out_proj's bias and the feed-forward biases (emb_dim + 4 emb_dim + emb_dim per block)": 6 * d * n,
        "out_head (vocab_size * emb_dim, only without tying)": 0 if cfg["tie_weights"] else v * d,
    }


def _count_compare(case, outputs):
    failures = []
    for call in case["calls"]:
        cfg = call["args"][0]
        expected = model.gpt_param_count(cfg)
        found = outputs.get(f"result:{call['name']}")
        if not isinstance(found, torch.Tensor) or found.numel() != 1:
            failures.append(Failure("returns one integer", call["describe"], f"got {found!r}", "return an int."))
            continue
        found = int(found.item())
        if found != expected:
            diff = found - expected
            cause = "count every weight matrix and bias: embeddings, per block (2 LayerNorms, Q/K/V, out_proj, " \
                    "feed-forward), the final LayerNorm, and out_head unless it is tied."
            parts = [part for part, size in _count_parts(cfg).items() if size and abs(diff) == size]
            if parts:
                cause = (f"{' or '.join(parts)} {'is missing' if diff < 0 else 'is counted in excess'} (the "
                         "difference is exactly its size).")
            failures.append(Failure("parameter count equals the model's", call["describe"],
                                    f"expected {expected:,}, found {found:,} (a difference of {diff:+,})", cause))
    return failures


# ============================================================================================== 11: BPE
BPE_TEXTS_VISIBLE = ["low low low lower lowest newer newer wider wider wider",
                     "First Citizen:\nBefore we proceed any further, hear me speak.\nAll:\nSpeak, speak. Naïve café!"]
BPE_TEXTS_HIDDEN = [
    "the cat sat on the mat; the cat ate the rat. That's that!",
    "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east, and Juliet is the sun.",
    "naïve café — 東京 東京 2024 2025 ünïcødé ünïcødé",
]


def _pair_cases(hidden: bool, secret: bytes) -> list[dict]:
    seqs = [[1, 2, 3, 1, 2], [104, 101, 108, 108, 111]]
    if hidden:
        d = Draw(secret, "bpe_pair_counts")
        seqs = [_id_list(d, i, high=6) for i in range(4)] + [[d(9, "one", high=255)], []]
    calls = [{"name": f"c{i}", "args": [s], "describe": f"ids={s}"} for i, s in enumerate(seqs)]
    return [calls_case("bpe_pair_counts/0", "get_pair_counts", calls)]


def _id_list(d: Draw, i: int, high: int) -> list[int]:
    """A hidden list of ids with repeats (so that pairs recur and overlap)."""
    return [d(i, j, "id", high=high) for j in range(d(i, "length", low=3, high=24))]


def _calls_compare(check: str, reference: Callable, cause: str | Callable[[dict, dict, object], str]):
    """The ``compare`` of a case whose calls each have one right result, ``reference(*call["args"])``: the student's
    result must equal it (for an empty one, anything empty). ``cause``: the likely mistake, or a function of
    ``(call, expected, found)`` that picks it."""

    def compare(case: dict, outputs: dict) -> list[Failure]:
        failures = []
        for call in case["calls"]:
            expected = reference(*call["args"])
            found = python_result(outputs, f"result:{call['name']}")
            as_stored = {repr(k): repr(v) for k, v in expected.items()} if isinstance(expected, dict) else expected
            if found != as_stored and (expected or found not in ([], {}, None, "")):
                failures.append(Failure(check, call["describe"], f"expected {expected!r}, found {found!r}",
                                        cause(call, expected, found) if callable(cause) else cause))
        return failures

    return compare


_pair_compare = _calls_compare("pair counts", get_pair_counts, lambda call, expected, found: (
    "the right pairs, wrong counts: overlapping pairs such as (5, 5) in [5, 5, 5] count twice."
    if isinstance(found, dict) and set(found) == {repr(k) for k in expected} else
    "count every adjacent pair (ids[i], ids[i+1]) as a tuple key; overlapping pairs count."))


def _merge_cases(hidden: bool, secret: bytes) -> list[dict]:
    args = [([1, 2, 3, 1, 2], (1, 2), 256), ([6, 6, 6], (6, 6), 300)]
    if hidden:
        d = Draw(secret, "bpe_merge")
        args = []
        for i in range(3):
            ids = _id_list(d, i, high=4)
            j = d(i, "at", high=len(ids) - 2)
            args.append((ids, (ids[j], ids[j + 1]), 256 + d(i, "new", high=99)))
        same = d(5, "same", high=9)
        args += [([same] * d(5, "run", low=3, high=7), (same, same), 256), ([], (1, 2), 3)]
    calls = [{"name": f"c{i}", "args": [list(ids), tuple(pair), new],
              "describe": f"ids={ids}, pair={pair}, new_id={new}"} for i, (ids, pair, new) in enumerate(args)]
    return [calls_case("bpe_merge/0", "merge", calls)]


_merge_compare = _calls_compare("merge", merge, lambda call, expected, found: (
    "with a pair like (5, 5), merge left to right without overlap: [5, 5, 5] -> [new, 5]."
    if call["args"][1][0] == call["args"][1][1] else
    "walk left to right; when (ids[i], ids[i+1]) is the pair, emit new_id and skip both."))


def _hidden_texts(secret: bytes, name: str, n: int) -> list[str]:
    """``n`` hidden training texts: pieces of the hidden pool at secret offsets and lengths."""
    d, pool = Draw(secret, name), " ".join(BPE_TEXTS_HIDDEN)
    starts = [d(i, "start", high=len(pool) - 60) for i in range(n)]
    return [pool[a:a + d(i, "length", low=50, high=120)] for i, a in enumerate(starts)]


# the student's earlier functions that train_bpe and encode call: they run with these
BPE_PARTS = {"get_pair_counts": "gptedu.gpt2.bpe.get_pair_counts", "merge": "gptedu.gpt2.bpe.merge"}
BPE_ALLOWED = (*BPE_PARTS, "_merge_pair")  # the reference merge's own loop


def _train_cases(hidden: bool, secret: bytes) -> list[dict]:
    texts = _hidden_texts(secret, "bpe_train", 3) if hidden else BPE_TEXTS_VISIBLE
    merges = [Draw(secret, "bpe_train")(i, "merges", low=8, high=30) for i in range(3)] if hidden else [10, 20]
    calls = [{"name": f"c{i}", "args": [t, n], "describe": f"text={t[:30]!r}..., num_merges={n}"}
             for i, (t, n) in enumerate(zip(texts, merges, strict=True))]
    return [calls_case("bpe_train/0", "train_bpe", calls)]


def reference_merges(text: str, num_merges: int) -> dict[tuple[int, int], int]:
    """The exercise's ``train_bpe`` from the reference tokenizer: ``{(id, id): new_id}`` in merge order."""
    tok = BPETokenizer.train(text, vocab_size=256 + num_merges, special_tokens=())
    return {(tok.token_to_id[a], tok.token_to_id[b]): 256 + k for k, (a, b) in enumerate(tok.merges)}


def _train_compare(case, outputs):
    failures = []
    for call in case["calls"]:
        expected = reference_merges(*call["args"])
        want = {repr(k): repr(v) for k, v in expected.items()}
        found = python_result(outputs, f"result:{call['name']}")
        found = found if isinstance(found, dict) else None
        if found != want:
            exp_list = sorted(expected.items(), key=lambda kv: kv[1])
            found_list = sorted(((k, v) for k, v in (found or {}).items()), key=lambda kv: kv[1])
            first = next((i for i, (a, b) in enumerate(zip(exp_list, found_list, strict=False))
                          if repr(a[0]) != b[0] or repr(a[1]) != b[1]), min(len(exp_list), len(found_list)))
            shown_exp = exp_list[first] if first < len(exp_list) else None
            shown_found = found_list[first] if first < len(found_list) else None
            failures.append(Failure(
                "the learned merges", call["describe"],
                f"{len(expected)} merges expected, {len(found or {})} found; first difference at merge {first}: "
                f"expected {shown_exp}, found {shown_found}",
                "count pairs inside each pre-tokenized chunk (regex.findall(GPT2_PATTERN, text)), never across "
                "chunks; take the most frequent pair, ties to the smallest pair; give it the next id (256, 257, ...);"
                " merge it everywhere before counting again."))
    return failures


def _encode_cases(hidden: bool, secret: bytes) -> list[dict]:
    # (training text, merges, probe): the probes contain words where applying merges in the wrong order (e.g. the
    # first mergeable pair from the left instead of the earliest-learned merge) gives other tokens.
    v, h = BPE_TEXTS_VISIBLE, BPE_TEXTS_HIDDEN
    setups = [(v[1], 20, "hear me, Bear! We cease in peace."), (v[0], 20, "lowest lower")]
    if hidden:
        d = Draw(secret, "bpe_encode")
        texts = _hidden_texts(secret, "bpe_encode", 3)
        setups = [(t, d(i, "merges", low=10, high=40), t[d(i, "a", high=20):]) for i, t in enumerate(texts)]
        setups += [(h[1], 40, "the thunder under yonder window, understood?"), (h[0], 20, "")]
    calls = []
    for i, (text, n, probe) in enumerate(setups):
        merges = reference_merges(text, n)
        calls.append({"name": f"c{i}", "args": [probe, merges], "describe": f"text={probe!r}, {len(merges)} merges"})
    return [calls_case("bpe_encode/0", "encode", calls)]


def _tokenizer_from(merges: dict) -> BPETokenizer:
    vocab = {i: bytes([i]) for i in range(256)}
    ordered = sorted(merges.items(), key=lambda kv: kv[1])
    for (a, b), new in ordered:
        vocab[new] = vocab[a] + vocab[b]
    return BPETokenizer(vocab, [(vocab[a], vocab[b]) for (a, b), _ in ordered], {})


_encode_compare = _calls_compare(
    "encode", lambda text, merges: _tokenizer_from(merges).encode_ordinary(text),
    "split with regex.findall(GPT2_PATTERN, text); for each chunk start from its UTF-8 bytes and apply the merges in "
    "the order they were learned (lowest new id first), then concatenate.")


def _decode_cases(hidden: bool, secret: bytes) -> list[dict]:
    texts = _hidden_texts(secret, "bpe_decode", 3) if hidden else BPE_TEXTS_VISIBLE
    calls = []
    for i, text in enumerate(texts):
        merges = reference_merges(text, 15)
        ids = _tokenizer_from(merges).encode_ordinary(text)
        calls.append({"name": f"c{i}", "args": [ids, merges], "describe": f"the ids of {text[:30]!r}..."})
    return [calls_case("bpe_decode/0", "decode", calls)]


_decode_compare = _calls_compare(
    "decode", lambda ids, merges: _tokenizer_from(merges).decode(ids),
    "rebuild each id's bytes (vocab[new] = vocab[a] + vocab[b], in merge order), join all bytes, then decode once "
    "with .decode('utf-8', errors='replace') — decoding token by token splits multi-byte characters.")


# ============================================================================================== 12: loss, sampling
NB12 = "12_pretraining_sampling"


def _lm_params(init: dict, seed: int) -> dict[str, torch.Tensor]:
    """Weights for the runner's ``TinyCausalLM`` (logits spread so greedy choices are clear)."""
    torch.manual_seed(seed)
    params = {k: v.detach().clone() for k, v in TinyCausalLM(**init).named_parameters()}
    params["fc_out.weight"] = params["fc_out.weight"] * 3.0
    return params


def _lm_init(cfg: dict) -> dict:
    return dict(vocab_size=cfg["vocab_size"], d_model=cfg["emb_dim"], context_len=cfg["context_len"])


def _lm(case: dict) -> TinyCausalLM:
    return TinyCausalLM.with_params(case["init"], case["params"]).eval()


def _lm_case(spec: str, label: str, init: dict, seed: int, calls: list[dict]) -> dict:
    return calls_case(f"{spec}/{seed}", label, calls, f"{label} with a small causal LM (vocab {init['vocab_size']}, "
                      f"context {init['context_len']}), seed {seed}", init=dict(init), params=_lm_params(init, seed))


def _loss_batch_cases(hidden: bool, secret: bytes) -> list[dict]:
    settings = ([(_lm_init(c), seed, (b, s)) for c, (b, s), seed in _hidden_cfgs(secret, "gpt2_calc_loss_batch", 2)]
                if hidden else [(dict(vocab_size=11, d_model=8, context_len=8), 211, (2, 6))])
    cases = []
    for init, seed, shape in settings:
        g = torch.Generator().manual_seed(seed)
        x = torch.randint(init["vocab_size"], shape, generator=g)
        y = torch.randint(init["vocab_size"], shape, generator=g)
        calls = [{"name": "loss", "args": [x, y, "<model>", "cpu"], "describe": f"inputs/targets {tuple(shape)}"}]
        cases.append(_lm_case("gpt2_calc_loss_batch", "calc_loss_batch", init, seed, calls))
    return cases


def _loss_batch_compare(case, outputs):
    failures = []
    call = case["calls"][0]
    x, y = call["args"][0], call["args"][1]
    lm = _lm(case)
    logits = lm(x)
    expected = F.cross_entropy(logits.flatten(0, 1), y.flatten()).detach()
    found = outputs.get("result:loss")
    fail = tensor_failure("loss = mean cross-entropy over every position", case["describe"], "calc_loss_batch(...)",
                          expected, found, 1e-5, 1e-5, "")
    if fail is not None:
        variants = [
            ("softmax is applied before cross_entropy, which applies log-softmax itself: pass the raw logits.",
             F.cross_entropy(torch.softmax(logits, -1).flatten(0, 1), y.flatten())),
            ("only the last position is scored; every position has a target.",
             F.cross_entropy(logits[:, -1], y[:, -1])),
            ("the targets are the inputs: use target_batch.", F.cross_entropy(logits.flatten(0, 1), x.flatten())),
        ]
        fail.cause = match_variant(found, variants, 1e-5) or (
            "flatten logits to (batch*seq, vocab) and targets to (batch*seq,), then F.cross_entropy(logits, targets).")
        failures.append(fail)
    elif not bool(outputs.get("requires_grad:loss", torch.tensor(False))):
        failures.append(Failure("the loss can be back-propagated", case["describe"],
                                "the returned loss does not require grad.",
                                "return the loss tensor itself (not .item(), not under torch.no_grad()): the training "
                                "loop calls loss.backward()."))
    return failures


def _loss_loader_cases(hidden: bool, secret: bytes) -> list[dict]:
    settings = [(dict(vocab_size=11, d_model=8, context_len=8), 221, 4, [None, 2])]
    if hidden:
        d = Draw(secret, "gpt2_calc_loss_loader")
        settings = [(_lm_init(c), seed, b + 2, [None, d(i, "num", low=1, high=b + 1), b + 3][i:])
                    for i, (c, (b, _), seed) in enumerate(_hidden_cfgs(secret, "gpt2_calc_loss_loader", 2))]
    cases = []
    for init, seed, n_batches, nums in settings:
        g = torch.Generator().manual_seed(seed)
        batches = [(torch.randint(init["vocab_size"], (2, init["context_len"]), generator=g),
                    torch.randint(init["vocab_size"], (2, init["context_len"]), generator=g))
                   for _ in range(n_batches)]
        calls = [{"name": f"n{j}", "args": [batches, "<model>", "cpu"], "kwargs": {"num_batches": num},
                  "describe": f"a loader of {n_batches} batches, num_batches={num}"} for j, num in enumerate(nums)]
        calls.append({"name": "empty", "args": [[], "<model>", "cpu"], "describe": "an empty loader"})
        cases.append(_lm_case("gpt2_calc_loss_loader", "calc_loss_loader", init, seed, calls))
    return cases


def _loss_loader_compare(case, outputs):
    failures = []
    lm = _lm(case)
    for call in case["calls"]:
        batches = call["args"][0]
        num = call.get("kwargs", {}).get("num_batches")
        found = outputs.get(f"result:{call['name']}")
        if isinstance(found, torch.Tensor) and found.numel() == 1:
            found_v = float(found)
        else:
            failures.append(Failure("returns one float", call["describe"], f"got {found!r}", "return a float."))
            continue
        if not batches:
            if not math.isnan(found_v):
                failures.append(Failure("an empty loader gives nan", call["describe"], f"got {found_v}",
                                        "return float('nan') when the loader has no batch (no division by zero)."))
            continue
        n = len(batches) if num is None else min(num, len(batches))
        with torch.no_grad():
            expected = sum(calc_loss_batch(x, y, lm, "cpu").item() for x, y in batches[:n]) / n
        if abs(found_v - expected) > 1e-5:
            cause = "average calc_loss_batch over the first num_batches batches (all when None, at most len(loader))."
            with torch.no_grad():
                all_mean = sum(calc_loss_batch(x, y, lm, "cpu").item() for x, y in batches) / len(batches)
                total = expected * n
            if abs(found_v - all_mean) < 1e-5 or abs(found_v - all_mean * len(batches) / n) < 1e-5:
                cause = "num_batches is ignored: stop after num_batches batches."
            elif abs(found_v - total) < 1e-5:
                cause = "the sum is returned: divide by the number of batches used."
            elif num is not None and num > len(batches):
                cause = "num_batches larger than the loader: use min(num_batches, len(data_loader))."
            failures.append(Failure("mean loss over the batches", call["describe"],
                                    f"expected {expected:.6f}, found {found_v:.6f}", cause))
    return failures


def _gen_cases(hidden: bool, secret: bytes) -> list[dict]:
    settings = ([(dict(_lm_init(c), context_len=c["context_len"] + 4), seed)
                 for c, _, seed in _hidden_cfgs(secret, "gpt2_gen_text", 2)] if hidden else
                [(dict(vocab_size=11, d_model=8, context_len=8), 231)])
    cases = []
    for init, seed in settings:
        g = torch.Generator().manual_seed(seed)
        v, ctx = init["vocab_size"], init["context_len"]
        calls = [
            {"name": "greedy", "args": ["<model>", torch.randint(v, (2, 3), generator=g), 5, ctx],
             "describe": "prompt (2, 3), 5 new tokens, greedy", "seed": seed},
            {"name": "crop", "args": ["<model>", torch.randint(v, (1, ctx + 2), generator=g), 4, ctx - 3],
             "describe": f"prompt longer than the context, context_size={ctx - 3}", "seed": seed + 1},
            {"name": "top_k", "args": ["<model>", torch.randint(v, (3, 2), generator=g), 6, ctx],
             "kwargs": {"temperature": 1.0, "top_k": 2}, "describe": "temperature 1.0, top_k=2", "seed": seed + 2},
            {"name": "eos", "args": ["<model>", torch.randint(v, (1, 2), generator=g), 6, ctx],
             "describe": "greedy with eos_id", "seed": seed + 3},
            {"name": "sample", "args": ["<model>", torch.randint(v, (1, 2), generator=g).repeat(3000, 1), 1, ctx],
             "kwargs": {"temperature": 2.0}, "describe": "3000 copies of a prompt, 1 token at temperature 2.0",
             "seed": seed + 4},
        ]
        case = _lm_case("gpt2_gen_text", "gen_text", init, seed, calls)
        # eos: the token greedy decoding produces at its 3rd step
        lm = _lm(case)
        free = gen_text(lm, calls[3]["args"][1], 6, ctx)
        case["calls"][3]["kwargs"] = {"eos_id": int(free[0, 4])}
        # the same with a batch of 3 identical rows: every row reaches eos at the same step
        case["calls"].append(dict(calls[3], name="eos_batch",
                                  args=["<model>", calls[3]["args"][1].repeat(3, 1), 6, ctx],
                                  describe="greedy with eos_id, a batch of 3 rows", soft=True))
        cases.append(case)
    return cases


def _gen_compare(case, outputs):
    failures = []
    lm = _lm(case)
    calls = {c["name"]: c for c in case["calls"]}
    for name in ("greedy", "crop", "eos", "eos_batch"):
        call = calls[name]
        _, idx, n, ctx = call["args"]
        expected = gen_text(lm, idx, n, ctx, **call.get("kwargs", {}))
        found = outputs.get(f"result:{name}")
        if isinstance(found, torch.Tensor) and found.dtype != torch.long:
            failures.append(Failure("token ids are torch.long", call["describe"], f"found dtype {found.dtype}.",
                                    "keep the ids torch.long (int64), as argmax and torch.multinomial return them."))
            continue
        log = outputs.get(f"calls:{name}")
        if name == "crop" and isinstance(log, torch.Tensor) and log.numel():
            fed = [min(ctx, idx.size(1) + step) for step in range(len(log))]
            if log[:, 2].tolist() != fed:
                step = next(i for i, (a, b) in enumerate(zip(log[:, 2].tolist(), fed, strict=True)) if a != b)
                failures.append(Failure("the model sees the last context_size tokens at each step", call["describe"],
                                        f"step {step} fed {int(log[step, 2])} tokens; expected {fed[step]}.",
                                        "crop to exactly the last context_size tokens: idx[:, -context_size:]."))
                continue
        if not isinstance(found, torch.Tensor) or found.shape != expected.shape or not torch.equal(found, expected):
            cause = {"greedy": "temperature 0 means argmax of the last position's logits, appended with torch.cat.",
                     "crop": "feed only the last context_size tokens: model(idx[:, -context_size:]).",
                     "eos": "stop as soon as the chosen token is eos_id, without appending it.",
                     "eos_batch": "the end-of-text check must work for a batch: compare the whole (batch, 1) "
                                  "tensor, e.g. bool((idx_next == eos_id).all()), not idx_next.item()."}[name]
            if name == "eos_batch" and outputs.get("error:eos_batch"):
                found = outputs["error:eos_batch"]
            shown = found.tolist() if isinstance(found, torch.Tensor) else found
            failures.append(Failure(f"{name}: tokens equal the reference", call["describe"],
                                    f"expected {expected.tolist()}, found {shown}", cause))
    call = calls["top_k"]
    found = outputs.get("result:top_k")
    _, idx, n, ctx = call["args"]
    if not isinstance(found, torch.Tensor) or found.shape != (idx.size(0), idx.size(1) + n):
        failures.append(Failure("top_k: shape", call["describe"], f"found {getattr(found, 'shape', found)}",
                                "return the prompt followed by max_new_tokens tokens."))
    else:
        with torch.no_grad():
            for t in range(idx.size(1), found.size(1)):
                top = lm(found[:, :t][:, -ctx:])[:, -1].topk(call["kwargs"]["top_k"]).indices
                bad = ~(top == found[:, t : t + 1]).any(-1)
                if bool(bad.any()):
                    row = int(bad.nonzero()[0])
                    failures.append(Failure("top_k: every token is among the k most likely", call["describe"],
                                            f"row {row}, step {t}: token {int(found[row, t])} is not in the top "
                                            f"{call['kwargs']['top_k']} {top[row].tolist()}",
                                            "set every logit below the k-th largest to -inf before the softmax."))
                    break
    call = calls["sample"]
    found = outputs.get("result:sample")
    _, idx, n, ctx = call["args"]
    if isinstance(found, torch.Tensor) and found.shape == (idx.size(0), idx.size(1) + 1):
        with torch.no_grad():
            logits = lm(idx[:1])[0, -1]
        fail = sampling_failure("sampling follows softmax(logits / temperature)", call["describe"], found[:, -1],
                                logits, call["kwargs"]["temperature"],
                                "sample with torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1).")
        if fail:
            failures.append(fail)
    else:
        failures.append(Failure("sample: shape", call["describe"], f"found {getattr(found, 'shape', found)}",
                                "return the prompt followed by the new token for every row."))
    return failures


# ============================================================================================== 13: KV cache
NB13 = "13_kv_cache"


class CachedAttentionReference(attention.MultiHeadAttention):
    """The exercise's ``CachedMultiHeadAttention``: ``forward(x, use_cache=False)``, ``reset_cache()`` and the two
    drivers the notebook gives (``step_by_step``, ``prefill_then_steps``), on top of the reference attention."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cache = LayerKVCache()

    def reset_cache(self):
        self.cache = LayerKVCache()

    def forward(self, x, use_cache=False):
        return super().forward(x, kv_cache=self.cache if use_cache else None)

    def step_by_step(self, x):
        self.reset_cache()
        return torch.cat([self(x[:, t : t + 1], use_cache=True) for t in range(x.size(1))], dim=1)

    def prefill_then_steps(self, x):
        self.reset_cache()
        half = max(1, x.size(1) // 2)
        outs = [self(x[:, :half], use_cache=True)]
        outs += [self(x[:, t : t + 1], use_cache=True) for t in range(half, x.size(1))]
        return torch.cat(outs, dim=1)


def _cached_att_variants(ref, x, method):
    if method == "forward":
        return _att_variants(ref, x, method)
    b, seq = x.shape[:2]
    half = max(1, seq // 2)
    chunks = ([(t, t + 1) for t in range(seq)] if method == "step_by_step" else
              [(0, half)] + [(t, t + 1) for t in range(half, seq)])

    def heads(t):  # (batch, n, d_out) -> (batch, n_heads, n, head_dim)
        return t.view(b, t.size(1), ref.n_heads, ref.head_dim).transpose(1, 2)

    no_offset = []  # the new queries attend to every cached key, but through the mask's top-left corner
    for start, end in chunks:
        q, k, v = heads(ref.W_query(x[:, start:end])), heads(ref.W_key(x[:, :end])), heads(ref.W_value(x[:, :end]))
        scores = (q @ k.transpose(2, 3) / math.sqrt(ref.head_dim)).masked_fill(ref.mask[:end - start, :end], -math.inf)
        no_offset.append(ref.out_proj((torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(b, end - start, -1)))
    return [("with a cache, the mask must be shifted: the new queries sit at positions start..start+new-1, so use "
             "mask[start:start + new, :start + new], not the top-left corner.", torch.cat(no_offset, 1)),
            ("the cache is not used: the new positions attend only to themselves. Append the new keys/values to the "
             "cached ones and attend to all of them.", torch.cat([ref(x[:, a:e]) for a, e in chunks], 1))]


class _CachedCheck(ModuleCheck):
    def __call__(self, case: dict, outputs: dict) -> list[Failure]:
        failures = super().__call__(case, outputs)
        for f in failures:
            if "step_by_step" in f.tensor or "prefill" in f.tensor:
                f.check = "cached outputs equal uncached ones: " + f.check
        return failures


GEN13_ALLOWED = ("GPTModel.", "GPTEmbedding.", "TransformerBlock.", "MultiHeadAttention.", "LayerNorm.",
                 "FeedForward.", "GELU.", "KVCache.", "LayerKVCache.", "GPTConfig.", "__create_fn__.",
                 "sample_next_token", "filter_logits")


def _cached_gen_cases(hidden: bool, secret: bytes) -> list[dict]:
    settings = ([(dict(c, context_len=c["context_len"] + 2), seed)
                 for c, _, seed in _hidden_cfgs(secret, "kv_cached_generate", 2, drop_rate=0.0)] if hidden else
                [(_cfg(12, 13, 16, 2, 2, drop_rate=0.0), 191)])
    cases = []
    for i, (cfg, seed) in enumerate(settings):
        torch.manual_seed(seed)
        ref = model.GPTModel(cfg)
        g = torch.Generator().manual_seed(seed)
        # weights of std 0.5 (not GPT-2's 0.02) so that every position and token visibly changes the argmax
        params = {k: 0.5 * torch.randn(v.shape, generator=g) for k, v in ref.named_parameters()}
        params.update({k: 1.0 + 0.3 * torch.randn(v.shape, generator=g) for k, v in params.items()
                       if k.endswith("scale")})
        vocab, ctx = cfg["vocab_size"], cfg["context_len"]
        runs = [
            {"name": "inside", "prompt": torch.randint(vocab, (2, 3), generator=g), "max_new_tokens": ctx - 3,
             "temperature": 0.0, "seed": seed},
            {"name": "one_token_prompt", "prompt": torch.randint(vocab, (1, 1), generator=g), "max_new_tokens": 4,
             "temperature": 0.0, "seed": seed + 1},
            {"name": "past_context", "prompt": torch.randint(vocab, (1, ctx - 2), generator=g),
             "max_new_tokens": ctx + 3, "temperature": 0.0, "seed": seed + 2},
            {"name": "long_prompt", "prompt": torch.randint(vocab, (1, ctx + 4), generator=g), "max_new_tokens": 3,
             "temperature": 0.0, "seed": seed + 3},
        ]
        cases.append({
            "id": f"kv_cached_generate/{i}", "kind": "generate",
            "label": "CachedGPT", "init": {"cfg": cfg}, "params": params, "runs": runs, "seed": seed,
            "describe": f"CachedGPT(cfg with {_short(cfg)}).generate (greedy), seed {seed}",
        })
    return cases


def _cached_gen_compare(case, outputs):
    failures = []
    ref = build_reference(model.GPTModel, case["init"], case["params"])
    ctx = case["init"]["cfg"]["context_len"]
    for run in case["runs"]:
        expected = gen_text(ref, run["prompt"].clone(), run["max_new_tokens"], ctx)
        found = outputs.get(f"tokens:{run['name']}")
        what = f"generate(prompt of shape {tuple(run['prompt'].shape)}, max_new_tokens={run['max_new_tokens']})"
        if not isinstance(found, torch.Tensor) or found.shape != expected.shape or not torch.equal(found, expected):
            cause = "greedy decoding with the cache must give exactly the tokens of gen_text without it."
            if run["name"] == "past_context":
                cause = ("past context_len, learned positions shift by one at every step, so the cached keys are "
                         "stale: rebuild the cache from the last context_len tokens (a fresh KVCache and a full "
                         "forward pass) whenever the next token would not fit.")
            elif run["name"] == "long_prompt":
                cause = "crop the prompt to its last context_len tokens before the first (prefill) pass."
            shown = tuple(found.shape) if isinstance(found, torch.Tensor) else found
            failures.append(Failure("tokens equal uncached greedy generation", case["describe"],
                                    f"{what}: expected {expected.tolist()}, found "
                                    f"{found.tolist() if isinstance(found, torch.Tensor) else shown}", cause))
    return failures


NB14 = "14_instruction_finetuning"


# ============================================================================================== 14: prompt format
FORMAT_ENTRIES_VISIBLE = [
    {"instruction": "Translate to modern English.", "input": "Wherefore art thou sad?", "output": "Why are you sad?"},
    {"instruction": "Say goodbye as a Shakespearean character would.", "input": "", "output": "Fare you well."},
]
FORMAT_ENTRIES_HIDDEN = [
    {"instruction": "What does this word mean?", "input": "anon", "output": "Soon."},
    {"instruction": "Write two lines about the sea.", "input": "   ", "output": "x"},
    {"instruction": "Continue this speech.", "input": "Line one,\nline two,", "output": "and three."},
]


def _format_cases(hidden: bool, secret: bytes) -> list[dict]:
    entries = FORMAT_ENTRIES_VISIBLE
    if hidden:
        d = Draw(secret, "format_prompt")
        entries = [dict(e, input=d.choice([e["input"], "", "   ", "a\nb"], i, "input"))
                   for i, e in enumerate(FORMAT_ENTRIES_HIDDEN)]
        entries.append(dict(instruction="Name it.", input=FORMAT_ENTRIES_HIDDEN[d(9, "x", high=2)]["instruction"],
                            output=""))
    calls = [{"name": f"c{i}", "args": [dict(e)], "describe": f"entry with instruction {e['instruction']!r} and "
                                                                f"input {e['input']!r}"} for i, e in enumerate(entries)]
    return [calls_case("format_prompt/0", "format_prompt", calls, f"format_prompt on {len(entries)} entries",
                       entries=entries)]


def _format_compare(case, outputs):
    failures = []
    for i, entry in enumerate(case["entries"]):
        expected = finetune.format_prompt(entry)
        found = outputs.get(f"result:c{i}")
        if found == expected:
            continue
        cause = "compare your text with the template above character by character (blank lines, colons, the " \
                "final newline after '### Response:')."
        if isinstance(found, str):
            if not entry["input"].strip() and "### Input:" in found:
                cause = "with an empty (or blank) input, leave the whole '### Input:' section out."
            elif entry["input"].strip() and "### Input:" not in found:
                cause = "the input is missing: add '\\n\\n### Input:\\n' + entry['input'] when it is not empty."
            elif entry["output"] in found and entry["output"].strip() and not expected.endswith(entry["output"]):
                cause = "the prompt must stop after '### Response:\\n': the output is the target, not the prompt."
            elif found.rstrip("\n") == expected.rstrip("\n"):
                cause = "the prompt ends with '### Response:' followed by exactly one newline."
        failures.append(Failure("the prompt text equals the template", case["calls"][i]["describe"],
                                f"expected {expected!r}\nfound    {found!r}", cause))
        break
    return failures


# ============================================================================================== 14: collate
def _collate_cases(hidden: bool, secret: bytes) -> list[dict]:
    # (batch of (prompt, response), pad_id, max_length)
    settings = [([([1, 2, 3], [4, 5, 0]), ([6, 7], [8, 0])], 0, None),
                ([([10, 11, 12, 13], [14, 15, 16, 50]), ([17, 18], [19, 50])], 50, 5)]
    if hidden:
        d = Draw(secret, "collate_instructions")
        settings = []
        for i in range(3):
            pad = d(i, "pad", high=60)
            batch = [([d(i, r, j, "p", low=1, high=60) for j in range(d(i, r, "plen", low=1, high=6))],
                      [d(i, r, j, "r", low=1, high=60) for j in range(d(i, r, "rlen", low=1, high=4))] + [pad])
                     for r in range(d(i, "rows", low=1, high=3))]
            longest = max(len(p) + len(r) for p, r in batch) - 1
            settings.append((batch, pad, None if i != 1 else max(1, longest - d(i, "cut", high=2))))
    calls = []
    for i, (batch, pad, max_length) in enumerate(settings):
        kwargs = {"pad_id": pad}
        if max_length is not None:
            kwargs["max_length"] = max_length
        calls.append({"name": f"c{i}", "args": [[(list(p), list(r)) for p, r in batch]], "kwargs": kwargs,
                      "describe": f"batch={batch}, pad_id={pad}"
                                  + (f", max_length={max_length}" if max_length else "")})
    return [calls_case("collate_instructions/0", "collate_instructions", calls,
                       f"collate_instructions on {len(settings)} batches", settings=settings)]


def _collate_like(batch, pad, max_length, shift=True, masked=-1, pad_targets=False, mask=True) -> torch.Tensor:
    """The targets of a collate written with one knob turned (a typical mistake)."""
    seqs = [list(p) + list(r) for p, r in batch]
    length = max(len(s) for s in seqs) - 1
    if max_length is not None:
        length = min(length, max_length)
    targets = torch.full((len(batch), length), pad if pad_targets else -100, dtype=torch.long)
    for row, ((prompt, _), seq) in enumerate(zip(batch, seqs, strict=True)):
        y = list((seq[1:] if shift else seq[:-1])[:length])
        if mask:
            for j in range(max(0, min(len(prompt) + masked, len(y)))):
                y[j] = -100
        targets[row, : len(y)] = torch.tensor(y, dtype=torch.long)
    return targets


COLLATE_MISTAKES = [  # (likely cause, the knobs of _collate_like that write that mistake)
    ("the prompt is not masked: set the targets of prompt tokens (targets[j] for j < len(prompt) - 1) to -100.",
     dict(mask=False)),
    ("the padding in the targets is pad_id: padded target positions must be -100 so the loss skips them.",
     dict(pad_targets=True)),
    ("one target too many is masked: the first response token (targets[len(prompt) - 1]) must stay, it is what the "
     "model predicts after reading the whole prompt.", dict(masked=0)),
    ("the last prompt token is not masked as a target: mask targets[j] for every j < len(prompt) - 1.",
     dict(masked=-2)),
    ("the targets are not shifted: targets = (prompt + response)[1:], inputs = (prompt + response)[:-1].",
     dict(shift=False)),
]


def _collate_compare(case, outputs):
    for i, (batch, pad, max_length) in enumerate(case["settings"]):
        desc = case["calls"][i]["describe"]
        x, y = finetune.collate_instructions(batch, pad, max_length=max_length)
        fx, fy = outputs.get(f"result:c{i}.0"), outputs.get(f"result:c{i}.1")
        if not isinstance(fx, torch.Tensor) or not isinstance(fy, torch.Tensor):
            return [Failure("returns (inputs, targets)", desc, "expected a pair of tensors.",
                            "return inputs, targets (both (batch, L) torch.long).")]
        if fx.dtype != torch.long or fy.dtype != torch.long:
            return [Failure("token ids are torch.long", desc, f"found {fx.dtype} and {fy.dtype}.",
                            "torch.tensor(..., dtype=torch.long): embeddings and cross_entropy need integer ids.")]
        fail = tensor_failure("inputs: prompt + response without its last token, right-padded with pad_id", desc,
                              "inputs", x, fx, 0, 0,
                              "inputs = (prompt + response)[:-1], padded on the right with pad_id to the longest "
                              "row" + (", then cut to max_length." if max_length else "."))
        if fail:
            if fx.shape == x.shape and bool((fx[:, 0] == pad).any()) and not bool((x[:, 0] == pad).any()):
                fail.cause = "the rows are padded on the left: pad on the right (the positions must start at 0)."
            elif max_length and fx.size(1) > max_length:
                fail.cause = "max_length is ignored: cut inputs and targets to at most max_length columns."
            return [fail]
        fail = tensor_failure("targets: next tokens, -100 on prompt tokens and padding", desc, "targets", y, fy, 0, 0,
                              "")
        if fail:
            variants = [(text, _collate_like(batch, pad, max_length, **knobs)) for text, knobs in COLLATE_MISTAKES]
            fail.cause = match_variant(fy, variants, 0) or ("targets = (prompt + response)[1:], with targets[j] = "
                                                            "-100 for j < len(prompt) - 1 and on the padding.")
            return [fail]
    return []


COMPONENTS = {c.name: c for c in [
    module_component("gpt2_layer_norm", "LayerNorm (scale/shift, biased variance)", NB10, 5, 5, ModuleCheck(
        layers.LayerNorm, 1e-4, 1e-4, "scale * (x - mean) / sqrt(var + eps) + shift over the last axis, biased "
        "variance, eps = 1e-5.", _ln_variants),
        [(dict(emb_dim=8), (2, 4, 8), 111), (dict(emb_dim=16), (1, 6, 16), 112)], _ln_size, 3, adjust=_ln_inputs),
    module_component("gpt2_gelu", "GELU (tanh approximation)", NB10, 3, 2, ModuleCheck(
        layers.GELU, 1e-5, 1e-5, "0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x ** 3))).", _gelu_variants),
        [({}, (3, 20), 121)], _cfg_size(lambda c: {}), 2, adjust=_gelu_inputs, cases=dict(with_params=False)),
    module_component("gpt2_feed_forward", "FeedForward(cfg)", NB10, 3, 2, ModuleCheck(
        layers.FeedForward, 1e-5, 1e-4, "self.layers = nn.Sequential(nn.Linear(emb_dim, 4 * emb_dim), GELU(), "
        "nn.Linear(4 * emb_dim, emb_dim)).", _ff_variants),
        [({"cfg": _cfg(8, 10, 16, 2, 1)}, (2, 5, 16), 131)], _cfg_size(lambda c: {"cfg": c}), 2,
        prerequisites={"GELU": "gptedu.gpt2.layers.GELU"}, allowed_reference=("GELU.",)),
    module_component("gpt2_attention", "MultiHeadAttention (batched, causal)", NB10, 10, 10, ModuleCheck(
        attention.MultiHeadAttention, 1e-5, 1e-4, "project, split into heads (batch, n_heads, seq, head_dim), mask, "
        "softmax, combine, out_proj.", _att_variants, dropout_elsewhere=_dropout_elsewhere),
        [(dict(d_in=16, d_out=16, context_len=10, drop_rate=0.1, n_heads=4, qkv_bias=False), (2, 10, 16), 141),
         (dict(d_in=8, d_out=12, context_len=9, drop_rate=0.0, n_heads=2, qkv_bias=True), (1, 6, 8), 142)],
        _att_size(drop_rate=0.3), 3, cases=dict(causal=True, train_mode=True), forbid_torch_attention=True),
    module_component("gpt2_embedding", "GPTEmbedding (token + learned position)", NB10, 3, 2, ModuleCheck(
        model.GPTEmbedding, 1e-6, 1e-5, "tok_emb(idx) + pos_emb(torch.arange(seq)), then dropout.", _emb_variants),
        [(dict(context_len=8, vocab_size=20, emb_dim=8, drop_rate=0.1), (2, 6), 151)],
        _cfg_size(lambda c: dict(context_len=c["context_len"], vocab_size=c["vocab_size"], emb_dim=c["emb_dim"],
                                 drop_rate=0.3), tokens=True), 2, cases=dict(token_ids=True, train_mode=True)),
    module_component("gpt2_block", "TransformerBlock (pre-LN)", NB10, 5, 5, ModuleCheck(
        model.TransformerBlock, 1e-5, 1e-4, "x = x + drop_shortcut(att(norm1(x))); x = x + "
        "drop_shortcut(ff(norm2(x))).", _block_variants),
        [({"cfg": _cfg(8, 10, 16, 2, 1)}, (2, 8, 16), 161)], _cfg_size(lambda c: {"cfg": c}, min_seq=2), 2,
        cases=dict(causal=True, train_mode=True), prerequisites=BLOCK_PARTS,
        forbid_torch_attention=True, allowed_reference=BLOCK_ALLOWED),
    module_component("gpt2_model", "GPTModel (with weight tying)", NB10, 5, 5, ModuleCheck(
        model.GPTModel, 2e-5, 1e-4, "emb -> trf_blocks -> final_norm -> out_head (no bias), returning logits.",
        _model_variants),
        [({"cfg": _cfg(10, 17, 16, 2, 2)}, (2, 10), 171),
         ({"cfg": _cfg(8, 11, 8, 2, 1, tie_weights=True)}, (1, 8), 172)],
        _cfg_size(lambda c: {"cfg": c}, min_seq=2, tokens=True), 2, adjust=_tying_cause,
        cases=dict(causal=True, token_ids=True), prerequisites=MODEL_PARTS,
        forbid_torch_attention=True, allowed_reference=MODEL_ALLOWED),
    component("gpt2_param_count", "gpt_param_count (closed form)", "gpt_param_count", NB10, 3, 2, _count_cases,
              _count_compare),
    component("bpe_pair_counts", "get_pair_counts", "get_pair_counts", NB11, 3, 2, _pair_cases, _pair_compare),
    component("bpe_merge", "merge", "merge", NB11, 3, 2, _merge_cases, _merge_compare),
    component("bpe_train", "train_bpe", "train_bpe", NB11, 5, 5, _train_cases, _train_compare, BPE_PARTS,
              allowed_reference=BPE_ALLOWED),
    component("bpe_encode", "encode", "encode", NB11, 5, 5, _encode_cases, _encode_compare, BPE_PARTS,
              allowed_reference=BPE_ALLOWED),
    component("bpe_decode", "decode", "decode", NB11, 3, 2, _decode_cases, _decode_compare),
    component("gpt2_calc_loss_batch", "calc_loss_batch", "calc_loss_batch", NB12, 3, 2, _loss_batch_cases,
              _loss_batch_compare),
    component("gpt2_calc_loss_loader", "calc_loss_loader", "calc_loss_loader", NB12, 3, 2, _loss_loader_cases,
              _loss_loader_compare, {"calc_loss_batch": "gptedu.gpt2.train.calc_loss_batch"},
              allowed_reference=("calc_loss_batch",)),
    component("gpt2_gen_text", "gen_text (greedy, crop, top-k, eos, temperature)", "gen_text", NB12, 8, 7, _gen_cases,
              _gen_compare),
    module_component("kv_cached_attention", "CachedMultiHeadAttention (KV cache)", NB13, 10, 10, _CachedCheck(
        CachedAttentionReference, 1e-5, 1e-4, "forward(x) must equal plain attention; step_by_step / "
        "prefill_then_steps feed the same x through the cache and must give the same outputs.", _cached_att_variants),
        [(dict(d_in=16, d_out=16, context_len=10, drop_rate=0.1, n_heads=4, qkv_bias=False), (2, 10, 16), 181),
         (dict(d_in=8, d_out=12, context_len=9, drop_rate=0.0, n_heads=2, qkv_bias=True), (1, 7, 8), 182)],
        _att_size(min_seq=2), 3, cases=dict(label="CachedMultiHeadAttention", causal=True,
                                                       methods=("forward", "step_by_step", "prefill_then_steps")),
        forbid_torch_attention=True, equivalents=("MultiHeadAttention",)),
    component("kv_cached_generate", "CachedGPT.generate (greedy with a KV cache)", "CachedGPT", NB13, 5, 5,
              _cached_gen_cases, _cached_gen_compare, forbid_torch_attention=True, allowed_reference=GEN13_ALLOWED),
    component("format_prompt", "format_prompt (the instruction template)", "format_prompt", NB14, 3, 2,
              _format_cases, _format_compare),
    component("collate_instructions", "collate_instructions (padding and prompt masking)", "collate_instructions",
              NB14, 8, 7, _collate_cases, _collate_compare),
]}
