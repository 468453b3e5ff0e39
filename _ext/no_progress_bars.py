"""Chapters executed for the book show no progress bars.

bpkit's ``fit`` shows a progress bar when it runs in Jupyter, and the bar holds timings, which
would change the page at every build. myst-nb starts the kernels from the Sphinx process, so
they inherit ``BPKIT_PROGRESS=0`` set here, however the book is built.
"""

import os


def setup(app):
    os.environ["BPKIT_PROGRESS"] = "0"
    return {"parallel_read_safe": True, "parallel_write_safe": True}
