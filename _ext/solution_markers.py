"""Show notebook code cells without the solution markers ``### BEGIN SOLUTION`` / ``### END SOLUTION``.

The chapters keep the markers: the student notebooks are generated from them
(``coursetools/exercises.py``). A reader of the website or the PDF only needs the code, so every
marker line is taken out of the code cells when a page is read, before any builder sees it: the
html, singlehtml (the PDF) and any other builder all start from the same doctree. Only notebook
code cells are touched; a code block in Markdown (the instructor guide shows the convention) is
left as it is.
"""

from docutils import nodes

MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")  # exactly as in coursetools.exercises


def strip_markers(code):
    """``code`` without its marker lines; every other line, blank ones included, is kept."""
    return "\n".join(line for line in code.split("\n") if line.strip() not in MARKERS)


def _is_code_cell_source(node):
    return isinstance(node, nodes.container) and node.get("nb_element") == "cell_code_source"


def strip_doctree(app, doctree):
    for cell in doctree.findall(_is_code_cell_source):
        for block in cell.findall(nodes.literal_block):
            code = block.astext()
            if any(line.strip() in MARKERS for line in code.split("\n")):
                text = strip_markers(code)
                block.children = [nodes.Text(text)]
                block.rawsource = text


def setup(app):
    app.connect("doctree-read", strip_doctree)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
