"""format_prompt: prompt input missing.

Mistake: see the answer cell ('text += "\\n\\n### Input:\\n" + entry["input"]' changed).
Component: format_prompt (notebook 14).
Expected effect: loses points; the message names 'the input is missing'.
"""

# ruff: noqa: F821, F841, B905, E501  (the names come from the notebook's earlier cells)



COMPONENT = "format_prompt"
EXPECT = "caught"
HINTS = ('the input is missing',)

# --- answer cell ---

def format_prompt(entry: dict) -> str:
    """The text the model reads before its answer; ends with '### Response:' and a newline."""
    text = PREAMBLE + "\n\n### Instruction:\n" + entry["instruction"]
    if entry.get("input", "").strip():
        pass
    return text + "\n\n### Response:\n"
