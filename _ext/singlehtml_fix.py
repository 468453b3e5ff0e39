"""Let the singlehtml builder (used for the PDF) fall back to the html node handlers.

sphinx-exercise registers singlehtml handlers for its own nodes, after which Sphinx no longer
falls back to the html handlers for any node, so sphinx-proof's nodes fail in singlehtml.
"""


def _merge(app):
    table = app.registry.translation_handlers
    if "singlehtml" in table:
        for node, handlers in table.get("html", {}).items():
            table["singlehtml"].setdefault(node, handlers)


def setup(app):
    app.connect("builder-inited", _merge)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
