"""pytest set-up shared by tests/ and chapters/."""

import os

# bpkit's fit shows a progress bar in Jupyter. The kernels nbval starts inherit this variable,
# so the chapters run as they were stored: without bars, whose timings change at every run.
os.environ["BPKIT_PROGRESS"] = "0"
