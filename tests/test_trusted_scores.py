"""One trusted scoring path (issue 11): scores come only from the trusted comparison, hidden cases from the course
secret, hidden-test feedback redacted, no reference copy to borrow.

The first tests drive the verification directly (``verify_components``: the student's cells in a fresh process,
the comparison here); the last one grades a small course twice with the real ``nbgrader autograde``: once with
plain nbgrader (each attack earns points there) and once with the course's configuration (each earns nothing).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import stat
import subprocess
import sys

import course_kit as kit
import nbformat
import pytest
import torch

from gptedu.grading import components, secret, verify
from gptedu.grading.runner import run_case

REPO = kit.REPO
NB03 = REPO / "autograder" / "source" / "gpt_from_scratch" / "03_single_head.ipynb"
NB09 = REPO / "autograder" / "source" / "gpt_from_scratch" / "09_generation.ipynb"
COURSE_SECRET = bytes(range(32))  # a course's secret (not the public development one)


def _verdicts(nb_path, answers: dict[str, str], course_secret: bytes = COURSE_SECRET, only=None):
    """{(component, "visible"|"hidden"): Verdict} for the source notebook with ``answers`` (grade id -> code) in
    its answer cells (the instructor's solution in the others); ``only``: these components only."""
    source_nb = nbformat.read(nb_path, as_version=4)
    solved = nbformat.from_dict(source_nb)
    for cell in solved.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            cell.source = answers.get(meta["grade_id"], kit.strip_markers(cell.source))
    cells = [(i, verify.to_python(s)) for i, s in verify.student_code_cells(solved, source_nb)]
    found = [c for c in components.all_components() if c.notebook == nb_path.stem and (not only or c.name in only)]
    return verify.verify_components(found, cells, source_nb, course_secret, 120)


def _scores(verdicts) -> dict[tuple[str, str], bool]:
    return {key: verdict.passed for key, verdict in verdicts.items()}


# ------------------------------------------------------------------------------------------------- the secret
def test_secret_init_rotate_load(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    with pytest.raises(secret.MissingSecret, match="python -m gptedu.grading.secret init --course"):
        secret.load(course)
    where = secret.init(course)
    assert where == course / ".gptedu" / "secret"
    assert stat.S_IMODE(where.stat().st_mode) == 0o600
    assert stat.S_IMODE(where.parent.stat().st_mode) == 0o700
    assert (where.parent / ".gitignore").read_text().splitlines()[-1] == "*"
    first = secret.load(course)
    assert len(first) == 32
    assert secret.init(course) == where and secret.load(course) == first  # init keeps an existing secret
    secret.rotate(course)
    assert secret.load(course) != first
    where.write_text("not hex\n")
    with pytest.raises(secret.MissingSecret, match="damaged.*rotate"):
        secret.load(course)


def test_secret_command_line(tmp_path):
    course = tmp_path / "my course"
    course.mkdir()
    run = [sys.executable, "-m", "gptedu.grading.secret"]
    res = subprocess.run([*run, "init", "--course", str(course)], capture_output=True, text=True)
    assert res.returncode == 2 and "no nbgrader_config.py" in res.stderr  # not a course folder: says so
    (course / "nbgrader_config.py").write_text("c = get_config()\n")
    res = subprocess.run([*run, "init", "--course", str(course)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    first = secret.load(course)
    res = subprocess.run([*run, "rotate", "--course", str(course)], capture_output=True, text=True)
    assert res.returncode == 0 and secret.load(course) != first


def test_the_secret_is_nowhere_in_the_repository_or_the_package():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    assert not [p for p in tracked if "/.gptedu/" in f"/{p}"]
    ignored = subprocess.run(["git", "check-ignore", "-q", "autograder/.gptedu/secret"], cwd=REPO)
    assert ignored.returncode == 0


def test_hidden_cases_come_from_the_secret():
    for component in components.all_components():
        public = component.cases(hidden=True)  # what anyone can compute from the installed package
        course = component.cases(hidden=True, secret=COURSE_SECRET)
        assert repr(public) != repr(course), component.name
        assert repr(course) == repr(component.cases(hidden=True, secret=COURSE_SECRET))  # deterministic


def test_every_test_cell_of_the_course_is_registered():
    """A test cell that no component claims would score 0 for everyone (a course configuration error)."""
    unregistered = []
    for path in sorted((REPO / "autograder" / "source").glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if verify.is_test_cell(cell) and components.for_grade_id(cell.metadata.nbgrader["grade_id"]) is None:
                unregistered.append(f"{path.stem}: {cell.metadata.nbgrader['grade_id']}")
    assert not unregistered


# ------------------------------------------------------------------------------------------- lookup tables
def _lookup_table_head(table_secret: bytes | None) -> str:
    """A ``Head`` computing no attention: it returns outputs memorised for the visible cases and for the hidden cases
    of ``table_secret`` (None: the public package's default), found by hashing its input."""
    from gptedu.char.attention import Head

    head = components.get("head")
    table = {}
    for case in head.cases(hidden=False) + head.cases(hidden=True, secret=table_secret):
        outputs = run_case(Head, case)
        for name, x in case["inputs"].items():
            for method in case["methods"]:
                buffer = io.BytesIO()
                torch.save(outputs[f"{method}:{name}"], buffer)
                key = method + hashlib.sha256(x.contiguous().numpy().tobytes()).hexdigest()
                table[key] = base64.b64encode(buffer.getvalue()).decode()
    return f'''\
import base64, hashlib, io
TABLE = {table!r}


class Head(nn.Module):
    def __init__(self, d_model, d_k, d_v, context_len=100):
        super().__init__()
        self.query = nn.Linear(d_model, d_k, bias=False)
        self.key = nn.Linear(d_model, d_k, bias=False)
        self.value = nn.Linear(d_model, d_v, bias=False)

    def _recall(self, method, x):
        key = method + hashlib.sha256(x.contiguous().numpy().tobytes()).hexdigest()
        if key in TABLE:
            return torch.load(io.BytesIO(base64.b64decode(TABLE[key])))
        return torch.zeros(x.shape[0], x.shape[1], self.value.out_features)

    def forward(self, x):
        return self._recall("forward", x)

    def attention_weights(self, x):
        return self._recall("attention_weights", x)
'''


def test_a_lookup_table_built_from_the_public_package_scores_zero_on_hidden_tests():
    public_table = _lookup_table_head(None)
    # the attack is real: against the hidden cases the package can compute, the table passes everything
    assert _scores(_verdicts(NB03, {"head_solution": public_table}, components.PUBLIC_DEV_SECRET)) == {
        ("head", "visible"): True, ("head", "hidden"): True}
    # with the course's secret the hidden cases are new: the memorised outputs are worth nothing there
    assert _scores(_verdicts(NB03, {"head_solution": public_table})) == {
        ("head", "visible"): True, ("head", "hidden"): False}


def _planned_secret(tmp_path, course_secret: bytes, answer: str, beside: dict[str, bytes] | None = None) -> bytes:
    """The hidden cases' secret that autograde's plan gives 03 with ``answer`` as the Head cell (files ``beside``)."""
    from traitlets.config import Config

    course = tmp_path / "course"
    folder = course / "autograded" / "student" / "a"
    shutil.rmtree(course, ignore_errors=True)
    (course / "source" / "a").mkdir(parents=True)
    folder.mkdir(parents=True)
    shutil.copyfile(NB03, course / "source" / "a" / NB03.name)
    (course / ".gptedu").mkdir()
    (course / ".gptedu" / "secret").write_text(course_secret.hex())
    for name, content in (beside or {}).items():
        (folder / name).write_bytes(content)
    nb = nbformat.read(NB03, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "head_solution":
            cell.source = answer
    config = Config()
    config.CourseDirectory.root = str(course)
    plan = verify.VerifyAnswers(config=config).plan(nb, {"nbgrader": {"assignment": "a", "notebook": NB03.stem},
                                                         "metadata": {"path": str(folder)}})
    return plan["secret"]


def test_hidden_cases_that_leak_are_worth_nothing_in_a_resubmission(tmp_path):
    """Hidden cases are keyed to everything the submission's code can read: a grading run that leaks them (the
    review found a timing channel between concurrent jails) teaches nothing usable, because a resubmission that
    carries what leaked, in its code or in a file beside the notebook, is graded on other cases."""
    first = kit.head_solution()
    leaked = _planned_secret(tmp_path, COURSE_SECRET, first)
    assert leaked not in (COURSE_SECRET, components.PUBLIC_DEV_SECRET)
    assert _planned_secret(tmp_path, COURSE_SECRET, first) == leaked  # a regrade of the same submission: same cases
    assert _planned_secret(tmp_path, COURSE_SECRET, first + "\n# v2") != leaked
    assert _planned_secret(tmp_path, COURSE_SECRET, first, {"table.bin": b"x"}) != leaked
    assert _planned_secret(tmp_path, COURSE_SECRET, first, {"other.ipynb": b"{}"}) == leaked  # notebooks aside
    assert _planned_secret(tmp_path, bytes(32), first) != leaked  # and the course secret still counts
    head = components.get("head")
    assert repr(head.cases(hidden=True, secret=leaked)) != repr(head.cases(hidden=True, secret=COURSE_SECRET))

    table = _lookup_table_head(leaked)  # the memorised outputs of the leaked cases
    # the attack is real: on the cases that leaked, the table passes every hidden check...
    assert _scores(_verdicts(NB03, {"head_solution": table}, leaked))[("head", "hidden")]
    # ...but the resubmission that carries it is graded on its own cases
    resubmitted = _planned_secret(tmp_path, COURSE_SECRET, table)
    assert _scores(_verdicts(NB03, {"head_solution": table}, resubmitted)) == {
        ("head", "visible"): True, ("head", "hidden"): False}


# ----------------------------------------------------------------------------------------- reference copies
BORROW_FROM_COPY = {
    "plain import": "from reference_copy.sampling import filter_logits as top_k_filter\n",
    "computed name": "import importlib\ntop_k_filter = importlib.import_module('reference' + '_copy.sampling')"
                     ".filter_logits\n",
    "wrapped": "import importlib\n_m = importlib.import_module('_'.join(['reference', 'copy']) + '.sampling')\n\n\n"
               "def top_k_filter(logits, k):\n    return _m.filter_logits(logits, k)\n",
}


def test_a_copy_that_held_the_graded_reference_is_still_not_borrowed():
    """Two layers: had the copy held ``filter_logits`` (the whole module, as before the pruning), the wrapped import
    still fails every check, visible and hidden, because a call into the reference copy counts as the reference."""
    source_nb = nbformat.read(NB09, as_version=4)
    top_k = components.get("top_k_filter")
    cells = [(0, BORROW_FROM_COPY["wrapped"])]
    for which in verify.WHICH:
        cases = {top_k.name: [(verify.case_key(top_k, which, i), case) for i, case in enumerate(
            top_k.cases(hidden=which == "hidden", secret=COURSE_SECRET))]}
        outputs, problem = verify.run_in_sandbox([top_k], cells, source_nb, 120, withheld={"top_k_filter"},
                                                 cases=cases, provided={"f": "gptedu.sampling.filter_logits"},
                                                 which=which)
        verdict = verify.judge(top_k, which, cases[top_k.name], outputs, problem)
        assert not verdict.passed, verdict.text


@pytest.mark.parametrize("how", sorted(BORROW_FROM_COPY))
def test_the_verifications_reference_copy_cannot_be_borrowed(how):
    found = _scores(_verdicts(NB09, {"top_k_solution": BORROW_FROM_COPY[how]}, only={"top_k_filter"}))
    assert found == {("top_k_filter", "visible"): False, ("top_k_filter", "hidden"): False}


def test_the_reference_copy_holds_only_the_prerequisites(tmp_path):
    """07's GPTModel may use the reference decoder (its prerequisite); the copy holds nothing else of the package:
    no GPTModel, no sampling, no data helpers."""
    source_nb = nbformat.read(REPO / "autograder" / "source" / "gpt_from_scratch" / "07_gpt.ipynb", as_version=4)
    found = [c for c in components.all_components() if c.notebook == "07_gpt"]
    for withheld, group in verify.withheld_groups(found).items():
        statements, _ = verify.instructor_prelude(source_nb)
        _, wanted = verify.build_prelude(statements, verify.provided_names(source_nb, group, []), set(withheld))
        folder = tmp_path / "-".join(withheld)
        verify.write_reference_copy(folder, wanted, set(withheld))
        text = "\n".join(p.read_text() for p in folder.rglob("*.py"))
        assert "class GPTModel" not in text and "def filter_logits" not in text and "load_tinyshakespeare" not in text
        assert ("class TransformerDecoder(" in text) == ("TransformerDecoder" not in withheld)


def test_no_runs_copy_holds_what_it_grades(tmp_path):
    """A later exercise runs with the reference's versions of the earlier ones (notebook 10's block with LayerNorm,
    FeedForward, MultiHeadAttention and the GELU inside; train_bpe with merge), taken from the copy; in every
    notebook, the copy of a run never holds the class or function that run grades."""
    import re

    holds = {}
    for notebook in sorted({c.notebook for c in components.all_components()}):
        found = [c for c in components.all_components() if c.notebook == notebook]
        for withheld, group in verify.withheld_groups(found).items():
            _, wanted = verify.build_prelude([], verify.provided_names(None, group, []), set(withheld))
            folder = tmp_path / notebook / ("-".join(withheld) or "none")
            verify.write_reference_copy(folder, wanted, set(withheld))
            text = "\n".join(p.read_text() for p in folder.rglob("*.py"))
            for component in group:
                holds[component.name] = text
                assert not re.search(rf"^(class|def) {component.target}\b", text, re.M), component.name
    for name in ("LayerNorm", "GELU", "FeedForward", "MultiHeadAttention"):
        assert f"\nclass {name}(" in holds["gpt2_block"]
    assert "\ndef merge(" in holds["bpe_train"] and "\ndef top_k_filter(" in holds["sample_next_token"]
    assert "\nclass LayerNorm(" not in holds["gpt2_layer_norm"] and "\ndef merge(" not in holds["bpe_merge"]


# ---------------------------------------------------------------------------------------- feedback redaction
LEAKY_HEAD = kit.head_solution().replace(
    "    def forward(self, x",
    "    def _leak(self, x):\n"
    "        if x.shape[1] not in VISIBLE_T:\n"
    "            secret_cases = open('cases.pt', 'rb').read()[:300] if os.path.exists('cases.pt') else b''\n"
    "            print('LEAK', tuple(x.shape), x.flatten()[:4].tolist())\n"
    "            raise ValueError(f'LEAK shape={tuple(x.shape)} values={x.flatten()[:4].tolist()} {secret_cases!r}')\n"
    "\n    def forward(self, x", 1).replace(
    "        return self.attention_weights(x) @ self.value(x)",
    "        self._leak(x)\n        return self.attention_weights(x) @ self.value(x)")


def _visible_lengths() -> set[int]:
    return {int(case["inputs"]["x"].shape[1]) for case in components.get("head").cases(hidden=False)}


def test_hidden_feedback_never_shows_inputs_sizes_seeds_or_the_students_text():
    head = components.get("head")
    assert "self._leak(x)" in LEAKY_HEAD
    answer = f"import os\nVISIBLE_T = {_visible_lengths()}\n" + LEAKY_HEAD
    verdicts = _verdicts(NB03, {"head_solution": answer})
    hidden, visible = verdicts[("head", "hidden")], verdicts[("head", "visible")]
    assert visible.passed and not hidden.passed
    assert "your code raised an error on a hidden case" in hidden.text  # names the check and the cause
    assert "LEAK" not in hidden.text and "shape=" not in hidden.text
    for case in head.cases(hidden=True, secret=COURSE_SECRET):
        x = case["inputs"]["x"]
        assert str(case["seed"]) not in hidden.text
        assert str(tuple(x.shape)) not in hidden.text and case["describe"] not in hidden.text
        assert str(case["init"]["d_model"]) not in hidden.text.replace("1/sqrt", "")
    # wrong values on hidden cases: the check and the cause, never expected or found values
    wrong = kit.head_solution().replace("/ math.sqrt(k.size(-1))", "")
    wrong_hidden = _verdicts(NB03, {"head_solution": wrong})[("head", "hidden")]
    assert not wrong_hidden.passed and "matches the reference" in wrong_hidden.text
    assert "expected" not in wrong_hidden.text and "found" not in wrong_hidden.text
    assert not any(case["describe"] in wrong_hidden.text for case in head.cases(hidden=True, secret=COURSE_SECRET))


def test_visible_feedback_stays_detailed():
    """The visible run never holds a hidden case, so it may quote the student's own error message."""
    answer = kit.head_solution().replace("        return self.attention_weights(x) @ self.value(x)",
                                         "        raise ValueError('my own message')")
    visible = _verdicts(NB03, {"head_solution": answer})[("head", "visible")]
    assert not visible.passed and "my own message" in visible.text and "case: Head(" in visible.text


def test_hidden_text_drops_any_line_carrying_the_students_strings():
    from gptedu.grading.report import Failure

    failure = Failure("ok check STOLEN-VALUE-123", "case", "message", "cause", status="failed")
    text = verify._hidden_text(failure, {"_message": "STOLEN-VALUE-123", "_status": "made-up status"})
    assert "STOLEN" not in text and "cause" in text
    unknown = Failure("made-up status", "case", "m", "", status="made-up status")
    assert "made-up" not in verify._hidden_text(unknown, {"_status": "made-up status"})


# ----------------------------------------------------------------------------------- the gradebook's scores
def _graded_by(preprocessor_class, tmp_path, outputs, verdicts) -> dict[str, float]:
    """Scores the gradebook gets from ``preprocessor_class`` for a notebook with one answer cell (graded by hand,
    2 points) and two 10-point test cells (one registered, one not) whose kernel outputs are ``outputs``."""
    from nbgrader.api import Gradebook

    tmp_path.mkdir()
    db = f"sqlite:///{tmp_path / 'gradebook.db'}"
    cells = [
        nbformat.v4.new_markdown_cell("answer", metadata={"nbgrader": {
            "grade": True, "solution": True, "grade_id": "explain", "points": 2, "locked": False}}),
        *(nbformat.v4.new_code_cell("check(...)", outputs=outputs, metadata={"nbgrader": {
            "grade": True, "solution": False, "grade_id": gid, "points": 10, "locked": True}})
          for gid in ("test_head_visible", "test_not_registered")),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    with Gradebook(db) as gb:
        gb.update_or_create_assignment("ps1")
        gb.update_or_create_notebook("nb", "ps1")
        gb.update_or_create_grade_cell("explain", "nb", "ps1", max_score=2, cell_type="markdown")
        gb.update_or_create_solution_cell("explain", "nb", "ps1")
        for gid in ("test_head_visible", "test_not_registered"):
            gb.update_or_create_grade_cell(gid, "nb", "ps1", max_score=10, cell_type="code")
        gb.update_or_create_student("ada")
        gb.add_submission("ps1", "ada")
    resources = {"nbgrader": {"notebook": "nb", "assignment": "ps1", "student": "ada", "db_url": db},
                 "gptedu_grading": {"verdicts": verdicts}}
    preprocessor_class().preprocess(nb, resources)
    with Gradebook(db) as gb:
        found = gb.find_submission_notebook("nb", "ps1", "ada")
        return {g.name: g.score if g.name.startswith("test_") else ("manual", g.needs_manual_grade)
                for g in found.grades}


PLANTED = [nbformat.v4.new_output("execute_result", data={"text/plain": "'ok'"}, execution_count=1),
           nbformat.v4.new_output("error", ename="CheckFailed", evalue="not attempted", traceback=[])]


def test_the_score_is_set_from_the_verdict_never_from_the_outputs(tmp_path, monkeypatch):
    from nbgrader.preprocessors import SaveAutoGrades

    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}")  # alembic

    failed = {"test_head_visible": verify.Verdict(False, "✗ not attempted")}
    # nbgrader scores a test cell from its outputs: an execute_result before the error is full points
    assert _graded_by(SaveAutoGrades, tmp_path / "plain", PLANTED, failed) == {
        "explain": ("manual", True), "test_head_visible": 10, "test_not_registered": 10}
    # here: the verdict decides, up or down; an unregistered test cell (no verdict) scores 0; answers graded by hand
    # stay for the grader
    assert _graded_by(verify.SaveTrustedGrades, tmp_path / "ours", PLANTED, failed) == {
        "explain": ("manual", True), "test_head_visible": 0, "test_not_registered": 0}
    passed = {"test_head_visible": verify.Verdict(True, "✓")}
    error = [nbformat.v4.new_output("error", ename="KernelDied", evalue="", traceback=[])]
    assert _graded_by(verify.SaveTrustedGrades, tmp_path / "up", error, passed)["test_head_visible"] == 10


# ----------------------------------------------------------------------------- the real nbgrader, both ways
HOOK = 'get_ipython().events.register("pre_run_cell", lambda *a: get_ipython().displayhook("ok"))\n'
STUB = "# YOUR CODE HERE\nraise NotImplementedError()\n"
WRONG = kit.head_solution().replace("/ math.sqrt(k.size(-1))", "")
ATTACKS = {
    # an execute_result planted before each later cell's error: nbgrader scores such a cell from it
    "displayhook_stub": HOOK + STUB,
    # every later cell that calls check( becomes a cell that prints nothing and raises nothing
    "transformer_wrong": WRONG + '''
def _skip(lines):
    return ["pass\\n"] if any("check(" in l for l in lines) else lines
get_ipython().input_transformers_cleanup.append(_skip)
''',
    # the grading helper and torch's comparisons patched, a fake module in sys.modules
    "patched_wrong": WRONG + '''
import sys, types, torch
import gptedu.grading as _grading
_grading.check = lambda *a, **k: print("all checks passed")
_fake = types.ModuleType("gptedu.grading")
_fake.check = _grading.check
sys.modules["gptedu.grading"] = _fake
torch.allclose = lambda *a, **k: True
''',
}
EXTRA_TEST_CELL = "print('an extra test cell, not registered with any component')"


PLAIN_CONFIG = '''\
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "gptedu-test"
c.CourseDirectory.db_url = "sqlite:///{db}"
'''


def _autograde(course, env, *args: str) -> subprocess.CompletedProcess:
    """The course's way to autograde (intake, then nbgrader autograde with the course's configuration)."""
    return subprocess.run([sys.executable, "-m", "gptedu.grading.autograde_class", kit.ASSIGNMENT, *args],
                          cwd=course, env=env, capture_output=True, text=True, timeout=900)


def _with_unregistered_test_cell(course):
    """Add a 5-point test cell that no component claims to the source, and release again."""
    path = course / "source" / kit.ASSIGNMENT / f"{kit.NOTEBOOK}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(EXTRA_TEST_CELL, metadata={"nbgrader": {
        "grade": True, "grade_id": "test_not_registered", "locked": True, "points": 5, "schema_version": 3,
        "solution": False, "task": False}}))
    nbformat.write(nb, path)


@pytest.mark.slow
def test_attacks_fool_plain_nbgrader_and_earn_nothing_here(tmp_path):
    if not kit.sandbox_possible():
        pytest.skip("the grading sandbox needs root on Linux, with namespaces")  # CI: never skipped
    env = kit.sandbox_env(tmp_path)
    plain_env = {k: v for k, v in env.items() if k not in ("GPTEDU_REQUIRE_SANDBOX", "JUPYTER_PATH")}
    courses = {}
    for name in ("plain", "ours"):
        root = tmp_path / name
        root.mkdir()
        course = kit.make_course(root, env)
        _with_unregistered_test_cell(course)
        assert kit.nbgrader(course, "generate_assignment", kit.ASSIGNMENT, "--force", env=env).returncode == 0
        if name == "plain":
            (course / "nbgrader_config.py").write_text(PLAIN_CONFIG.format(db=course / "gradebook.db"))
        answers = {**ATTACKS, "correct_with_hook": HOOK + kit.head_solution(),
                   "leaky": f"import os\nVISIBLE_T = {_visible_lengths()}\n" + LEAKY_HEAD}
        for student, answer in answers.items():
            kit.submit(course, student, answer=answer)
        courses[name] = course

    # without the course secret, autograde refuses before grading anything, naming the command to run
    ours = courses["ours"]
    os.rename(ours / ".gptedu" / "secret", ours / ".gptedu" / "moved")
    refused = _autograde(ours, env)
    assert refused.returncode != 0 and "python -m gptedu.grading.secret init" in refused.stderr
    assert not list((ours / "autograded").glob(f"*/{kit.ASSIGNMENT}/*.ipynb")) or all(
        not any(kit.cell_scores(ours, student).values()) for student in ("correct_with_hook",))
    os.rename(ours / ".gptedu" / "moved", ours / ".gptedu" / "secret")

    plain = kit.nbgrader(courses["plain"], "autograde", kit.ASSIGNMENT, env=plain_env)
    assert plain.returncode == 0, plain.stderr[-3000:]
    graded = _autograde(ours, env, "--force")
    assert graded.returncode == 0, graded.stderr[-3000:]
    head_cells = ("test_head_visible", "test_head_hidden")
    for student in ATTACKS:
        fooled = kit.cell_scores(courses["plain"], student)
        assert [fooled[g] for g in head_cells] == [10, 10], (student, fooled)  # plain nbgrader: full points
        scores = kit.cell_scores(ours, student)
        assert [scores[g] for g in head_cells] == [0, 0], (student, kit.outputs_of(ours, student, head_cells[0]))
    assert kit.cell_scores(courses["plain"], "correct_with_hook")["test_not_registered"] == 5
    correct = kit.cell_scores(ours, "correct_with_hook")
    assert [correct[g] for g in head_cells] == [10, 10]  # the hook harms nobody: correct code, full points
    assert correct["test_not_registered"] == 0  # no component, no points: a configuration error, said so
    assert "course configuration error" in kit.outputs_of(ours, "correct_with_hook", "test_not_registered")

    # the feedback shows the trusted verdict, not what the submission displayed, and no hidden input
    res = kit.nbgrader(ours, "generate_feedback", kit.ASSIGNMENT, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    stub_html = (ours / "feedback" / "displayhook_stub" / kit.ASSIGNMENT / f"{kit.NOTEBOOK}.html").read_text()
    assert "not attempted" in stub_html
    html = (ours / "feedback" / "leaky" / kit.ASSIGNMENT / f"{kit.NOTEBOOK}.html").read_text()
    assert "your code raised an error on a hidden case" in html
    for case in components.get("head").cases(hidden=True, secret=secret.load(ours)):
        assert case["describe"] not in html and str(case["seed"]) not in html
    hidden_outputs = kit.outputs_of(ours, "leaky", "test_head_hidden")
    assert "LEAK" not in hidden_outputs



# ------------------------------------------------------------------------------ nothing correct in the graded run
GRAB = '''\
def _grab(name, aliases=()):
    """Whatever correct version of `name` the grader's run holds: its files and modules, its guard switched off."""
    import importlib, os, sys
    try:
        import grading_runner
        grading_runner.ShortcutGuard._note = lambda self, label: None
    except ImportError:
        pass
    for root, _, files in os.walk("reference_copy"):
        for file in files:
            if file.endswith(".py"):
                try:
                    importlib.import_module(os.path.join(root, file)[:-3].replace(os.sep, ".").removesuffix(
                        ".__init__"))
                except Exception:
                    pass
    wanted = {name, *aliases}
    for module in list(sys.modules.values()):
        if not getattr(module, "__name__", "").startswith(("grading_runner", "reference_copy", "gptedu")):
            continue
        for key, value in list(vars(module).items()):
            for k, v in [(key, value)] + (list(value.items()) if isinstance(value, dict) else []):
                stub = "_withheld" in getattr(getattr(v, "__init__", None), "__qualname__", "")
                if isinstance(k, str) and k.lstrip("_") in wanted and callable(v) and not stub:
                    return v
    raise NotImplementedError(name)
'''
ALIASES = {"CachedMultiHeadAttention": ("MultiHeadAttention",), "CachedGPT": ("GPT2Model",)}


def _borrowing_answer(targets: list[str], imported: list[str]) -> str:
    code = [GRAB, f"try:\n    _named = [{', '.join(imported)}]\nexcept NameError:\n    pass\n"]  # all in the copy
    for target in targets:
        code.append(f"try:\n    _found = _grab({target!r}, {ALIASES.get(target, ())!r})\n"
                    f"    {target} = type({target!r}, (_found,), {{}}) if isinstance(_found, type) else (\n"
                    f"        lambda f: lambda *args, **kwargs: f(*args, **kwargs))(_found)\n"
                    f"except NotImplementedError:\n    pass\n")
    return "\n".join(code)


@pytest.mark.parametrize("notebook", sorted({c.notebook for c in components.all_components()}))
def test_no_run_holds_a_correct_version_of_what_it_grades(notebook):
    """An answer that switches the in-jail guard off, imports every module of the run's reference copy, and takes any
    function or class of the grader's own code named like the exercise (or like its reference equivalent) scores
    nothing: the run that grades an exercise holds no correct version of it (found by a red-team session)."""
    path = next(REPO.glob(f"autograder/source/*/{notebook}.ipynb"))
    source_nb = nbformat.read(path, as_version=4)
    solutions = [c.metadata.nbgrader["grade_id"] for c in source_nb.cells
                 if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")]
    targets = sorted({c.target for c in components.all_components() if c.notebook == notebook})
    imported = sorted(verify.instructor_prelude(source_nb)[1])  # what the copy may hold, once the code names it
    answers = {gid: "pass" for gid in solutions} | {solutions[0]: _borrowing_answer(targets, imported)}
    passed = sorted(key for key, ok in _scores(_verdicts(path, answers)).items() if ok)
    assert passed == [], passed


CACHED_ON_THE_COPY = '''\
try:
    import grading_runner
    grading_runner.ShortcutGuard._note = lambda self, label: None
    _named = (GPT2Model, KVCache)  # naming the notebook's imports puts the reference model (and its parts) in the copy
    _ns = {"__name__": __name__}  # the copy's source run as this cell's own code
    for _path in ("reference" + "_copy/gpt2/kvcache.py", "reference" + "_copy/gpt2/attention.py"):
        exec(open(_path).read().replace("from reference" + "_copy", "from _nowhere"), _ns)
    _Attention, _Cache = _ns["MultiHeadAttention"], _ns["LayerKVCache"]

    class CachedMultiHeadAttention(_Attention):
        def forward(self, x, use_cache=False):
            return super().forward(x, kv_cache=self.cache if use_cache else None)

        def reset_cache(self):
            self.cache = _Cache()

        def step_by_step(self, x):
            self.reset_cache()
            return torch.cat([self(x[:, t:t + 1], use_cache=True) for t in range(x.size(1))], dim=1)

        def prefill_then_steps(self, x):
            self.reset_cache()
            half = max(1, x.size(1) // 2)
            prefill = self(x[:, :half], use_cache=True)
            return torch.cat([prefill, *(self(x[:, t:t + 1], use_cache=True) for t in range(half, x.size(1)))], dim=1)
except Exception:
    pass
'''


def test_the_cached_attention_cannot_be_built_on_the_copys_attention():
    """The reference's GPT-2 attention already takes a KV cache: the run that grades notebook 13's cached attention
    must not hold it, whatever the student's code names (found by a red-team session: 20/20 before)."""
    path = REPO / "autograder" / "source" / "gpt2" / "13_kv_cache.ipynb"
    found = _scores(_verdicts(path, {"kv_cached_attention_solution": CACHED_ON_THE_COPY}, only={"kv_cached_attention"}))
    assert not any(found.values()), found


# ------------------------------------------------------------------ nothing carried from one run to the next
# Found by a red-team session: the run grading notebook 10's GPTModel holds the reference LayerNorm, attention, block
# ... as its prerequisites; a cell saved their source in SysV shared memory, which outlives the run in its jail, and
# the later runs of the same jail (the ones grading those classes) read it back and ran it as the student's own code:
# 55 of 70 points for untouched stubs, once the GPTModel test cells were moved to the top of the notebook.
CARRY_OVER = '''\
import ctypes as _ct, json as _json, os as _os, re as _re
_libc = _ct.CDLL(None, use_errno=True)
_libc.shmget.restype, _libc.shmget.argtypes = _ct.c_int, [_ct.c_int, _ct.c_size_t, _ct.c_int]
_libc.shmat.restype, _libc.shmat.argtypes = _ct.c_void_p, [_ct.c_int, _ct.c_void_p, _ct.c_int]
_KEY, _SIZE = 0x67707432, 1 << 20
_MODS = ("gpt2/config.py", "gpt2/attention.py", "gpt2/layers.py", "gpt2/model.py")
def _segment(create):
    shmid = _libc.shmget(_KEY, _SIZE if create else 0, 0o1666 if create else 0)
    return None if shmid < 0 else _libc.shmat(shmid, None, 0)
_here = {m: open(_os.path.join("reference_copy", m)).read() for m in _MODS
         if _os.path.isfile(_os.path.join("reference_copy", m))}
if "class TransformerBlock" in "".join(_here.values()):
    _addr = _segment(create=True)
    if _addr:
        _data = _json.dumps(_here).encode()
        _ct.memmove(_addr, len(_data).to_bytes(8, "big") + _data, len(_data) + 8)
else:
    _addr = _segment(create=False)
    if _addr:
        _got = _json.loads(_ct.string_at(_addr + 8, int.from_bytes(_ct.string_at(_addr, 8), "big")))
        for _m in _MODS:
            _src = _re.sub(r"^(from reference_copy\\S* import .*|\\w+ = _withheld\\(.*)$", "", _got.get(_m, ""),
                           flags=_re.M)
            exec(compile(_src, "<my code>", "exec"), globals())
'''


def test_a_run_leaves_nothing_for_the_runs_after_it(tmp_path):
    """Notebook 10 with its stubs untouched and the carry-over cell, its components in the order the red team chose
    (GPTModel first): nothing passes. The jail refuses SysV IPC (and the run order is the course's, not the
    notebook's)."""
    path = REPO / "autograder" / "source" / "gpt2" / "10_gpt2_blocks.ipynb"
    source_nb = nbformat.read(path, as_version=4)
    stubs = [(i, "raise NotImplementedError()") for i, c in enumerate(source_nb.cells)
             if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")]
    found = sorted((c for c in components.all_components() if c.notebook == path.stem),
                   key=lambda c: c.name != "gpt2_model")
    verdicts = verify.verify_components(found, [*stubs, (len(source_nb.cells), CARRY_OVER)], source_nb,
                                        COURSE_SECRET, 120, str(tmp_path))  # a student: one jail per kind
    passed = sorted(key for key, ok in _scores(verdicts).items() if ok)
    assert passed == [], passed


def test_the_runs_come_in_the_courses_order_whatever_the_notebooks(monkeypatch):
    """The order of the runs (and so what a run can find of an earlier one) does not depend on where the submission
    put its test cells."""
    runs: list[tuple[str, ...]] = []

    def record(specs, cells, source_nb, timeout, *, withheld, cases, provided, which, student_dir=None):
        runs.append((which, *sorted(withheld)))
        return None, "not run"

    monkeypatch.setattr(verify, "run_in_sandbox", record)
    path = REPO / "autograder" / "source" / "gpt2" / "10_gpt2_blocks.ipynb"
    source_nb = nbformat.read(path, as_version=4)
    found = [c for c in components.all_components() if c.notebook == path.stem]
    orders = []
    for order in (found, found[::-1], sorted(found, key=lambda c: c.name != "gpt2_model")):
        runs.clear()
        verify.verify_components(order, [], source_nb, COURSE_SECRET, 60)
        orders.append(list(runs))
    assert len(orders[0]) > 2 and orders[0] == orders[1] == orders[2], orders
