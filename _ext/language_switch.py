"""A link on every page to the same page in the other edition (English at the site root, Chinese in zh/).

``language_switch = {"label": "中文", "prefix": "zh/", "hreflang": "zh-CN"}`` in the English build and
``{"label": "English", "prefix": "../", "hreflang": "en"}`` in the Chinese one: the link goes up to the site's root,
then into ``prefix``, then to the same page name. Both editions have the same pages, so the link
always resolves (the site test follows it).
"""

def add_switch(app, pagename, templatename, context, doctree):
    switch = app.config.language_switch
    if not switch or "body" not in context:
        return
    up = "../" * pagename.count("/")
    href = f"{up}{switch['prefix']}{pagename}.html"
    lang = switch["hreflang"]
    link = (f'<p class="language-switch" style="text-align:right;margin:0 0 .5em 0">'
            f'<a class="reference internal" href="{href}" hreflang="{lang}" lang="{lang}">{switch["label"]}</a></p>\n')
    context["body"] = link + context["body"]  # the body is HTML already (a str): no escaping


def setup(app):
    app.add_config_value("language_switch", {"label": "中文", "prefix": "zh/", "hreflang": "zh-CN"}, "html")
    app.connect("html-page-context", add_switch)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
