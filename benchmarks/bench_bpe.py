"""Training and encoding speed of gptedu's byte-level BPE on TinyShakespeare.

    python benchmarks/bench_bpe.py                 # 2000 merges, median of 3 runs, vs a naive recount baseline

Prints: the median time to learn ``--merges`` merges on the whole corpus; the same for the naive algorithm (recount
every pair of every unique word after each merge) on ``--baseline-merges`` merges, next to gptedu's time for that
many; encoding throughput of gptedu's encoder and of the ``tiktoken`` wrapper on the same vocabulary; compression
(characters per token) against the 65-character vocabulary of part 1.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from itertools import pairwise

import regex

from gptedu.data import load_tinyshakespeare
from gptedu.gpt2.bpe import GPT2_PATTERN, BPETokenizer, TiktokenBPE


def naive_train(text: str, num_merges: int) -> list[tuple[int, int]]:
    """Baseline: after every merge, recount all pairs of all unique words (still with word counts)."""
    words = Counter(regex.findall(GPT2_PATTERN, text))
    seqs = [list(w.encode("utf-8")) for w in words]
    freqs = list(words.values())
    merges = []
    for k in range(num_merges):
        counts: Counter = Counter()
        for seq, f in zip(seqs, freqs, strict=True):
            for pair in pairwise(seq):
                counts[pair] += f
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))  # same tie rule as BPETokenizer.train
        merges.append(best)
        new_id = 256 + k
        for i, seq in enumerate(seqs):
            out, j = [], 0
            while j < len(seq):
                if j + 1 < len(seq) and (seq[j], seq[j + 1]) == best:
                    out.append(new_id)
                    j += 2
                else:
                    out.append(seq[j])
                    j += 1
            seqs[i] = out
    return merges


def median_time(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--merges", type=int, default=2000)
    parser.add_argument("--baseline-merges", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    text = load_tinyshakespeare()
    print(f"TinyShakespeare: {len(text):,} characters")
    vocab = 256 + args.merges + 1
    t_fast, tok = median_time(lambda: BPETokenizer.train(text, vocab), args.repeats)
    print(f"gptedu BPETokenizer.train, {args.merges} merges: median {t_fast:.2f} s over {args.repeats} runs")

    small = 256 + args.baseline_merges + 1
    t_small, small_tok = median_time(lambda: BPETokenizer.train(text, small), args.repeats)
    t_naive, naive = median_time(lambda: naive_train(text, args.baseline_merges), 1)
    ids_match = [small_tok.token_to_id[a + b] for a, b in small_tok.merges] == list(range(256, small - 1))
    same = ids_match and [(small_tok.vocab[256 + k]) for k in range(len(naive))] == [
        _bytes(naive, k) for k in range(len(naive))
    ]
    print(
        f"{args.baseline_merges} merges: gptedu {t_small:.2f} s, naive recount {t_naive:.2f} s "
        f"-> {t_naive / t_small:.1f}x faster (same merges: {same})"
    )

    def encode_cold() -> list[int]:
        tok._cache.clear()  # the per-chunk cache would make repeats unfair
        return tok.encode(text)

    t_enc_cold, ids = median_time(encode_cold, args.repeats)
    tik = TiktokenBPE.from_bpe(tok)
    t_tik, tik_ids = median_time(lambda: tik.encode(text), args.repeats)
    print(f"encode corpus -> {len(ids):,} tokens ({len(text) / len(ids):.2f} characters/token vs 1.00 for chars)")
    print(f"  gptedu: {t_enc_cold:.2f} s ({len(text) / t_enc_cold / 1e6:.2f} MB/s, chunk cache cold)")
    print(f"  tiktoken wrapper: {t_tik:.2f} s ({len(text) / t_tik / 1e6:.2f} MB/s) -> {t_enc_cold / t_tik:.1f}x, "
          f"identical ids: {tik_ids == ids}")


def _bytes(merges: list[tuple[int, int]], k: int) -> bytes:
    def expand(i: int) -> bytes:
        return bytes([i]) if i < 256 else expand(merges[i - 256][0]) + expand(merges[i - 256][1])

    return expand(256 + k)


if __name__ == "__main__":
    main()
