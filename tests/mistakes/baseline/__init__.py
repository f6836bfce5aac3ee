"""Correct student answers for each part-1 notebook, used when a notebook's source is not in autograder/source yet.

Each file holds the answer cells of one notebook (student style: names resolved in the notebook's namespace), so a
mistake in one component can be tested for cascades into the other components of the same notebook.
"""
