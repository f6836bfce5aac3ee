"""Print the catch-rate table of the mistakes catalogue: ``python -m tests.mistakes.report [--markdown]``.

One row per catalogued answer: component, answer, what was expected, whether its own component's checks caught it,
the points it lost there (and in the other test cells of the same exercise, and elsewhere: a cascade),
whether a message names the likely cause, and the first cause the student reads. Then the catch rate, the
correct-but-unusual answers, the known-undetectable mistakes with the reason, and the realistic mistakes that no
graded exercise covers.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from .catalog import entries
from .harness import ALL, KNOWN_CASCADES, grade_entry

# Mistakes from the list that no graded component can see, because no exercise asks for that code.
NOT_GRADED = [
    ("data", "random split of overlapping windows leaks validation text",
     "notebook 01 explains it and uses gptedu.data.split_contiguous; no exercise asks the student to write the split"),
    ("data", "vocabulary built from the text unsorted (list(set(text)))",
     "CharTokenizer receives its characters already sorted (sorted(set(text)) is given); the catalogue's "
     "data/vocab_from_set covers the same slip inside the constructor"),
]


def _excerpt(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _cause_cell(outcome) -> str:
    if outcome.entry.expect != "caught" or not outcome.caught:
        return "-"
    if outcome.hint_found is None:
        return "n/a"
    return "yes" if outcome.hint_found else "generic"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--width", type=int, default=70, help="width of the message excerpt")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    start = time.perf_counter()
    outcomes = [grade_entry(e, full=True) for e in entries()]
    seconds = time.perf_counter() - start

    header = ["component", "answer", "expect", "caught", "lost (own)", "same comp.", "cascade", "cause", "message"]
    rows = []
    for o in outcomes:
        e = o.entry
        own = sum(o.lost(c) for c in o.own)
        own_max = sum(o.results[c].max_points for c in o.own)
        rows.append([
            "+".join(e.components), e.path.parent.name + "/" + e.path.stem, e.expect,
            "yes" if o.caught else "no", f"{own:g}/{own_max:g}",
            ", ".join(f"{c} {v:g}" for c, v in o.same_component.items()) or "-",
            ", ".join(f"{c} {v:g}" for c, v in o.collateral.items()) or "-",
            _cause_cell(o), _excerpt(o.first_cause, args.width) if o.caught else "",
        ])
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    else:
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())

    wrong = [o for o in outcomes if o.entry.expect in ("caught", "undetectable")]
    caught = [o for o in wrong if o.caught]
    correct = [o for o in outcomes if o.entry.expect == "full"]
    full = [o for o in correct if all(o.lost(c) == 0 for c in o.own)]
    named = [o for o in caught if o.hint_found]
    cascades = [o for o in outcomes if o.collateral]
    unexpected = [o for o in outcomes if (o.entry.expect == "caught") != o.caught and o.entry.expect != "full"]
    components = sorted({o.entry.component for o in wrong}, key=ALL.index)
    print()
    print(f"wrong implementations: {len(wrong)} across {len(components)} graded components; caught {len(caught)} "
          f"({100 * len(caught) / max(1, len(wrong)):.0f}%)")
    unnamed = [o for o in caught if o.hint_found is None]
    print(f"  message names the likely cause: {len(named)} of {len(caught)} caught"
          + (f" ({len(unnamed)} with no specific cause to name: {', '.join(o.entry.name for o in unnamed)})"
             if unnamed else ""))
    print(f"  cascades into other components: {len(cascades)}")
    print(f"correct-but-unusual implementations with full points: {len(full)} of {len(correct)}")
    print(f"graded in {seconds:.1f} s")
    print("\nper component (wrong: caught/total, cause named; correct-but-unusual: full/total):")
    for component in ALL:
        mine = [o for o in wrong if o.entry.component == component]
        ok = [o for o in correct if component in o.entry.components]
        print(f"  {component:20s} wrong {sum(o.caught for o in mine)}/{len(mine)}, named "
              f"{sum(bool(o.hint_found) for o in mine)}; unusual {sum(o in full for o in ok)}/{len(ok)}")
    generic = [o for o in caught if o.hint_found is False]
    if generic:
        print("\ncaught, but the message gives only a generic cause (suggestions for the checks):")
        for o in generic:
            print(f"  - {o.entry.name}: {o.entry.title}")
    undetectable = [o for o in wrong if not o.caught]
    if undetectable:
        print("\nknown undetectable (not caught), with the reason:")
        for o in undetectable:
            flag = "" if o.entry.expect == "undetectable" else "  [UNEXPECTED: listed as caught]"
            print(f"  - {o.entry.name}: {o.entry.title}{flag}\n      {_excerpt(o.entry.effect, 400)}")
    if cascades:
        print("\ncascades (points lost in another component):")
        for o in cascades:
            why = KNOWN_CASCADES.get(o.entry.name, "UNEXPECTED: not in KNOWN_CASCADES")
            print(f"  - {o.entry.name} -> {', '.join(o.collateral)}: {_excerpt(why, 300)}")
    print("\nrealistic mistakes no graded exercise covers:")
    for where, what, why in NOT_GRADED:
        print(f"  - {where}: {what} ({why})")
    if unexpected or any(o.entry.name not in KNOWN_CASCADES for o in cascades) or len(full) != len(correct):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
