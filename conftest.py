"""pytest set-up shared by tests/ and chapters/.

Its presence at the repository root puts the root on ``sys.path``, so that the tests import the
instructor tooling in ``coursetools/`` as they import ``bpkit``.
"""
