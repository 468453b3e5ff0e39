"""How a chapter shows bpkit's own code: never a second copy of it."""

import inspect
import textwrap


def show_source(obj):
    """Return the source of a bpkit function, class or method, syntax-highlighted for Jupyter and the book.

    Example: ``bk.show_source(bk.Dense.backward)`` (a method is shown dedented). Because the stored output is compared
    by nbval, a change to bpkit that a chapter has not been re-run with fails the tests.
    """
    from IPython.display import Code  # imported here so bpkit itself needs only numpy

    return Code(textwrap.dedent(inspect.getsource(obj)), language="python")
