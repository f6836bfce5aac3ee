"""Peak memory of loading + batching TinyShakespeare: lazy token windows vs a Python list of every window.

    GPTEDU_DATA=/path/to/input.txt python benchmarks/bench_data_memory.py
    python benchmarks/bench_data_memory.py --fraction 0.05 --seq-len 100

Each approach runs in its own fresh Python process (so one cannot inherit the other's memory) and reports its
peak resident set size (``resource.getrusage(...).ru_maxrss``), and the peak minus the process's size right after
``import torch`` (the interpreter + torch alone are ~a few hundred MB and are not the data pipeline's doing):

* ``lazy, get_batch``: ``gptedu``'s trainer. Encode the text into one ``torch.long`` tensor, split it contiguously,
  draw 50 random batches with ``get_batch`` (windows are gathered on demand).
* ``lazy, DataLoader``: the same tensor, 50 batches of a shuffled ``DataLoader`` over ``TokenWindows`` (as
  ``make_dataloaders`` builds); its ``RandomSampler`` holds a permutation of all ~1M window indices.
* ``lists``: every overlapping window materialised as Python lists (``src_seqs``, ``tgt_seqs``) fed to
  ``TextDataset``. On the full corpus that needs gigabytes and could take the (shared) machine down, so by default
  it is built for ``--fraction`` of the windows only, at two sizes (fraction/2 and fraction); the per-window cost
  is the slope between them, and the full-corpus figure is extrapolated linearly (windows are independent lists,
  so memory grows linearly with their number). ``--fraction 1`` measures it for real (needs ~2-4 GB free).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, resource, sys
import torch
torch.set_num_threads(1)
from gptedu.data import (CharTokenizer, TextDataset, TokenWindows, get_batch, load_tinyshakespeare,
                         split_contiguous)
from torch.utils.data import DataLoader

def rss_mb():  # current resident set size, from /proc (Linux)
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20

mode, seq_len, fraction, batch = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
base = rss_mb()
text = load_tinyshakespeare()
tok = CharTokenizer.from_text(text)
if mode in ("get_batch", "loader"):
    data = torch.tensor(tok.encode(text), dtype=torch.long)
    train, val = split_contiguous(data)
    if mode == "get_batch":  # what gptedu's trainer does
        gen = torch.Generator().manual_seed(0)
        for _ in range(50):
            x, y = get_batch(train, batch, seq_len, gen)
    else:  # a shuffled epoch over every window (make_dataloaders); the sampler holds a permutation of them
        loader = DataLoader(TokenWindows(train, seq_len), batch_size=batch, shuffle=True,
                            generator=torch.Generator().manual_seed(0))
        for i, (x, y) in enumerate(loader):
            if i == 50:
                break
    windows = len(train) - seq_len
else:
    ids = tok.encode(text)  # the naive pipeline keeps Python lists of ints
    n_train = int(0.9 * len(ids))
    windows = int(fraction * (n_train - seq_len))
    src_seqs = [ids[i : i + seq_len] for i in range(windows)]
    tgt_seqs = [ids[i + 1 : i + seq_len + 1] for i in range(windows)]
    loader = DataLoader(TextDataset(src_seqs, tgt_seqs), batch_size=batch, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    for i, (x, y) in enumerate(loader):
        if i == 50:
            break
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB -> MB on Linux
print(json.dumps({"mode": mode, "windows": windows, "peak_mb": peak, "after_import_mb": base,
                  "data_mb": peak - base}))
"""


def run_child(mode: str, seq_len: int, fraction: float, batch: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(seq_len), str(fraction), str(batch)],
        capture_output=True, text=True, check=False, env=os.environ.copy(),
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"the {mode} child failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq-len", type=int, default=100, help="window length (notebook 01 uses 100)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--fraction", type=float, default=0.05, help="share of all the windows to build")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per measurement (median)")
    args = parser.parse_args()
    if not 0 < args.fraction <= 1:
        raise SystemExit("--fraction must be in (0, 1].")

    def median_of(mode: str, fraction: float) -> dict:
        runs = [run_child(mode, args.seq_len, fraction, args.batch_size) for _ in range(args.repeats)]
        return {k: statistics.median(r[k] for r in runs) if k != "mode" else mode for k in runs[0]}

    lazy = median_of("get_batch", 1.0)
    loader = median_of("loader", 1.0)
    half = median_of("lists", args.fraction / 2)
    part = median_of("lists", args.fraction)
    per_window_kb = (part["data_mb"] - half["data_mb"]) * 1024 / max(1, part["windows"] - half["windows"])
    full_windows = lazy["windows"]
    lists_full_mb = part["data_mb"] + per_window_kb * (full_windows - part["windows"]) / 1024

    print(f"TinyShakespeare train split, seq_len {args.seq_len}, batch {args.batch_size}, "
          f"median of {args.repeats} fresh processes each")  # fmt: skip
    print(f"  python + torch alone (after import): {lazy['after_import_mb']:.0f} MB resident")
    rows = (("lazy, get_batch", lazy), ("lazy, DataLoader", loader), ("lists, half", half), ("lists", part))
    for label, m in rows:
        print(f"  {label:<17} {m['windows']:>9,} windows  peak {m['peak_mb']:6.0f} MB  "
              f"data pipeline +{m['data_mb']:.0f} MB")  # fmt: skip
    measured = "measured" if args.fraction == 1 else f"extrapolated linearly from {args.fraction:.0%} of the windows"
    print(f"  lists, all {full_windows:,} windows: ~{per_window_kb:.2f} KB/window -> "
          f"+{lists_full_mb:,.0f} MB ({measured})")  # fmt: skip
    for label, m in (("get_batch", lazy), ("DataLoader", loader)):
        ok = "within" if m["data_mb"] <= 200 else "OVER"
        print(
            f"ratio lists / lazy {label} (data pipeline): {lists_full_mb / max(m['data_mb'], 1e-9):.0f}x; "
            f"lazy {label} +{m['data_mb']:.0f} MB: {ok} the 200 MB target (whole process: {m['peak_mb']:.0f} MB)"
        )


if __name__ == "__main__":
    main()
