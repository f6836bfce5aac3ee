"""Part 1 ("Building a GPT from scratch", notebooks 01-09): one :class:`Component` per graded exercise.

Each component's cases are plain data (visible: fixed; hidden: sizes, seeds and inputs drawn from the course secret
with :class:`~gptedu.grading.components.base.Draw`), run by :func:`gptedu.grading.runner.run_case`, and compared with
the reference in ``gptedu.char``, ``gptedu.data`` and ``gptedu.sampling``. Nothing here imports part 2 (or ``regex``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from gptedu.char import attention, decoder, feedforward, loop, model, positional
from gptedu.data import CharTokenizer, TextDataset
from gptedu.grading.components.base import (
    Draw,
    ModuleCheck,
    build_reference,
    calls_case,
    component,
    gen,
    module_component,
    python_result,
    reference_params,
    sampling_failure,
    shape_text,
)
from gptedu.grading.report import Failure, tensor_failure
from gptedu.grading.runner import TinyCausalLM, kwargs_text
from gptedu.sampling import filter_logits


# ============================================================================================== 02 positional
def _pe_table(num: int, d: int, swap: bool = False, exp_scale: float = 1.0, start: int = 0) -> torch.Tensor:
    pos = torch.arange(start, start + num, dtype=torch.float64)[:, None]
    two_i = torch.arange(0, d, 2, dtype=torch.float64)
    angle = pos / (10000.0 ** (exp_scale * two_i / d))
    pe = torch.zeros(num, d, dtype=torch.float64)
    first, second = (torch.cos, torch.sin) if swap else (torch.sin, torch.cos)
    pe[:, 0::2] = first(angle)
    pe[:, 1::2] = second(angle[:, : d // 2])
    return pe


def _pe_size(d: Draw, i: int) -> tuple[dict, tuple, int]:
    d_model, seq = 2 * d(i, "half_d", low=2, high=32), d(i, "seq", low=1, high=300)
    init = dict(d_model=d_model) if i == 0 else dict(d_model=d_model, num_range=seq + d(i, "spare", high=40))
    return init, (d(i, "batch", low=1, high=3), seq, d_model), d.seed(i)


def _pe_variants(ref, x, method):
    seq, d = x.shape[1], x.shape[2]
    return [
        ("sin and cos are swapped: even columns (2i) take sin, odd columns (2i+1) take cos.",
         x + _pe_table(seq, d, swap=True)[None]),
        ("the exponent is twice too large: the column index j already equals 2i for even columns, so use "
         "10000^(j/d_model) for the pair (j, j+1), not 10000^(2j/d_model).",
         x + _pe_table(seq, d, exp_scale=2.0)[None]),
        ("the exponent uses i instead of 2i: the frequency of pair i is 1/10000^(2i/d_model).",
         x + _pe_table(seq, d, exp_scale=0.5)[None]),
        ("positions start at 1; the first position is pos = 0.", x + _pe_table(seq, d, start=1)[None]),
        ("forward returns the encoding alone: it must return x + pe[:, :seq].",
         _pe_table(seq, d)[None].expand_as(x).clone()),
        ("forward returns x unchanged: the positional code is never added; return x + self.pe[:, :seq].",
         x.clone()),  # (variant added by the mistakes suite, tests/mistakes/)
    ]


def _pe_extra(case, outputs, ref) -> list[Failure]:
    failures = []
    init = case["init"]
    num_range, d = init.get("num_range", 5000), init["d_model"]
    if int(outputs.get("_num_params", torch.tensor(0))) != 0:
        failures.append(Failure("no learnable parameters", case["describe"],
                                f"found {int(outputs['_num_params'])} learnable parameters, expected 0.",
                                "the table is fixed: store it with self.register_buffer('pe', ...), not nn.Parameter."))
    if "buffer:pe" not in outputs:
        where = "a parameter" if "param:pe" in outputs else "missing"
        failures.append(Failure("`pe` is a registered buffer", case["describe"], f"`pe` is {where}.",
                                "register the table with self.register_buffer('pe', pe) so it moves with .to(device) "
                                "and is saved with the model."))
    else:
        expected = _pe_table(num_range, d)[None].float()
        fail = tensor_failure("buffer `pe` equals the closed form PE[pos,2i]=sin(pos/10000^(2i/d)), "
                              "PE[pos,2i+1]=cos(...)", case["describe"], "pe", expected, outputs["buffer:pe"], 2e-3,
                              0.0, "")
        if fail is not None:
            fail.cause = ("expected shape (1, num_range, d_model): add the batch dimension with pe.unsqueeze(0)."
                          if "shape" in fail.message else "compare your formula with the one in the markdown above.")
            failures.append(fail)
    return failures


# ============================================================================================== 03 head
def _attn(q, k, v, scale: float, mask_mode: str = "before", dim: int = -1):
    seq = q.size(1)
    scores = q @ k.transpose(-2, -1) * scale
    tril = torch.tril(torch.ones(seq, seq, dtype=torch.bool))
    if mask_mode == "before":
        scores = scores.masked_fill(~tril, float("-inf"))
    elif mask_mode == "upper":
        scores = scores.masked_fill(tril.T.logical_not(), float("-inf"))
    w = torch.softmax(scores, dim=dim)
    if mask_mode == "after":
        w = w.masked_fill(~tril, 0.0)
    return w, w @ v


def _head_variants(ref, x, method):
    q, k, v = ref.query(x), ref.key(x), ref.value(x)
    d_k, d_v, d_model = q.size(-1), v.size(-1), x.size(-1)
    options = [
        ("the scores are not scaled: divide q @ k^T by sqrt(d_k) before the softmax.", 1.0, "before", -1),
        ("the scores are divided by d_k instead of sqrt(d_k).", 1 / d_k, "before", -1),
        ("the scores are scaled with d_model instead of d_k: divide by sqrt(d_k), the size of one query.",
         1 / math.sqrt(d_model), "before", -1),
        ("the scores are scaled with d_v instead of d_k.", 1 / math.sqrt(d_v), "before", -1),
        ("the causal mask is missing: set the scores of positions after t to -inf before the softmax.",
         1 / math.sqrt(d_k), "none", -1),
        ("the mask is applied after the softmax: mask the scores (with -inf) before the softmax so each row still "
         "sums to 1.", 1 / math.sqrt(d_k), "after", -1),
        ("the mask is the wrong triangle: position t may look at positions <= t (torch.tril), not >= t.",
         1 / math.sqrt(d_k), "upper", -1),
        ("the softmax runs over the wrong axis: normalise over the keys, softmax(scores, dim=-1).",
         1 / math.sqrt(d_k), "before", -2),
    ]
    out = []
    for text, scale, mode, dim in options:
        w, y = _attn(q, k, v, scale, mode, dim)
        out.append((text, y if method == "forward" else w))
    return out


def _head_extra(case, outputs, ref) -> list[Failure]:
    failures = []
    w = outputs.get("attention_weights:x")
    if isinstance(w, torch.Tensor) and w.dim() == 3 and w.size(-1) == w.size(-2):
        seq = w.size(-1)
        sums = w.double().sum(-1)
        fail = tensor_failure("each row of the attention weights sums to 1", case["describe"],
                              "attention_weights(x).sum(-1)", torch.ones_like(sums), sums, 1e-5, 0.0,
                              "the softmax must run over the last axis (the keys), after masking.")
        if fail:
            failures.append(fail)
        upper = torch.triu(torch.ones(seq, seq, dtype=torch.bool), diagonal=1)
        leaked = w.double().abs()[:, upper]
        if leaked.numel() and float(leaked.max()) > 1e-6:
            b, i, j = torch.nonzero(w.double().abs() * upper > 1e-6)[0].tolist()
            failures.append(Failure(
                "causality: no weight on future positions", case["describe"],
                f"position {i} gives weight {float(w[b, i, j]):.4g} to the later position {j} (batch {b}).",
                "positions after t receive attention: is the mask applied before the softmax, with torch.tril?",
                "attention_weights(x)"))
    return failures


def _head_size(d: Draw, i: int) -> tuple[dict, tuple, int]:
    init = dict(d_model=d(i, "d_model", low=4, high=40), d_k=d(i, "d_k", low=2, high=16),
                d_v=d(i, "d_v", low=2, high=16), context_len=d(i, "ctx", low=4, high=64))
    if i == 1:  # a full window longer than any the notebook shows (up to 64) or defaults to (100): a mask size
        init["context_len"] = d(i, "long_ctx", low=101, high=160)  # written into the code shows
    seq = init["context_len"] if i == 1 else d(i, "seq", low=2, high=init["context_len"])
    return init, (d(i, "batch", low=1, high=4), seq, init["d_model"]), d.seed(i)


# ============================================================================================== 04 multi-head
def _mha_size(d: Draw, i: int) -> tuple[dict, tuple, int]:
    heads = 1 if i == 2 else d(i, "heads", low=2, high=8)
    init = dict(d_model=heads * d(i, "head_size", low=1, high=6), num_heads=heads,
                context_len=d(i, "ctx", low=4, high=40))
    seq = d(i, "seq", low=2, high=init["context_len"])
    return init, (d(i, "batch", low=1, high=3), seq, init["d_model"]), d.seed(i)


def _mha_variants(ref, x, method):
    heads = torch.cat([h(x) for h in ref.heads], dim=-1)
    return [
        ("the output projection is missing: apply self.proj to the concatenated heads.", heads),
        ("the projection's bias is missing: proj is nn.Linear(d_model, d_model) with its bias.",
         heads @ ref.proj.weight.T),
        ("the heads are summed instead of concatenated along the last axis.",
         ref.proj(sum(h(x) for h in ref.heads).repeat(1, 1, len(ref.heads)))),
    ]


# ============================================================================================== 05 feed-forward
def _ffn_size(d: Draw, i: int) -> tuple[dict, tuple, int]:
    init = dict(d_model=d(i, "d_model", low=4, high=32))
    if i < 2:  # the third uses the default d_ff
        init["d_ff"] = d(i, "d_ff", low=4, high=96)
    return init, (d(i, "batch", low=1, high=3), d(i, "seq", low=1, high=12), init["d_model"]), d.seed(i)


def _ffn_variants(ref, x, method):
    lin1, lin2 = ref.ffn[0], ref.ffn[2]
    return [
        ("ReLU is used where the exercise asks for GELU (nn.GELU()).", lin2(F.relu(lin1(x)))),
        ("GELU with the tanh approximation: the exercise uses the exact nn.GELU() (approximate='none').",
         lin2(F.gelu(lin1(x), approximate="tanh"))),
        ("the activation is missing between the two linear layers.", lin2(lin1(x))),
        ("a residual connection is added inside FeedForward: return ffn(x) only (the decoder layer adds x).",
         x + ref(x)),
    ]


# ============================================================================================== 06 decoder layer
LAYER_PREREQS = ("MultiHeadAttention.", "Head.", "FeedForward.")


def _stack_size(d: Draw, i: int, layers: bool = False) -> tuple[dict, tuple, int]:
    """Hidden sizes of a decoder layer or stack: d_model divisible by num_heads, seq <= context_len."""
    heads = d(i, "heads", low=1, high=4)
    init = dict(d_model=heads * d(i, "head_size", low=2, high=8), num_heads=heads,
                d_ff=d(i, "d_ff", low=4, high=48), context_len=d(i, "ctx", low=4, high=24))
    if layers:
        init["num_layers"] = d(i, "layers", low=1, high=3)
    seq = d(i, "seq", low=2, high=init["context_len"])
    return init, (d(i, "batch", low=1, high=3), seq, init["d_model"]), d.seed(i)


def _layer_variants(ref, x, method):
    a, f, n1, n2 = ref.attn, ref.ffn, ref.norm1, ref.norm2
    h = n1(x + a(x))
    post = n2(h + f(h))
    y1 = x + a(n1(x))
    swapped_1 = x + a(n2(x))
    return [
        ("post-norm instead of pre-norm: normalise *before* each sub-layer, x = x + attn(norm1(x)).", post),
        ("the residual connection around attention is missing: x = x + attn(norm1(x)).", a(n1(x)) + f(n2(a(n1(x))))),
        ("the residual connection around the feed-forward is missing: x = x + ffn(norm2(x)).", f(n2(y1))),
        ("norm1 and norm2 are swapped: norm1 goes before attention, norm2 before the feed-forward.",
         swapped_1 + f(n1(swapped_1))),
        ("the feed-forward reads the layer input instead of the attention output: x = x + attn(norm1(x)), then "
         "x = x + ffn(norm2(x)) on the updated x.", y1 + f(n2(x))),
        ("no layer norm at all.", (x + a(x)) + f(x + a(x))),
    ]


# ============================================================================================== 07 decoder + GPT
DECODER_PREREQS = (*LAYER_PREREQS, "TransformerDecoderLayer.")
GPT_PREREQS = (*DECODER_PREREQS, "TransformerDecoder.", "PositionalEncoding.", "sinusoidal_table")
GPT_PREREQ_NAMES = {"ReferenceDecoder": "gptedu.char.decoder.TransformerDecoder",
                    "PositionalEncoding": "gptedu.char.positional.PositionalEncoding"}


def _decoder_variants(ref, x, method):
    y = x
    for layer in ref.layers:
        y = layer(y)
    only_first = ref.norm(ref.layers[0](x))
    return [
        ("the final LayerNorm (self.norm) is missing after the last layer.", y),
        ("only the first layer is applied: loop over every layer in self.layers, feeding each the previous output.",
         only_first),
    ]


def _gpt_size(d: Draw, i: int) -> tuple[dict, tuple, int]:
    init, (_, seq, _), seed = _stack_size(d, i, layers=True)
    return dict(vocab_size=d(i, "vocab", low=5, high=65), **init), (1 + i, seq), seed


def _gpt_variants(ref, x, method):
    emb = ref.embedding(x)
    return [
        ("the positional encoding is not added: x = self.pos_encoding(self.embedding(x)).",
         ref.fc_out(ref.decoder(emb))),
        ("the embeddings are scaled by sqrt(d_model); this model adds the positional encoding to the plain "
         "embeddings.", ref.fc_out(ref.decoder(ref.pos_encoding(emb * math.sqrt(emb.size(-1)))))),
        ("forward returns probabilities (softmax): return the raw logits; the loss and the sampler apply softmax.",
         torch.softmax(ref(x), dim=-1)),
        ("the decoder is skipped.", ref.fc_out(ref.pos_encoding(emb))),
    ]


GEN_TEMPERATURE_GREEDY = 1e-4  # notebook 07's generate() divides by the temperature, so "greedy" is T -> 0


def _generate_cases(hidden: bool, secret: bytes) -> list[dict]:
    settings = ([(init, seed, (0.5, 2.0)[i % 2])
                 for i, (init, _, seed) in enumerate(_gpt_size(Draw(secret, "gpt_generate"), i) for i in range(2))]
                if hidden else
                [(dict(vocab_size=13, d_model=16, num_heads=2, d_ff=32, context_len=8, num_layers=2), 71, 0.6)])
    cases = []
    for i, (init, seed, temp) in enumerate(settings):
        torch.manual_seed(seed)
        ref = model.GPTModel(**init)
        params = reference_params(ref, seed)
        params["fc_out.weight"] = params["fc_out.weight"] * 6.0  # spread the logits: clear argmax, peaked sampling
        g = gen(seed)
        vocab, ctx = init["vocab_size"], init["context_len"]
        sample_prompt = torch.randint(vocab, (1, 2), generator=g).repeat(4000, 1)
        runs = [
            {"name": "greedy", "prompt": torch.randint(vocab, (2, 3), generator=g), "max_new_tokens": 6,
             "temperature": GEN_TEMPERATURE_GREEDY, "seed": seed},
            {"name": "crop", "prompt": torch.randint(vocab, (1, ctx + 3), generator=g), "max_new_tokens": 5,
             "temperature": GEN_TEMPERATURE_GREEDY, "seed": seed + 1},
            {"name": "shape", "prompt": torch.randint(vocab, (3, 4), generator=g), "max_new_tokens": 5,
             "temperature": 1.0, "seed": seed + 2},
            {"name": "sample", "prompt": sample_prompt, "max_new_tokens": 1, "temperature": temp, "seed": seed + 3},
        ]
        cases.append({
            "id": f"gpt_generate/{i}", "kind": "generate", "label": "GPTModel",
            "init": dict(init), "params": params, "runs": runs, "seed": seed,
            "describe": f"GPTModel({kwargs_text(init)}).generate, seed {seed}",
        })
    return cases


def _generate_problem(ref: nn.Module, run: dict, found, calls) -> tuple[str, str, str] | None:
    """The first problem of one ``generate`` run, ``(check, message, cause)``; ``calls``: the stand-in forward's
    log, ``(steps, 3)`` of (length fed, autograd on, training mode)."""
    prompt, steps, ctx, vocab = run["prompt"], run["max_new_tokens"], ref.context_len, ref.fc_out.out_features
    expected_shape = (prompt.size(0), prompt.size(1) + steps)
    if not isinstance(found, torch.Tensor) or tuple(found.shape) != expected_shape:
        got = tuple(found.shape) if isinstance(found, torch.Tensor) else type(found).__name__
        return ("generate returns the prompt followed by the new tokens",
                f"expected shape {expected_shape}, found {got}.", "append each new token with torch.cat([idx, "
                "next_token], dim=1) and return the whole sequence (prompt included).")
    if not torch.equal(found[:, : prompt.size(1)].long(), prompt):
        return ("the prompt is kept unchanged at the start", "the first tokens of the result differ from "
                "start_tokens.", "return torch.cat of the prompt and the generated tokens.")
    if found.dtype != torch.long:
        return ("token ids are torch.long", f"found dtype {found.dtype}.", "keep the ids torch.long (int64): "
                "torch.multinomial returns int64; do not convert them.")
    if isinstance(calls, torch.Tensor) and calls.numel():
        lengths, grad, training = calls.T
        if bool(grad.any()) or bool(training.any()):
            return ("generate runs in eval mode, under torch.no_grad()", "the model ran with autograd on."
                    if bool(grad.any()) else "the model ran in training mode.", "decorate generate with "
                    "@torch.no_grad() and call self.eval() first (restore the mode at the end), as the exercise says.")
        fed = [min(ctx, prompt.size(1) + step) for step in range(steps)]
        seen = lengths.tolist()[:steps]  # a call after the last step (an unused extra pass) changes no token
        if seen != fed[: len(seen)]:
            step = next(i for i, (a, b) in enumerate(zip(seen, fed, strict=False)) if a != b)
            return ("the model sees the last context_len tokens at each step", f"step {step} fed "
                    f"{int(lengths[step])} tokens to the model; expected {fed[step]} (context_len={ctx}).",
                    "crop to exactly the last context_len tokens: idx[:, -self.context_len:]"
                    + (" (one token short)." if int(lengths[step]) == fed[step] - 1 else "."))
    if found.min() < 0 or found.max() >= vocab:
        return ("tokens are valid ids", f"found ids outside 0..{vocab - 1}.",
                "sample indices of the vocabulary from the last position's logits.")
    if run["name"] == "shape":
        return None
    expected = ref.generate(prompt, steps, temperature=0.0)
    if torch.equal(found.long(), expected):
        return None
    pos = torch.nonzero(found.long() != expected)[0].tolist()
    logits_here = ref(expected[:, max(0, pos[1] - ctx): pos[1]][pos[0]: pos[0] + 1])[0, -1]
    message = (f"token {pos[1]} of row {pos[0]}: expected {int(expected[tuple(pos)])} (the argmax, logit "
               f"{float(logits_here.max()):.3f}), found {int(found[tuple(pos)])}.")
    if run["name"] == "crop":
        return ("the context is cropped to the last context_len tokens", message, "the prompt is longer than "
                "context_len: feed only the last context_len tokens to the model at each step, "
                "idx[:, -self.context_len:].")
    return ("temperature -> 0 gives the greedy (argmax) continuation", message, "with temperature -> 0 the sampled "
            "token must be the argmax of the last position's logits: divide the logits by the temperature before "
            "the softmax, and use the logits of the LAST position, logits[:, -1, :].")


def _generate_compare(case, outputs):
    failures = []
    ref = build_reference(model.GPTModel, case["init"], case["params"])
    runs = {r["name"]: r for r in case["runs"]}
    for name in ("shape", "greedy", "crop"):
        run = runs[name]
        desc = (f"{case['describe']}: start_tokens of shape {shape_text(run['prompt'])}, "
                f"max_new_tokens={run['max_new_tokens']}, temperature={run['temperature']}")
        problem = _generate_problem(ref, run, outputs.get(f"tokens:{name}"), outputs.get(f"forward_calls:{name}"))
        if problem:
            failures.append(Failure(problem[0], desc, *problem[1:], f"tokens:{name}"))
    run = runs["sample"]
    found = outputs.get("tokens:sample")
    prompt = run["prompt"]
    if isinstance(found, torch.Tensor) and found.shape == (prompt.size(0), prompt.size(1) + 1):
        with torch.no_grad():
            logits = ref(prompt[:1])[0, -1]
        fail = sampling_failure("sampled tokens follow softmax(logits / temperature)",
                                f"{case['describe']}: {len(found)} identical prompts, one new token each, "
                                f"temperature={run['temperature']}", found[:, -1], logits, run["temperature"],
                                "sample from softmax(logits[:, -1, :] / temperature) with torch.multinomial(probs, "
                                "num_samples=1).", "tokens:sample")
        if fail:
            failures.append(fail)
    return failures


# ============================================================================================== 01 data
SAMPLE_TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
               "First Citizen:\nYou are all resolved rather to die than to famish?\n")


def _tokenizer_cases(hidden: bool, secret: bytes) -> list[dict]:
    texts = [("hello world!", "hello", "hi?")]
    if hidden:
        d = Draw(secret, "tokenizer")
        texts = []
        for i in range(2):
            start = d(i, "start", high=len(SAMPLE_TEXT) - 60)
            corpus = SAMPLE_TEXT[start:start + d(i, "length", low=30, high=60)]
            a = d(i, "text", high=len(corpus) - 12)
            text = corpus[a:a + d(i, "text_len", low=4, high=12)]
            texts.append((corpus, text, d.choice(["ZQ#", "é", "7", "~x"], i)))
    cases = []
    for i, (corpus, text, unknown) in enumerate(texts):
        chars = sorted(set(corpus))
        unknown = "".join(ch for ch in unknown if ch not in chars) or "\u00e9"
        ids = [chars.index(c) for c in reversed(text)]
        cases.append(calls_case(
            f"tokenizer/{i}", "CharTokenizer", [
                {"name": "encode", "method": "encode", "args": [text], "describe": repr(text)},
                {"name": "decode", "method": "decode", "args": [ids], "describe": str(ids)},
                {"name": "decode_tensor", "method": "decode", "args": [torch.tensor(ids)], "soft": True,
                 "describe": f"torch.tensor({ids})"},
                {"name": "unknown", "method": "encode", "args": [text[:2] + unknown], "expect_error": True,
                 "describe": repr(text[:2] + unknown)},
            ], f"CharTokenizer(sorted(set({corpus[:20]!r}{'...' if len(corpus) > 20 else ''})))",
            construct={"args": [chars]}, attributes=["vocab_size", "s2i", "i2s"], chars=chars, unknown=unknown))
    return cases


def _tokenizer_compare(case, outputs):
    failures = []
    ref = CharTokenizer(case["chars"])
    desc = case["describe"]
    vs = outputs.get("attr:vocab_size")
    if not isinstance(vs, torch.Tensor) or int(vs) != ref.vocab_size:
        failures.append(Failure("vocab_size", desc, f"expected {ref.vocab_size}, found {vs}.",
                                "vocab_size is the number of distinct characters, len(chars) (a number, e.g. a "
                                "@property, not a method)."))
    for attr, mapping in (("s2i", ref.s2i), ("i2s", ref.i2s)):
        found = python_result(outputs, f"attr:{attr}")
        if found != {repr(k): repr(v) for k, v in mapping.items()}:
            failures.append(Failure(f"`{attr}` maps {'characters to ids' if attr == 's2i' else 'ids to characters'}",
                                    desc, f"expected a dict like {dict(list(mapping.items())[:3])} ..., found "
                                          f"keys {str(list(found) if isinstance(found, dict) else found)[:60]}.",
                                    "s2i = {ch: i for i, ch in enumerate(chars)}; i2s is its inverse."))
    calls = {c["name"]: c for c in case["calls"]}
    enc = tensor_failure("encode", f"{desc}.encode({calls['encode']['describe']})", "encode(text)",
                         torch.tensor(ref.encode(calls["encode"]["args"][0])), outputs.get("result:encode"), 0.0,
                         0.0, "encode returns a list of ids, one per character, s2i[ch].")
    if enc:
        failures.append(enc)
    expected_text = ref.decode(calls["decode"]["args"][0])
    if outputs.get("result:decode") != expected_text:
        failures.append(Failure("decode", f"{desc}.decode({calls['decode']['describe']})",
                                f"expected {expected_text!r}, found {outputs.get('result:decode')!r}.",
                                "decode joins i2s[i] of each id into one string: ''.join(...)."))
    elif outputs.get("result:decode_tensor") != expected_text:
        found = outputs.get("result:decode_tensor", outputs.get("error:decode_tensor", ""))
        failures.append(Failure("decode accepts a 1-D tensor of ids",
                                f"{desc}.decode({calls['decode_tensor']['describe']})",
                                f"expected {expected_text!r}, found {found!r}.",
                                "the exercise says decode accepts a list or a 1-D tensor: turn each id into a "
                                "Python int (int(i), or ids.tolist() first) before looking it up in i2s."))
    raised = outputs.get("raised:unknown", "")
    unknown = case["unknown"]
    where = f"{desc}.encode({calls['unknown']['describe']})"
    if not raised:
        failures.append(Failure("unknown characters raise a clear error", where,
                                "no exception was raised.",
                                "raise ValueError naming the unknown character(s) instead of skipping them."))
    elif not raised.startswith("ValueError") or not any(ch in raised for ch in unknown):
        kind = raised.split(":", 1)[0]
        failures.append(Failure("unknown characters raise a ValueError that names them", where,
                                f"the error was a {kind}" + ("" if raised.startswith("ValueError") else
                                                             ", not a ValueError") + ".",
                                "check each character first and raise ValueError(f\"... {ch!r} ...\") naming it"
                                + (" (a failed dict lookup raises KeyError, which the exercise does not ask for)."
                                   if kind == "KeyError" else ".")))
    return failures


def _dataset_cases(hidden: bool, secret: bytes) -> list[dict]:
    d = Draw(secret, "text_dataset")
    shapes = ([(d(i, "n", low=1, high=20), d(i, "seq", low=1, high=8), d.seed(i)) for i in range(3)] if hidden else
              [(4, 6, 81)])
    cases = []
    for i, (n, seq, seed) in enumerate(shapes):
        g = gen(seed)
        src = torch.randint(65, (n, seq), generator=g).tolist()
        tgt = torch.randint(65, (n, seq), generator=g).tolist()
        picks = sorted({0, n - 1, n // 2})
        calls = [{"name": "len", "method": "__len__", "args": [], "describe": ""}]
        calls += [{"name": f"item{j}", "method": "__getitem__", "args": [j], "describe": str(j)} for j in picks]
        cases.append(calls_case(f"text_dataset/{i}", "TextDataset", calls, f"TextDataset of {n} pairs of length {seq}",
                                construct={"args": [src, tgt]}, src=src, tgt=tgt, picks=picks))
    return cases


def _dataset_compare(case, outputs):
    failures = []
    ref = TextDataset(case["src"], case["tgt"])
    desc = case["describe"]
    n = outputs.get("result:len")
    if not isinstance(n, torch.Tensor) or int(n) != len(ref):
        failures.append(Failure("len(dataset)", desc, f"expected {len(ref)}, found {n}.",
                                "__len__ returns the number of (src, tgt) pairs, len(self.src_seqs)."))
    for j in case["picks"]:
        src, tgt = ref[j]
        for part, expected in ((0, src), (1, tgt)):
            found = outputs.get(f"result:item{j}.{part}")
            name = f"dataset[{j}][{part}] ({'src' if part == 0 else 'tgt'})"
            pytype = outputs.get(f"result:item{j}.{part}.pytype")
            if pytype:  # (check added by the mistakes suite, tests/mistakes/data/returns_python_lists.py)
                failures.append(Failure("items are torch.long tensors", desc, f"{name} is a Python {pytype}.",
                                        "return torch.tensor(seq, dtype=torch.long): a DataLoader stacks tensors "
                                        "into (batch, seq), but turns a batch of lists into seq tensors of shape "
                                        "(batch,)."))
                continue
            if isinstance(found, torch.Tensor) and found.dtype != torch.long:
                failures.append(Failure("items are torch.long tensors", desc, f"{name} has dtype {found.dtype}.",
                                        "nn.Embedding and cross_entropy need integer ids: torch.tensor(seq, "
                                        "dtype=torch.long)."))
                continue
            fail = tensor_failure("items are the (src, tgt) pair at that index", desc, name, expected, found, 0, 0,
                                  "return (src_seqs[idx], tgt_seqs[idx]) as tensors, in that order.")
            if fail:
                failures.append(fail)
    return failures


def _get_batch_cases(hidden: bool, secret: bytes) -> list[dict]:
    shapes = [(200, 4, 10, 91)]
    if hidden:
        d = Draw(secret, "get_batch")
        shapes = []
        for i in range(2):
            seq = d(i, "seq", low=2, high=40)
            n = seq + d(i, "room", low=1, high=(3, 500)[i % 2])
            while math.gcd(7919, n) != 1:
                n += 1
            shapes.append((n, d(i, "batch", low=1, high=16), seq, d.seed(i)))
    cases = []
    for i, (n, batch, seq, seed) in enumerate(shapes):
        data = (torch.arange(n) * 7919) % n  # a permutation (n coprime with 7919): a value says where it sits
        calls = [{"name": "first", "args": [data, batch, seq], "generator_seed": seed,
                  "describe": f"data of length {n}, batch_size={batch}, seq_len={seq}, generator seed {seed}"},
                 {"name": "again", "args": [data, batch, seq], "generator_seed": seed, "seed": seed + 1,
                  "describe": "same generator seed again"},
                 {"name": "many", "args": [data, 256, seq], "generator_seed": seed + 2, "describe": "256 windows"}]
        cases.append(calls_case(
            f"get_batch/{i}", "get_batch", calls,
            f"get_batch(data of length {n}, batch_size={batch}, seq_len={seq}, generator)", data=data, batch=batch,
            seq=seq, error_causes={"equal size": "a window ran past the end of the data, so its target is one "
                                                 "token short: draw the starts from torch.randint(len(data) - "
                                                 "seq_len, ...)."}))
    return cases


def _get_batch_compare(case, outputs):
    failures = []
    data, batch, seq = case["data"], case["batch"], case["seq"]
    n = len(data)
    desc = case["describe"]
    position = torch.empty(n, dtype=torch.long)
    position[data] = torch.arange(n)
    for call, rows in (("first", batch), ("many", 256)):
        x, y = outputs.get(f"result:{call}.0"), outputs.get(f"result:{call}.1")
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            failures.append(Failure("returns (x, y)", desc, "expected a pair of tensors (x, y).",
                                    "return x, y — both of shape (batch_size, seq_len)."))
            return failures
        for name, t in (("x", x), ("y", y)):
            if tuple(t.shape) != (rows, seq):
                failures.append(Failure("shapes", desc, f"{name} has shape {tuple(t.shape)}, expected {(rows, seq)}.",
                                        "stack batch_size windows of seq_len tokens each."))
                return failures
        if x.dtype != torch.long or y.dtype != torch.long:
            failures.append(Failure("dtype", desc, f"x has dtype {x.dtype}, y has {y.dtype}; expected torch.long.",
                                    "token ids must be long for nn.Embedding and cross_entropy."))
        starts = position[x[:, 0].long().clamp(0, n - 1)]
        offsets = torch.arange(seq)
        if bool((starts + seq >= n).any()):
            failures.append(Failure("windows stay inside the data", desc,
                                    f"a window starts at {int(starts.max())}; with seq_len={seq} its target would run "
                                    f"past the end (data has {n} tokens).",
                                    "draw starts from torch.randint(len(data) - seq_len, ...)."))
            return failures
        exp_x = data[starts[:, None] + offsets]
        exp_y = data[starts[:, None] + offsets + 1]
        fx = tensor_failure("each row of x is a contiguous slice data[s : s+seq_len]", desc, "x", exp_x, x.long(), 0, 0,
                            "take consecutive tokens: data[s : s + seq_len].")
        if fx:
            failures.append(fx)
            return failures
        fy = tensor_failure("y is x shifted by one: y = data[s+1 : s+seq_len+1]", desc, "y", exp_y, y.long(), 0, 0,
                            "the target is the NEXT token at every position: y = data[s + 1 : s + seq_len + 1]."
                            if not torch.equal(y.long(), x.long()) else
                            "targets are not shifted: y equals x, so the model would learn to copy its input.")
        if fy:
            failures.append(fy)
            return failures
    if "result:again.0" in outputs and not torch.equal(outputs["result:again.0"], outputs["result:first.0"]):
        failures.append(Failure("uses the generator it is given", desc,
                                "two calls with generators seeded alike gave different batches.",
                                "pass generator=generator to torch.randint so batches are reproducible."))
    many = outputs.get("result:many.0")
    possible = n - seq
    if isinstance(many, torch.Tensor) and possible > 1 and \
            len(set(position[many[:, 0].long()].tolist())) < min(20, possible // 2):
        failures.append(Failure("windows start at random positions", desc,
                                f"256 windows used fewer than {min(20, possible // 2)} distinct start positions.",
                                "draw the starts at random: torch.randint(len(data) - seq_len, (batch_size,), ...)."))
    return failures


# ============================================================================================== 08 training loop
def _loop_cases(mode: str, hidden: bool, secret: bytes) -> list[dict]:
    d = Draw(secret, mode)
    settings = ([(d(i, "vocab", low=4, high=16), d(i, "d", low=3, high=8), d(i, "batches", low=2, high=6),
                  d(i, "seq", low=2, high=8), d(i, "lr_percent", low=2, high=25) / 100, d.seed(i)) for i in range(2)]
                if hidden else [(11, 8, 4, 5, 0.1, 95)])
    cases = []
    for i, (vocab, d, batches, seq, lr, seed) in enumerate(settings):
        torch.manual_seed(seed)
        tiny = TinyCausalLM(vocab, d, seq)
        params = {k: v.detach().clone() for k, v in tiny.named_parameters()}
        g = gen(seed)
        data = [(torch.randint(vocab, (4, seq), generator=g), torch.randint(vocab, (4, seq), generator=g))
                for _ in range(batches)]
        cases.append({"id": f"{mode}/{i}", "kind": "loop", "mode": mode, "label": mode,
                      "init": {"vocab_size": vocab, "d_model": d, "context_len": seq}, "params": params,
                      "batches": data, "lr": lr, "seed": seed,
                      "describe": f"{mode}() on a tiny model, {batches} batches of shape (4, {seq}), "
                                  + (f"SGD(lr={lr:g}, momentum=0.9)" if mode == "train" else "CrossEntropyLoss")})
    return cases


def _loop_reference(case, variant: str | None = None) -> tuple[float, list[float], dict]:
    """``(mean loss, per-batch losses, parameters after)``: the reference loop (``gptedu.char.loop``) when
    ``variant`` is None, else a hand-written loop with a typical mistake ("" for none)."""
    tiny = TinyCausalLM.with_params(case["init"], case["params"])
    criterion = nn.CrossEntropyLoss()
    batches = [(s.clone(), t.clone()) for s, t in case["batches"]]
    train = case["mode"] == "train"
    opt = torch.optim.SGD(tiny.parameters(), lr=case["lr"], momentum=0.9) if train else None
    if variant is None:
        loss = loop.train(tiny, batches, criterion, opt, "cpu") if train else loop.evaluate(tiny, batches, criterion,
                                                                                              "cpu")
        return loss, [], {k: v.detach() for k, v in tiny.named_parameters()}
    losses = []
    for src, tgt in batches:
        with torch.set_grad_enabled(train):
            if train and variant != "no_zero_grad":
                opt.zero_grad()
            logits = tiny(src)
            target = src if variant == "src_targets" else tgt
            loss = criterion(logits.reshape(-1, logits.size(-1)), target.reshape(-1))
            if train:
                loss.backward()
                if variant != "no_step":
                    opt.step()
        losses.append(loss.item())
    return sum(losses) / len(losses), losses, {k: v.detach() for k, v in tiny.named_parameters()}


def _loop_compare(case, outputs):
    failures = []
    desc = case["describe"]
    expected_loss, _, expected_params = _loop_reference(case)
    found = outputs.get("loss")
    training = outputs.get("calls_training", torch.tensor([], dtype=torch.bool))
    grad = outputs.get("calls_grad", torch.tensor([], dtype=torch.bool))
    n_batches = len(case["batches"])
    if len(training) != n_batches:
        failures.append(Failure("one forward pass per batch", desc,
                                f"the model was called {len(training)} time(s) for {n_batches} batches.",
                                "loop over every (src, tgt) batch of the dataloader once and call model(src)."))
        return failures
    train = case["mode"] == "train"
    for wrong, check, message, cause in (
            (train and not bool(training.all()), "the model is in training mode",
             "the model was in eval mode during the forward pass.", "call model.train() at the start of train()."),
            (train and not bool(grad.all()), "gradients are enabled in train()", "forward ran under torch.no_grad().",
             "only evaluate() uses torch.no_grad()."),
            (not train and bool(training.any()), "the model is in eval mode", "the model was in training mode.",
             "call model.eval() at the start of evaluate() (dropout must be off)."),
            (not train and bool(grad.any()), "no gradients in evaluate()", "forward ran with autograd on.",
             "wrap the loop in torch.no_grad() (or decorate evaluate with @torch.no_grad())."),
            (not train and any(bool(outputs.get(f"hasgrad:{k}", False)) for k in expected_params),
             "evaluate() does not backpropagate", "parameters received gradients.",
             "evaluate only computes the loss: no loss.backward(), no optimizer.")):
        if wrong:
            failures.append(Failure(check, desc, message, cause))
    if "loss_tensor" in outputs:
        graph = bool(outputs["loss_tensor"])
        failures.append(Failure("returns the mean loss as a Python float", desc,
                                "it returned a tensor" + (" that still holds its autograd graph." if graph else "."),
                                "add loss.item() (a float) to the running total and return total / number of "
                                "batches: a tensor with a graph keeps every batch's activations in memory."))
    if found is None or abs(float(found) - expected_loss) > 1e-5:
        last = _loop_reference(case, "")[1][-1]
        cause = "return the mean of the per-batch losses: total / number of batches (use loss.item())."
        if found is not None and abs(float(found) - expected_loss * n_batches) < 1e-4:
            cause = "the loss is summed over batches: divide by the number of batches to return the mean."
        elif found is not None and abs(float(found) - last) < 1e-5:
            cause = "only the last batch's loss is returned: accumulate every batch's loss and return the mean."
        failures.append(Failure("returns the mean loss over the batches", desc,
                                f"expected {expected_loss:.6f}, found {float(found) if found is not None else None}.",
                                cause, "loss"))
    for name, expected in expected_params.items():
        fail = tensor_failure("parameters after the epoch match the reference" if train else
                              "evaluate() leaves the parameters unchanged", desc, name, expected,
                              outputs.get(f"param:{name}"), 1e-5, 1e-4, "")
        if fail:
            if train:
                found_p = outputs.get(f"param:{name}")
                cause = "per batch: optimizer.zero_grad(); loss = criterion(...); loss.backward(); optimizer.step()."
                for variant, text in (("no_step", "optimizer.step() is never called: the weights did not move."),
                                      ("no_zero_grad", "optimizer.zero_grad() is missing: gradients accumulate "
                                                       "across batches."),
                                      ("src_targets", "the loss compares the logits with the inputs (src): the "
                                                      "targets are tgt, the next token at every position.")):
                    vparams = _loop_reference(case, variant)[2]
                    if isinstance(found_p, torch.Tensor) and found_p.shape == vparams[name].shape and \
                            torch.allclose(found_p, vparams[name], atol=1e-5):
                        cause = text
                        break
                fail.cause = cause
            else:
                fail.cause = "evaluate() must not update the model: no backward(), no optimizer step."
            failures.append(fail)
            break
    return failures


# ============================================================================================== 09 sampling
def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """The exercise's ``top_k_filter``: ``(batch, vocab)`` -> the same with all but the ``k`` largest at ``-inf``
    (the reference's ``filter_logits``, under the exercise's signature)."""
    return filter_logits(logits, top_k=k)


def _topk_cases(hidden: bool, secret: bytes) -> list[dict]:
    # (rows, vocab, k, seed, ties): with ties, logits are whole numbers so the k-th largest value repeats
    settings = [(2, 10, 3, 111, False), (1, 8, 1, 112, False), (2, 9, 3, 113, True)]
    if hidden:
        d = Draw(secret, "top_k_filter")
        settings = []
        for i in range(4):
            vocab = d(i, "vocab", low=2, high=50)
            k = vocab + d(i, "over", high=3) if i == 3 else d(i, "k", low=1, high=vocab)
            settings.append((d(i, "rows", low=1, high=4), vocab, k, d.seed(i), i == 2))
    cases = []
    for i, (rows, vocab, k, seed, ties) in enumerate(settings):
        logits = torch.randn(rows, vocab, generator=gen(seed)) * 3
        if ties:
            logits = logits.round().clamp(-2, 2)
            k = max(1, min(k, vocab - 1))
        call = {"name": "out", "args": [logits, k], "describe": f"logits {shape_text(logits)}, k={k}"}
        cases.append(calls_case(f"top_k_filter/{i}", "top_k_filter", [call], f"top_k_filter(logits of shape "
                                f"{shape_text(logits)}, k={k}" + (", with ties)" if ties else ")"), logits=logits, k=k))
    return cases


def _topk_compare(case, outputs):
    logits, k = case["logits"], case["k"]
    expected = top_k_filter(logits, k)
    found = outputs.get("result:out")
    if not isinstance(found, torch.Tensor) or found.shape != expected.shape:
        fail = tensor_failure("returns a tensor of the logits' shape", case["describe"], "result", expected, found, 0)
        return [fail] if fail else []
    kept_exp = torch.isfinite(expected)
    dropped = ~kept_exp
    if bool((found[dropped] != float("-inf")).any()):
        row, col = (dropped & (found != float("-inf"))).nonzero()[0].tolist()
        value = float(found[row, col])
        cause = ("the dropped logits must be exactly -inf (float('-inf')), so that their probability after the "
                 "softmax is exactly 0")
        cause += {float("inf"): ": +inf would make them the most likely tokens.", 0.0: ": 0 is still a likely logit."
                  }.get(value, ".")
        if bool(torch.isfinite(found[dropped]).any()) and value not in (0.0,):
            cause = "keep only the k largest logits of EACH row (torch.topk(logits, k, dim=-1)); every other entry " \
                    "is -inf."
        return [Failure("the logits outside the top k are exactly -inf", case["describe"],
                        f"row {row}, column {col}: expected -inf, found {value:g}.", cause, "result")]
    kept_found = found != float("-inf")
    if not torch.equal(kept_exp, kept_found):
        row = int((kept_exp != kept_found).any(-1).nonzero()[0])
        n_exp, n_found = int(kept_exp[row].sum()), int(kept_found[row].sum())
        kth = float(torch.topk(logits[row], min(k, logits.size(-1))).values[-1])
        tied = int((logits[row] == kth).sum()) > 1
        detail = f" ({n_exp - min(k, logits.size(-1)) + 1} logits tie at the k-th largest value {kth:g})" if tied \
            else ""
        message = f"row {row} keeps {n_found} finite logits; expected {n_exp}{detail}."
        if n_found < n_exp and tied:
            cause = "ties at the k-th largest value are dropped: keep every logit >= the k-th largest " \
                    "(masked_fill(logits < kth, -inf)), as the exercise says, not exactly k positions of topk."
        elif n_found == n_exp - 1:
            cause = "one logit too few is kept: keep every logit >= the k-th largest (compare with <, not <=)."
        elif k >= logits.size(-1):
            cause = "k >= vocabulary size must keep every logit (use min(k, logits.size(-1)))."
        else:
            cause = "keep the k largest logits of EACH row (torch.topk(logits, k, dim=-1)), -inf elsewhere."
        return [Failure("keeps the k largest logits of each row (and ties)", case["describe"], message, cause,
                        "result")]
    fail = tensor_failure("the kept logits are unchanged", case["describe"], "result",
                          torch.where(kept_exp, expected, 0.0), torch.where(kept_found, found, 0.0), 1e-6, 0.0,
                          "return the k largest logits as they are (no softmax, no scaling).")
    return [fail] if fail else []


SAMPLE_DRAWS = 4000


def _sample_cases(hidden: bool, secret: bytes) -> list[dict]:
    settings = [(10, 0.7, 3, 121)]
    if hidden:
        d = Draw(secret, "sample_next_token")
        settings = [(d(i, "vocab", low=4, high=30), d(i, "temp_tenths", low=3, high=20) / 10,
                     d(i, "k", low=2, high=4) if i != 1 else None, d.seed(i)) for i in range(3)]
    cases = []
    for i, (vocab, temp, k, seed) in enumerate(settings):
        g = gen(seed)
        greedy_logits = torch.randn(6, vocab, generator=g) * 2
        row = torch.randn(1, vocab, generator=g) * 1.5
        many = row.repeat(SAMPLE_DRAWS, 1)
        each = f"{SAMPLE_DRAWS} identical rows"
        calls = [
            {"name": "greedy", "args": [greedy_logits], "kwargs": {"temperature": 0.0}, "generator_seed": seed,
             "describe": f"logits {shape_text(greedy_logits)}, temperature=0"},
            {"name": "temp", "args": [many], "kwargs": {"temperature": temp}, "generator_seed": seed + 1,
             "describe": f"{each}, temperature={temp}"},
            {"name": "temp_again", "args": [many], "kwargs": {"temperature": temp}, "generator_seed": seed + 1,
             "seed": seed + 5, "describe": "the same generator seed again"},
            {"name": "temp_other", "args": [many], "kwargs": {"temperature": temp}, "generator_seed": seed + 9,
             "describe": "a generator with another seed"},
        ]
        if k is not None:
            calls.append({"name": "topk", "args": [many], "kwargs": {"temperature": temp, "top_k": k},
                          "generator_seed": seed + 2, "describe": f"{each}, temperature={temp}, top_k={k}"})
        cases.append(calls_case(f"sample_next_token/{i}", "sample_next_token", calls,
                                f"sample_next_token on a vocabulary of {vocab}, temperature {temp}, top_k={k}",
                                row=row, greedy_logits=greedy_logits, temperature=temp,
                                top_k=k))
    return cases


def _sample_compare(case, outputs):
    failures = []
    desc = case["describe"]
    for name in ("greedy", "temp"):
        found = outputs.get(f"result:{name}")
        if isinstance(found, torch.Tensor) and found.dtype != torch.long:
            return [Failure("returns torch.long token ids", desc, f"found dtype {found.dtype}.",
                            "torch.multinomial and argmax return torch.long (int64); do not convert the ids "
                            "(nn.Embedding and torch.cat with the prompt need int64).", name)]
    expected = case["greedy_logits"].argmax(-1, keepdim=True)
    fail = tensor_failure("temperature 0 picks the argmax (greedy)", desc, "sample_next_token(logits, 0)", expected,
                          outputs.get("result:greedy"), 0, 0, "with temperature == 0 return "
                          "logits.argmax(dim=-1, keepdim=True) (no division by zero, no sampling).")
    if fail:
        failures.append(fail)
    row = case["row"][0].double()
    temp, k = case["temperature"], case["top_k"]
    for call, top_k in (("temp", None), ("topk", k)):
        if call == "topk" and k is None:
            continue
        found = outputs.get(f"result:{call}")
        if not isinstance(found, torch.Tensor) or tuple(found.shape) != (SAMPLE_DRAWS, 1):
            got = tuple(found.shape) if isinstance(found, torch.Tensor) else type(found).__name__
            failures.append(Failure("returns one token id per row, shape (batch, 1)", desc,
                                    f"expected shape ({SAMPLE_DRAWS}, 1), found {got}.",
                                    "torch.multinomial(probs, num_samples=1) returns (batch, 1)."))
            continue
        filtered = filter_logits(row[None], top_k=top_k)[0] if top_k else row
        ids = found[:, 0].long()
        if top_k:
            outside = ids[~torch.isfinite(filtered)[ids.clamp(0, len(row) - 1)]]
            if len(outside):
                failures.append(Failure("top-k: only the k most likely tokens are ever sampled", desc,
                                        f"{len(outside)} of {SAMPLE_DRAWS} samples are outside the top {top_k} (e.g. "
                                        f"token {int(outside[0])}).",
                                        "set the logits outside the top k to -inf before the softmax."))
                continue
        fail = sampling_failure("samples follow softmax(logits / temperature)" + (" within the top k" if top_k else ""),
                                desc, ids, filtered, temp, "sample from softmax(logits / temperature) with "
                                "torch.multinomial(probs, 1, generator=generator).", call)
        if fail:
            failures.append(fail)
    first, again, other = (outputs.get(f"result:{n}") for n in ("temp", "temp_again", "temp_other"))
    if all(isinstance(t, torch.Tensor) for t in (first, again, other)):
        if not torch.equal(again, first):
            failures.append(Failure("uses the generator it is given", desc,
                                    "two calls with generators seeded alike gave different samples.",
                                    "pass generator=generator to torch.multinomial."))
        elif torch.equal(other, first):
            failures.append(Failure("draws random samples from the generator", desc,
                                    "generators with different seeds gave exactly the same samples.",
                                    "draw the samples with torch.multinomial(probs, 1, generator=generator): the "
                                    "result must be random, not a fixed arrangement of the expected frequencies."))
    return failures


# ============================================================================================== the components
DECODER_PREREQ = {"TransformerDecoderLayer": "gptedu.char.decoder.TransformerDecoderLayer"}
COMPONENTS = {c.name: c for c in [
    component("tokenizer", "CharTokenizer (encode/decode)", "CharTokenizer", "01_data", 3, 2, _tokenizer_cases,
              _tokenizer_compare),
    component("text_dataset", "TextDataset", "TextDataset", "01_data", 3, 2, _dataset_cases, _dataset_compare),
    component("get_batch", "get_batch (random windows, shifted targets)", "get_batch", "01_data", 3, 2,
              _get_batch_cases, _get_batch_compare),
    module_component("positional_encoding", "PositionalEncoding", "02_positional_encoding", 5, 5, ModuleCheck(
        positional.PositionalEncoding, 1e-4, 0.0, "compare your table with the formula; plot it next to the "
        "reference heatmap.", _pe_variants, _pe_extra),
        [(dict(d_model=16, num_range=50), (2, 10, 16), 1), (dict(d_model=8, num_range=100), (1, 100, 8), 2)],
        _pe_size, 3, cases=dict(with_params=False, report_buffers=["pe"])),
    module_component("head", "Head (masked scaled dot-product attention)", "03_single_head", 10, 10, ModuleCheck(
        attention.Head, 1e-5, 1e-4, "compare each step with the formula softmax(mask(q k^T / sqrt(d_k))) v.",
        _head_variants, _head_extra),
        [(dict(d_model=16, d_k=8, d_v=8, context_len=12), (2, 12, 16), 11),
         (dict(d_model=16, d_k=4, d_v=6, context_len=20), (3, 7, 16), 12)],
        _head_size, 3, cases=dict(methods=("forward", "attention_weights"), causal=True), forbid_torch_attention=True),
    module_component("multi_head", "MultiHeadAttention", "04_multi_head", 5, 5, ModuleCheck(
        attention.MultiHeadAttention, 1e-5, 1e-4, "concatenate the heads' outputs along the last axis (dim=-1) in "
        "the order of self.heads, then apply self.proj.", _mha_variants),
        [(dict(d_model=16, num_heads=4, context_len=12), (2, 12, 16), 21),
         (dict(d_model=8, num_heads=2, context_len=10), (1, 5, 8), 22)],
        _mha_size, 3, cases=dict(causal=True), prerequisites={"Head": "gptedu.char.attention.Head"},
        forbid_torch_attention=True, allowed_reference=("Head.",)),
    module_component("feed_forward", "FeedForward", "05_feed_forward", 5, 5, ModuleCheck(
        feedforward.FeedForward, 1e-5, 1e-4, "self.ffn must be nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), "
        "nn.Linear(d_ff, d_model)).", _ffn_variants),
        [(dict(d_model=16, d_ff=64), (2, 5, 16), 31), (dict(d_model=8, d_ff=24), (4, 3, 8), 32)], _ffn_size, 3),
    module_component("decoder_layer", "TransformerDecoderLayer (pre-norm)", "06_decoder_layer", 5, 5, ModuleCheck(
        decoder.TransformerDecoderLayer, 1e-5, 1e-4, "pre-norm: x = x + attn(norm1(x)); then x = x + ffn(norm2(x)).",
        _layer_variants),
        [(dict(d_model=16, num_heads=2, d_ff=32, context_len=10), (2, 10, 16), 41),
         (dict(d_model=8, num_heads=4, d_ff=8, context_len=12), (1, 6, 8), 42)],
        _stack_size, 2, cases=dict(causal=True),
        prerequisites={"MultiHeadAttention": "gptedu.char.attention.MultiHeadAttention",
                       "FeedForward": "gptedu.char.feedforward.FeedForward"},
        forbid_torch_attention=True, allowed_reference=LAYER_PREREQS),
    module_component("decoder", "TransformerDecoder", "07_gpt", 5, 5, ModuleCheck(
        decoder.TransformerDecoder, 1e-5, 1e-4, "apply every layer in order, then the final norm: for layer in "
        "self.layers: x = layer(x); return self.norm(x).", _decoder_variants),
        [(dict(d_model=16, num_heads=2, d_ff=32, context_len=10, num_layers=2), (2, 10, 16), 51)],
        lambda d, i: _stack_size(d, i, layers=True), 2, cases=dict(causal=True), prerequisites=DECODER_PREREQ,
        forbid_torch_attention=True, allowed_reference=DECODER_PREREQS),
    module_component("gpt_forward", "GPTModel.forward", "07_gpt", 8, 7, ModuleCheck(
        model.GPTModel, 2e-5, 1e-4, "embedding -> positional encoding -> decoder -> fc_out, returning logits "
        "(batch, seq, vocab_size).", _gpt_variants),
        [(dict(vocab_size=11, d_model=16, num_heads=2, d_ff=32, context_len=12, num_layers=2), (2, 12), 61)],
        _gpt_size, 2, cases=dict(causal=True, token_ids=True), prerequisites=GPT_PREREQ_NAMES,
        forbid_torch_attention=True, allowed_reference=GPT_PREREQS),
    component("gpt_generate", "GPTModel.generate", "GPTModel", "07_gpt", 8, 7, _generate_cases, _generate_compare,
              GPT_PREREQ_NAMES, forbid_torch_attention=True, allowed_reference=GPT_PREREQS),
    component("train", "train (one epoch)", "train", "08_training", 5, 5,
              lambda hidden, secret: _loop_cases("train", hidden, secret), _loop_compare),
    component("evaluate", "evaluate", "evaluate", "08_training", 3, 2,
              lambda hidden, secret: _loop_cases("evaluate", hidden, secret), _loop_compare),
    component("top_k_filter", "top_k_filter", "top_k_filter", "09_generation", 3, 2, _topk_cases, _topk_compare),
    component("sample_next_token", "sample_next_token", "sample_next_token", "09_generation", 5, 5, _sample_cases,
              _sample_compare, {"top_k_filter": f"{__name__}.top_k_filter"},
              allowed_reference=("top_k_filter", "filter_logits")),
]}
