"""Hugging Face GPT-2 checkpoints → gptedu's GPTModel: same logits, same greedy tokens, clear errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")
from safetensors.torch import save_file  # noqa: E402

from gptedu.gpt2 import gen_text  # noqa: E402
from gptedu.gpt2.hf import CheckpointError, load_hf_gpt2, read_checkpoint  # noqa: E402

transformers.logging.set_verbosity_error()
GPT2_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "gpt2"


def tiny_hf_model(tie: bool = True, seed: int = 0):
    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        vocab_size=101, n_positions=24, n_embd=32, n_layer=2, n_head=4, bos_token_id=100, eos_token_id=100,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=tie,
    )  # fmt: skip
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # HF initialises biases and LayerNorms to 0/1: randomise them so the mapping is tested
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.normal_(0.0, 0.5)
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One tied model saved three ways: save_pretrained (safetensors), a pytorch_model.bin, and an untied model."""
    root = tmp_path_factory.mktemp("hf")
    model = tiny_hf_model()
    model.save_pretrained(root / "st")
    # transformers 5 always writes safetensors; pytorch_model.bin is what older versions wrote: torch.save(state_dict)
    (root / "bin").mkdir()
    torch.save(model.state_dict(), root / "bin" / "pytorch_model.bin")
    shutil.copy(root / "st" / "config.json", root / "bin" / "config.json")
    untied = tiny_hf_model(tie=False, seed=1)
    untied.save_pretrained(root / "untied")
    return root, model, untied


def assert_same_model(hf_model, ours):
    torch.manual_seed(3)
    idx = torch.randint(0, 101, (2, 24))
    with torch.no_grad():
        diff = (hf_model(idx).logits - ours(idx)).abs().max().item()
    assert diff <= 1e-5, f"max abs logit difference {diff}"
    prompt = idx[:1, :5]
    theirs = hf_model.generate(prompt, max_new_tokens=15, do_sample=False, pad_token_id=100, eos_token_id=None)
    assert torch.equal(theirs, gen_text(ours, prompt, max_new_tokens=15, context_size=24))


@pytest.mark.parametrize("sub", ["st", "bin"])
def test_same_logits_and_greedy_tokens(saved, sub):
    root, model, _ = saved
    ours = load_hf_gpt2(root / sub)  # the folder: finds model.safetensors / pytorch_model.bin
    assert ours.cfg.n_layers == 2 and ours.cfg.n_heads == 4 and ours.cfg.context_len == 24
    assert ours.cfg.qkv_bias and ours.cfg.tie_weights and not ours.training
    assert_same_model(model, ours)


def test_file_path_and_untied_head(saved):
    root, _, untied = saved
    ours = load_hf_gpt2(root / "untied" / "model.safetensors")
    assert not ours.cfg.tie_weights and ours.out_head.weight is not ours.emb.tok_emb.weight
    assert_same_model(untied, ours)


def test_heads_need_config_json_or_argument_for_non_standard_widths(saved, tmp_path):
    root, model, _ = saved
    shutil.copy(root / "st" / "model.safetensors", tmp_path / "model.safetensors")  # no config.json beside it
    with pytest.raises(CheckpointError, match="pass n_heads"):
        load_hf_gpt2(tmp_path / "model.safetensors")
    assert_same_model(model, load_hf_gpt2(tmp_path / "model.safetensors", n_heads=4))


def test_partial_checkpoint_names_the_missing_keys(saved, tmp_path):
    root, _, _ = saved
    sd = read_checkpoint(root / "st")
    partial = {k: v.contiguous() for k, v in sd.items() if not k.startswith("h.1.mlp")}
    save_file(partial, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"missing keys: h\.1\.mlp\.c_fc\.bias"):
        load_hf_gpt2(tmp_path / "model.safetensors", n_heads=4)


def test_truncated_file_says_what_it_looks_like(saved, tmp_path):
    root, _, _ = saved
    data = (root / "st" / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="incompletely downloaded"):
        load_hf_gpt2(tmp_path / "model.safetensors", n_heads=4)


def test_wrong_files_give_clear_errors(saved, tmp_path):
    root, _, _ = saved
    with pytest.raises(CheckpointError, match="Could not read"):
        load_hf_gpt2(root / "st" / "config.json")
    save_file({"model.embed_tokens.weight": torch.zeros(4, 2)}, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="does not look like a GPT-2 checkpoint"):
        load_hf_gpt2(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_hf_gpt2(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No model.safetensors or pytorch_model.bin"):
        load_hf_gpt2(tmp_path / "empty")


def test_extra_keys_are_reported_as_unexpected(saved, tmp_path):
    root, _, _ = saved
    sd = read_checkpoint(root / "st")
    sd["score.weight"] = torch.zeros(2, 32)  # e.g. a GPT2ForSequenceClassification head
    save_file({k: v.contiguous() for k, v in sd.items()}, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"unexpected keys: score\.weight"):
        load_hf_gpt2(tmp_path / "model.safetensors", n_heads=4)


def test_command_line_continues_a_prompt(tmp_path, capsys):
    from gptedu.gpt2.bpe import BPETokenizer, gpt2_dir
    from gptedu.gpt2.hf import main

    folder = gpt2_dir(os.environ.get("GPTEDU_GPT2_DIR", str(GPT2_DIR)))
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=50257, n_positions=16, n_embd=8, n_layer=1, n_head=2)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path / "gpt2-tiny")
    assert main([str(tmp_path / "gpt2-tiny"), "--prompt", "Hello there", "--max-new-tokens", "5",
                 "--tokenizer-dir", str(folder)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Hello there")
    ours = load_hf_gpt2(tmp_path / "gpt2-tiny")
    tok = BPETokenizer.from_gpt2_files(folder)
    ids = torch.tensor([tok.encode("Hello there")])
    expected = tok.decode(gen_text(ours, ids, 5, 16, eos_id=tok.eos_id)[0].tolist())
    assert text.rstrip("\n") == expected
    with pytest.raises(SystemExit):
        main([str(tmp_path / "nowhere"), "--prompt", "Hi", "--tokenizer-dir", str(folder)])
    assert "does not exist" in capsys.readouterr().err
