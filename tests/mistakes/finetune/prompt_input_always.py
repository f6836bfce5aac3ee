"""format_prompt: prompt input always.

Mistake: see the answer cell ('if entry.get("input", "").strip():\n        text +=' changed).
Component: format_prompt (notebook 14).
Expected effect: loses points; the message names "leave the whole '### Input:' section out".
"""

# ruff: noqa: F821, F841, B905, E501  (the names come from the notebook's earlier cells)



COMPONENT = "format_prompt"
EXPECT = "caught"
HINTS = ("leave the whole '### Input:' section out",)

# --- answer cell ---

def format_prompt(entry: dict) -> str:
    """The text the model reads before its answer; ends with '### Response:' and a newline."""
    text = PREAMBLE + "\n\n### Instruction:\n" + entry["instruction"]
    text += "\n\n### Input:\n" + entry["input"]
    return text + "\n\n### Response:\n"
