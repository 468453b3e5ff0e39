"""What the gettext catalogues of the Chinese edition hold, and what they never hold.

- Display equations stay out: a ``math_block`` is marked untranslatable, so it is neither
  extracted nor replaced (a translated display equation breaks the numbering of the whole page).
- Exercise titles go in: ``sphinx_exercise`` builds the title ("Exercise 1.1 (The chain rule)")
  from the directive's argument without a source position, so Sphinx would skip it. The title's
  text (the part after the number) gets the position of its exercise, and is translated like any
  other string.

Both run before Sphinx's own ``Locale`` transform (priority 20).

- The words the extensions write themselves ("Solution" on every hidden solution, which
  sphinx_exercise's own catalogue lacks) come from ``locales/<language>/LC_MESSAGES/_ui.po``.
"""
from pathlib import Path


from docutils import nodes
from docutils.transforms import Transform


class CatalogueNodes(Transform):
    default_priority = 15

    def apply(self):
        from sphinx_exercise.nodes import exercise_subtitle

        for node in self.document.findall(nodes.math_block):
            node["translatable"] = False
        for node in self.document.findall(exercise_subtitle):
            parent = node.parent
            while parent is not None and not parent.source:
                parent = parent.parent
            if parent is None:
                continue
            node.source, node.line = parent.source, parent.line
            text = node.astext().strip()
            if text.startswith("(") and text.endswith(")"):
                text = text[1:-1]
            node.rawsource = text
            exercise = node.parent.parent  # exercise > exercise_title > exercise_subtitle
            exercise["i18n_title"] = (text, node.source, node.line)


def title_messages(app, doctree, docname):
    """For the gettext builder only: sphinx_exercise's post-transform has replaced each title by a
    new node without a source; give it the title's text and position back so it is extracted."""
    if app.builder.name != "gettext":
        return
    for node in doctree.findall(lambda n: isinstance(n, nodes.Element) and "i18n_title" in n):
        title = node.next_node(nodes.title)
        if title is not None:
            title.rawsource, title.source, title.line = node["i18n_title"]
            title.uid = ""  # the catalogue skips a node without one (Sphinx's own hack for toctrees)


UI_CATALOGUE = Path(__file__).resolve().parents[1] / "locales" / "{language}" / "LC_MESSAGES" / "_ui.po"


def interface_words(app, doctree, docname):
    """Solution titles in the edition's language (the English build leaves them alone)."""
    language = app.config.language or "en"
    path = Path(str(UI_CATALOGUE).format(language=language))
    if language.startswith("en") or not path.exists():
        return
    import polib
    from sphinx_exercise.nodes import solution_node

    words = {e.msgid: e.msgstr for e in polib.pofile(str(path)) if e.msgstr and "fuzzy" not in e.flags}
    for node in doctree.findall(solution_node):
        title = node.next_node(nodes.title)
        for text in list(title.findall(nodes.Text)) if title is not None else []:
            if text.astext() in words:
                text.parent.replace(text, nodes.Text(words[text.astext()]))


def setup(app):
    app.add_transform(CatalogueNodes)
    app.connect("doctree-resolved", title_messages)
    app.connect("doctree-resolved", interface_words)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
