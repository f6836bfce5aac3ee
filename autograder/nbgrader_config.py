"""nbgrader configuration of the gptedu course. Run every nbgrader command from this directory.

Assignments (one folder each under source/; `generate_assignment` enters them into the gradebook):
  gpt_from_scratch  part 1, notebooks 01-09 (a character-level GPT), 145 points
  gpt2              part 2, notebooks 10-14 (GPT-2)
Student release and executed solutions are regenerated with `python -m gptedu.grading.build` (repo root).
"""

import os

c = get_config()  # noqa: F821 - provided by nbgrader/traitlets when this file is loaded

COURSE_DIR = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.root = COURSE_DIR
c.CourseDirectory.course_id = "gptedu"
# SQLite URL of an absolute path: "sqlite:///" + "/abs/path" gives the four slashes SQLAlchemy needs.
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(COURSE_DIR, "gradebook.db")

# Timeouts are per cell (nbgrader has no per-notebook limit). The slowest graded cell (notebook 08's short,
# deterministic training under NBGRADER_EXECUTION) takes a few seconds; 120 s leaves room for a slow machine
# while bounding what an infinite loop costs.
c.Execute.timeout = 120
c.ExecutePreprocessor.timeout = 120
c.Execute.startup_timeout = 120
c.Execute.interrupt_on_timeout = True

# What students see in place of a solution region.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Re-insert locked test cells that a student deleted (otherwise they are silently not graded).
c.OverwriteCells.add_missing_cells = True

# Intake: nbgrader autogrades only copies that gptedu.grading.intake checked (run autograde through
# `python -m gptedu.grading.autograde_class`; plain `nbgrader autograde` is refused), `nbgrader collect` copies only
# regular files, `release_feedback` skips students who came without the exchange (autograder/README.md, "Intake").
from gptedu.grading.intake import configure_intake  # noqa: E402

configure_intake(c)

# ---- BEGIN gptedu grading sandbox (block maintained with the sandbox; see autograder/README.md, "Sandbox") ----
# The jailed kernel and jailed verification (bubblewrap; `python -m gptedu.grading.sandbox install`, once, no root);
# autograde refuses when the sandbox cannot run (GPTEDU_UNSANDBOXED=1 grades without it, with a warning); a
# per-notebook time limit; dead or stuck kernels and output floods graded instead of crashing; out-of-process
# verification of every registered component; stripped metadata repaired; hidden tests kept out of the feedback.
from gptedu.grading.sandbox_nbgrader import configure_nbgrader  # noqa: E402

configure_nbgrader(c, cell_timeout=120, notebook_timeout=900)
# ---- END gptedu grading sandbox ----
