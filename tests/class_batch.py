"""One simulated class, graded ONCE by the real ``nbgrader autograde`` and shared by the grading-loop tests.

``test_class_loop.py``, ``test_sandbox.py`` and ``test_hostile.py`` all read the same graded course (a kernel start
costs seconds, so every kind of submission goes into one batch), graded as instructors do it: through
``python -m gptedu.grading.autograde_class`` (intake, then nbgrader). The submissions: correct, unusual but
correct, partial, untouched stub, tampering of every kind, bad code (shortcuts, crashes, loops, floods), broken
notebooks, hostile files (links, FIFOs, hard links, JSON that Python cannot parse safely, a huge notebook) and
probes that try to escape the sandbox.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import course_kit as kit
import nbformat

CORRECT = kit.head_solution()
SCALING = "/ math.sqrt(k.size(-1))"
assert SCALING in CORRECT
WRONG = CORRECT.replace(SCALING, "")  # forgets 1/sqrt(d_k): fails the checks
MASK = 'torch.tril(torch.ones(context_len, context_len))'
assert MASK in CORRECT
PARTIAL = CORRECT.replace(MASK, "torch.tril(torch.ones(16, 16))")  # right on short sequences only

UNUSUAL = '''\
class Head(nn.Module):
    def __init__(self, d_model, d_k, d_v, context_len=100):
        super().__init__()
        self.query = nn.Linear(d_model, d_k, bias=False)
        self.key = nn.Linear(d_model, d_k, bias=False)
        self.value = nn.Linear(d_model, d_v, bias=False)
        self.register_buffer("mask", torch.tril(torch.ones(context_len, context_len)).bool())

    def _project(self, x):
        return self.query(x), self.key(x), self.value(x)

    def attention_weights(self, x):
        T = x.shape[1]
        queries, keys, _ = self._project(x)
        s = causal_scores(queries, keys)
        s = s.masked_fill(~self.mask[:T, :T], -1e9)
        return s.softmax(dim=-1)

    def forward(self, x):
        _, _, values = self._project(x)
        return torch.einsum("bqk,bkd->bqd", self.attention_weights(x), values)
'''
UNUSUAL_HELPER = 'def causal_scores(q, k):\n    return torch.einsum("bqd,bkd->bqk", q, k) / (k.shape[-1] ** 0.5)\n'

SDPA = CORRECT.replace(
    "return self.attention_weights(x) @ self.value(x)",
    "import torch.nn.functional as F\n        q, k, v = self.query(x), self.key(x), self.value(x)\n"
    "        return F.scaled_dot_product_attention(q, k, v, is_causal=True)")
assert SDPA != CORRECT

# Wrong code plus an attack on the in-kernel tests. Each one makes the kernel's test cells pass (checked by
# test_hostile) and must still end with 0 points.
TAMPER = {
    # torch's comparisons and Tensor.abs say "equal"; builtins.__import__ is wrapped (harmlessly) too
    "tamper_torch": WRONG + '''
import builtins, torch.testing
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
torch.Tensor.abs = lambda self: torch.zeros_like(self)
''',
    # the grading helper replaced, then a fake grading module in sys.modules, then builtins.__import__ hijacked
    "tamper_grading": WRONG + '''
import builtins, sys, types
import gptedu.grading as _grading
_grading.check = lambda *a, **k: print("all checks passed")
_fake = types.ModuleType("gptedu.grading")
_fake.check = _grading.check
sys.modules["gptedu.grading"] = _fake
_real_import = builtins.__import__
def _import(name, *args, **kwargs):
    if name.startswith("gptedu.grading"):
        return _fake
    return _real_import(name, *args, **kwargs)
builtins.__import__ = _import
''',
    # the reference class made to compute the same wrong thing
    "tamper_reference": WRONG + '''
import gptedu.char.attention as _ref
_ref.Head.attention_weights = Head.attention_weights
_ref.Head.forward = Head.forward
''',
    # an input transformer that keeps only the print lines of later cells (the checks never run)
    "tamper_transformer": WRONG + '''
def _keep_prints(lines):
    return [l for l in lines if l.startswith("print(")] or ["pass\\n"]
get_ipython().input_transformers_cleanup.append(_keep_prints)
''',
    # wrong code, and every later cell that calls check( becomes `pass` (no output, no error: full points in plain
    # nbgrader)
    "tamper_skip_tests": WRONG + '''
def _skip(lines):
    return ["pass\\n"] if any("check(" in l for l in lines) else lines
get_ipython().input_transformers_cleanup.append(_skip)
''',
    # the untouched stub, and an execute_result planted before every later cell's error (nbgrader scores a cell
    # from it: full points in plain nbgrader)
    "tamper_displayhook": 'get_ipython().events.register("pre_run_cell", lambda *a: get_ipython().displayhook("ok"))\n'
                          "# YOUR CODE HERE\nraise NotImplementedError()\n",
}

BAD_CODE = {
    "sdpa": SDPA,
    "wraps_reference": "from gptedu.char.attention import Head as _ReferenceHead\n\n\nclass Head(_ReferenceHead):\n"
                       "    pass\n",
    "import_error": "import definitely_not_a_module_xyz\n" + CORRECT,
    "kernel_suicide": "import os\nos._exit(3)\n" + CORRECT,
    "prints_megabytes": CORRECT + "print('spam ' * 4_000_000)\n",
    "memory_bomb": "blocks = []\nwhile True:\n    blocks.append(bytearray(50_000_000))\n" + CORRECT,
    "fork_bomb": '''\
import os, time
children = 0
while True:
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(600)
        os._exit(0)
    children += 1
print("FORKED", children)
''' + CORRECT,
}

# Graded in a second autograde call with a 4 s cell timeout and a 10 s notebook limit (timeouts cost time).
LOOPS = {
    "loop_plain": "while True:\n    pass\n" + CORRECT,
    "loop_swallows_interrupt": CORRECT + "import time\nwhile True:\n    try:\n        time.sleep(0.05)\n"
                                         "    except KeyboardInterrupt:\n        pass\n",
}
LOOP_FLAGS = ["--SandboxExecute.timeout=4", "--SandboxExecute.notebook_timeout=10"]

PROBE = '''\
import json, os, socket
COURSE = {course!r}
results = {{"uid": os.getuid()}}
def attempt(name, action):
    try:
        action()
        results[name] = "ALLOWED"
    except Exception as exc:
        results[name] = type(exc).__name__
attempt("read_source", lambda: open(COURSE + "/source/ps1/03_single_head.ipynb").read())
attempt("read_gradebook", lambda: open(COURSE + "/gradebook.db", "rb").read(100))
results["list_course"] = sorted(os.listdir(COURSE)) if os.path.isdir(COURSE) else []  # the path to its folder
attempt("read_other_submission", lambda: open(COURSE + "/submitted/perfect/ps1/03_single_head.ipynb").read())
attempt("read_other_autograded", lambda: os.listdir(COURSE + "/autograded/perfect"))
attempt("write_course", lambda: open(COURSE + "/hacked.txt", "w").write("x"))
attempt("write_up_from_cwd", lambda: open("../../../hacked2.txt", "w").write("x"))
attempt("write_own_folder", lambda: open("scratch.txt", "w").write("x"))
attempt("network_tcp", lambda: socket.create_connection(("1.1.1.1", 443), timeout=3))
attempt("network_dns", lambda: socket.getaddrinfo("pypi.org", 443))
attempt("become_root", lambda: os.setuid(0))
attempt("read_secret", lambda: open(COURSE + "/.gptedu/secret", "rb").read())
attempt("read_shadow", lambda: open("/etc/shadow").read())
results["list_root_home"] = sorted(os.listdir("/root")) if os.path.isdir("/root") else []
print("PROBE" + json.dumps(results))
'''

_CACHE: dict = {}


SCRIPT = "window.PWNED=1"  # what a student's script would run in the reader's browser


def _grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _submissions(course: Path) -> None:
    kit.submit(course, "perfect", answer=CORRECT)
    kit.submit(course, "partial", answer=PARTIAL)
    kit.submit(course, "stub")
    nb = kit.release_notebook(course)
    index = kit.answer_index(nb)
    nb.cells[index].source = UNUSUAL
    nb.cells.insert(index, nbformat.v4.new_code_cell(UNUSUAL_HELPER))  # an extra cell with a helper
    kit.submit(course, "unusual", nb=nb)
    for student, answer in {**TAMPER, **BAD_CODE}.items():
        kit.submit(course, student, answer=answer)
    kit.submit(course, "prober", answer=PROBE.format(course=str(course)) + CORRECT)
    # locked test cells edited (source and points): nbgrader restores them
    nb = kit.release_notebook(course)
    nb.cells[kit.answer_index(nb)].source = WRONG
    for cell in nb.cells:
        if _grade_id(cell) in ("test_head_visible", "test_head_hidden"):
            cell.source = "print('all checks passed')"
            cell.metadata.nbgrader["points"] = 100
    kit.submit(course, "edits_tests", nb=nb)
    # test cells deleted
    nb = kit.release_notebook(course)
    nb.cells[kit.answer_index(nb)].source = CORRECT
    nb.cells = [c for c in nb.cells if not (_grade_id(c) or "").startswith("test_")]
    kit.submit(course, "deletes_tests", nb=nb)
    # every cell's nbgrader metadata stripped (e.g. by another editor), the answer in place
    nb = kit.release_notebook(course)
    nb.cells[kit.answer_index(nb)].source = CORRECT
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
    kit.submit(course, "stripped_metadata", nb=nb)
    # metadata stripped and cell ids regenerated: nothing to match, the test cells are appended at the end
    nb = kit.release_notebook(course)
    nb.cells[kit.answer_index(nb)].source = CORRECT
    for number, cell in enumerate(nb.cells):
        cell.metadata.pop("nbgrader", None)
        cell["id"] = f"new-{number}"
    kit.submit(course, "stripped_no_ids", nb=nb)
    # correct, plus HTML and JavaScript for whoever opens the graded notebook (formgrader: the instructor's session)
    nb = kit.release_notebook(course)
    nb.cells[kit.answer_index(nb)].source = CORRECT
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(f"Notes <img src=x onerror=\"{SCRIPT}\">"))
    nb.cells.insert(2, nbformat.v4.new_code_cell(
        "from IPython.display import HTML, Javascript, Markdown, display\n"
        f"display(HTML('<script>{SCRIPT}</script>'), Javascript('{SCRIPT}'),\n"
        f"        Markdown('<b onclick=\"{SCRIPT}\">x</b>'))"))
    kit.submit(course, "scripts", nb=nb)
    kit.submit(course, "invalid_json", raw='{"cells": [ this is not json')
    _hostile_files(course)
    folder = course / "submitted" / "missing_notebook" / kit.ASSIGNMENT
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("I forgot the notebook")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:  # the class roster (`nbgrader db student add`)
        gb.update_or_create_student("missing_notebook")


# Submissions that intake must stop before nbgrader reads them (tests/test_intake.py shows what plain nbgrader
# does with each): (student, expected message in the report). "links_beside" is correct and must get full points.
REJECTED = {
    "link_notebook": "is a symbolic link",  # the notebook is a link to perfect's notebook
    "hardlink_notebook": "hard link",  # a hard link to a copy of the instructor's source notebook
    "fifo_notebook": "a FIFO",
    "digits": "more than 100 digits",
    "deep": "nested more than 64 levels",
    "huge": "over the 32.0 MB limit",
}


def _hostile_files(course: Path) -> None:
    nb_name = f"{kit.NOTEBOOK}.ipynb"
    folder = kit.submit(course, "links_beside", answer=CORRECT).parent
    (course / ".gptedu").mkdir(exist_ok=True)
    (course / ".gptedu" / "canary").write_text("the course secret folder")
    for name, target in {"gradebook.db": course / "gradebook.db", "source.ipynb.txt": course / "source" /
                         kit.ASSIGNMENT / nb_name, "shadow": Path("/etc/shadow"), "zero.bin": Path("/dev/zero"),
                         "other.txt": course / "submitted" / "perfect" / kit.ASSIGNMENT / nb_name,
                         "secret": course / ".gptedu"}.items():
        (folder / name).symlink_to(target)
    os.mkfifo(folder / "pipe")
    folder = kit.submit(course, "link_notebook", answer=WRONG).parent
    (folder / nb_name).unlink()
    (folder / nb_name).symlink_to(course / "submitted" / "perfect" / kit.ASSIGNMENT / nb_name)
    folder = kit.submit(course, "hardlink_notebook", answer=WRONG).parent
    (folder / nb_name).unlink()
    shutil.copy(course / "source" / kit.ASSIGNMENT / nb_name, course / "instructor_copy.ipynb")
    os.link(course / "instructor_copy.ipynb", folder / nb_name)
    folder = kit.submit(course, "fifo_notebook", answer=WRONG).parent
    (folder / nb_name).unlink()
    os.mkfifo(folder / nb_name)
    text = nbformat.writes(kit.release_notebook(course))
    kit.submit(course, "digits", raw=text.replace('"metadata": {', '"metadata": {"n": ' + "7" * 5000 + ", ", 1))
    kit.submit(course, "deep", raw=text.replace('"metadata": {', '"metadata": {"n": ' + "[" * 50_000
                                                + "]" * 50_000 + ", ", 1))
    nb = kit.release_notebook(course)
    nb.cells[kit.answer_index(nb)].source = CORRECT
    nb.cells.append(nbformat.v4.new_markdown_cell("x" * (33 * 2**20)))
    kit.submit(course, "huge", nb=nb)


def graded_class(tmp_path_factory) -> dict:
    """Build, submit and autograde the class once per test session; returns what the tests need."""
    if _CACHE:
        return _CACHE
    tmp = tmp_path_factory.mktemp("class")
    env = kit.sandbox_env(tmp)
    course = kit.make_course(tmp, env)
    _submissions(course)
    start = time.perf_counter()
    run = kit.autograde(course, env=env)
    seconds = time.perf_counter() - start
    for student, answer in LOOPS.items():
        kit.submit(course, student, answer=answer)
    nb = kit.release_notebook(course)  # five 3-second cells: the 10 s notebook limit stops it
    nb.cells[kit.answer_index(nb)].source = CORRECT
    for _ in range(5):
        nb.cells.insert(kit.answer_index(nb) + 1, nbformat.v4.new_code_cell("import time\ntime.sleep(3)"))
    kit.submit(course, "loop_slow_cells", nb=nb)
    loops = kit.autograde(course, "--student", "loop_*", "--", *LOOP_FLAGS, env=env)
    students = sorted(p.name for p in (course / "submitted").iterdir())
    scores = {}
    for student in students:
        try:
            scores[student] = kit.cell_scores(course, student)
        except Exception:  # noqa: BLE001 - no gradebook entry at all
            scores[student] = None
    print(f"\nautograde of {len(students)} submissions: {seconds:.0f} s")
    _CACHE.update(course=course, env=env, run=run, loops=loops, scores=scores, seconds=seconds, students=students)
    return _CACHE


def autograded_nb(course: Path, student: str):
    return nbformat.read(course / "autograded" / student / kit.ASSIGNMENT / f"{kit.NOTEBOOK}.ipynb", as_version=4)


def all_outputs(course: Path, student: str) -> str:
    return json.dumps([c.get("outputs", []) for c in autograded_nb(course, student).cells])


def stream_text(course: Path, student: str) -> str:
    """Everything the student's notebook printed (stdout and stderr), in cell order."""
    return "".join(o.get("text", "") for c in autograded_nb(course, student).cells for o in c.get("outputs", [])
                   if o.get("output_type") == "stream")


def total(scores: dict | None) -> float:
    return sum(v or 0 for k, v in (scores or {}).items() if k.startswith("test_"))
