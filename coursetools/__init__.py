"""Instructor and build tooling for the course: the student-notebook generator and its convention check.

Kept beside ``bpkit``, not in it: a learner imports ``bpkit``; instructors run these from the
repository root (``python -m coursetools.exercises student chapters/ -o student/``).
"""
