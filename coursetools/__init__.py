"""Instructor and build tooling for the course: the student-notebook generator and its convention check
(``exercises``), the numbers and labels of the book (``book``), and the MyST-to-plain-Markdown
conversion that lets the student notebooks render in plain Jupyter and Colab (``plainmd``).

Kept beside ``bpkit``, not in it: a learner imports ``bpkit``; instructors run these from the
repository root (``python -m coursetools.exercises student chapters/ -o student/``).
"""
