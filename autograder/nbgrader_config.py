"""nbgrader configuration of the gptedu course. Run every nbgrader command from this directory.

Assignments (one folder each under source/):
  gpt_from_scratch  part 1, notebooks 01-09 (the homework's character-level GPT), 145 points
Part 2 (notebooks 10-14) is a second assignment in the same course; add it to ASSIGNMENTS when it lands.
"""

import os

c = get_config()  # noqa: F821 - provided by nbgrader/traitlets when this file is loaded

COURSE_DIR = os.path.dirname(os.path.abspath(__file__))
ASSIGNMENTS = ["gpt_from_scratch"]

c.CourseDirectory.root = COURSE_DIR
c.CourseDirectory.course_id = "gptedu"
# SQLite URL of an absolute path: "sqlite:///" + "/abs/path" gives the four slashes SQLAlchemy needs.
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(COURSE_DIR, "gradebook.db")
c.CourseDirectory.db_assignments = [{"name": name} for name in ASSIGNMENTS]

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
