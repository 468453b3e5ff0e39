"""Browser test of the built site: every page of the table of contents, offline.

    python scripts/check_site.py [_build/html] [--toc _toc.yml]

Serves the built HTML with ``python -m http.server`` on 127.0.0.1 and opens every page of
``_toc.yml`` in Debian's chromium (driven by Playwright). A page passes when it loads with
HTTP 200; when it has math, MathJax comes from the site's own ``_static/mathjax``, has typeset
every formula (``mjx-container``) and left no raw ``$$``, ``\\[`` or ``\\(`` in the article's
text; every image in the article has loaded; there is no console or page error (except the
known noise below), no failed request to the site and no request to any other host; every
internal link (with its ``#anchor``) resolves; and a page made from a notebook shows no solution
marker (``### BEGIN SOLUTION`` / ``### END SOLUTION``), not even in a collapsed solution. Pages
written in Markdown may name the markers: the instructor guide explains them. Prints a table
and exits 1 on any problem.

Both editions are checked, from the same server: the English pages at the root and the Chinese
pages under ``zh/`` (``--editions`` chooses). Every page must link to the same page in the other
edition (the link is then followed like any other), and every Chinese page must have Chinese text
in its article, its heading drawn with a CJK font (no boxes: the platform fonts DevTools reports).

To prove that no CDN is needed, run it with loopback as the only network:
    unshare -n sh -c 'ip link set lo up && exec "$@"' sh .venv/bin/python scripts/check_site.py _build/html
"""

import argparse
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import yaml

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
KNOWN_NOISE = ("THEBE_JS_URL' has already been declared",  # sphinx-thebe, on every Jupyter Book 1 page
               "Got invalid theme mode")                    # pydata theme, first load
ARTICLE = "article.bd-article, article, main"  # the first that exists on the page
RAW_TEX = ("$$", "\\[", "\\(")
SOLUTION_MARKERS = ("BEGIN SOLUTION", "END SOLUTION")
EDITIONS = {"en": "", "zh": "zh/"}
# What each code cell printed or drew: the text of its <pre> blocks and tables, and how many images
# (the copy button's label, which is in the page's language, is left out).
OUTPUTS = """() => [...document.querySelectorAll('div.cell_output')].map(e =>
  [...e.querySelectorAll('pre, table')].map(p => p.textContent).join('\\n')
  + ' [' + e.querySelectorAll('img').length + ' images]')"""  # edition: folder under the site's root
MIN_HAN = 20  # Chinese characters a page of the Chinese edition has at least (its title and a sentence)

# Text of the article outside code and typeset math (stream outputs are <pre>): no raw TeX may remain there.
FIND_ARTICLE = "sel => sel.split(',').map(s => document.querySelector(s)).find(e => e) || document.body"
TEXT_OUTSIDE_CODE = """(sel) => {
  const root = (""" + FIND_ARTICLE + """)(sel);
  const skip = 'pre, code, script, style, textarea, mjx-container';
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  let text = '';
  for (let n = walker.nextNode(); n; n = walker.nextNode())
    if (!n.parentElement.closest(skip)) text += n.nodeValue;
  return text;
}"""


# All text of a page made from a notebook (it has notebook cells), collapsed solutions included
# (textContent, not innerText); "" for a page written in Markdown.
NOTEBOOK_TEXT = """(sel) => {
  const root = (""" + FIND_ARTICLE + """)(sel);
  return root.querySelector('div.cell') ? root.textContent : '';
}"""


def toc_pages(toc_path):
    """Every document of a jb-book ``_toc.yml``: the root, then parts, chapters, sections in order."""
    toc = yaml.safe_load(Path(toc_path).read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [str(Path(p).with_suffix("")) + ".html" for p in pages]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(html_dir):
    """Start ``python -m http.server`` for ``html_dir``; return (process, base URL) once it answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(html_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/"
    for _ in range(100):
        try:
            urllib.request.urlopen(base, timeout=1).close()
            return proc, base
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"check_site: http.server on port {port} did not answer")


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        self.ids.update(v for k, v in attrs if k in ("id", "name") and v)


def check_target(url):
    """Problems with one internal link target (URL without fragment) and its set of anchor ids."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body, kind = r.read(), r.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}", set()
    except (urllib.error.URLError, OSError) as exc:
        return f"unreachable ({exc})", set()
    parser = _Ids()
    if kind == "text/html":
        parser.feed(body.decode("utf-8", "replace"))
    return None, parser.ids


def listen(page, host, problems):
    """Record console errors, page errors, failed or refused requests to the site, and any other host."""
    def on_console(m):
        if m.type == "error" and "favicon.ico" not in str(m.location.get("url", "")):
            problems.append(f"console error: {m.text}")

    def on_request(r):
        if urlsplit(r.url).scheme in ("http", "https") and urlsplit(r.url).netloc != host:
            problems.append(f"request to another host: {r.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", on_request)
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url} ({r.failure})")
            if urlsplit(r.url).netloc == host else None)
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)


def check_page(browser, base, path):
    """Open one page; return its counts, problems and the internal links it holds."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    problems, host = [], urlsplit(base).netloc
    listen(page, host, problems)
    row = {"page": path, "formulas": 0, "images": 0, "links": set(), "notebook": False, "steps": 0, "outputs": []}
    try:
        response = page.goto(base + path, wait_until="load", timeout=30000)
        if response is None or response.status != 200:
            problems.append(f"page answered HTTP {response.status if response else 'nothing'}")
        row["formulas"] = check_math(page, problems)
        row["images"] = check_images(page, problems)
        row["notebook"] = check_solution_markers(page, problems)
        row["steps"] = check_steppers(page, problems)
        check_edition(page, path, problems)
        row["links"] = set(page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)"))
        row["outputs"] = page.evaluate(OUTPUTS)
    except Exception as exc:  # a timeout or a crash of the page: report it, check the others
        problems.append(f"{type(exc).__name__}: {exc}".splitlines()[0])
    finally:
        page.close()
    row["problems"] = [p for p in problems if not any(k in p for k in KNOWN_NOISE)]
    row["links"] = {u for u in row["links"] if urlsplit(u).netloc == host}
    return row


def check_edition(page, path, problems):
    """The link to the other edition is there; a page of the Chinese edition has Chinese text."""
    if not page.query_selector("p.language-switch a[href]"):
        problems.append("no link to the other edition (p.language-switch)")
    if path.startswith(EDITIONS["zh"]):
        text = page.evaluate("(sel) => (" + FIND_ARTICLE + ")(sel).innerText", ARTICLE)
        han = sum("\u4e00" <= ch <= "\u9fff" for ch in text)
        if han < MIN_HAN:
            problems.append(f"a page of the Chinese edition with {han} Chinese characters (untranslated?)")
        english = [t for t in page.evaluate("() => [...document.querySelectorAll('p.admonition-title')]"
                                            ".map(p => p.textContent.trim())")
                   if t == "Solution" or t.startswith("Exercise")]
        if english:
            problems.append(f"English exercise or solution titles on a Chinese page: {english[:3]}")
        fonts = heading_fonts(page)
        if not any("CJK" in f["familyName"] and f["glyphCount"] > 0 for f in fonts):
            problems.append(f"the Chinese heading is drawn without a CJK font (boxes?): {fonts}")


def heading_fonts(page):
    """The fonts chromium really drew the page's first heading with (DevTools' platform fonts)."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "article h1"})["nodeId"]
        return cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"] if node else []
    finally:
        cdp.detach()


def compare_outputs(rows):
    """The code cells' outputs are the same in every edition: page by page, output by output."""
    by_page = {r["page"]: r for r in rows}
    compared = 0
    for r in rows:
        if not r["page"].startswith(EDITIONS["zh"]) or r["page"][len(EDITIONS["zh"]):] not in by_page:
            continue
        english = by_page[r["page"][len(EDITIONS["zh"]):]]["outputs"]
        if len(english) != len(r["outputs"]):
            r["problems"].append(f"{len(r['outputs'])} cell outputs, the English page has {len(english)}")
            continue
        for k, (en, zh) in enumerate(zip(english, r["outputs"])):
            if en.split() != zh.split():  # a stream may arrive in one block or several: compare the words
                r["problems"].append(f"cell output {k} differs from the English page's: {zh[:80]!r} vs {en[:80]!r}")
        compared += len(english)
    return compared


def check_math(page, problems):
    """Wait for MathJax when the page has math; check where it came from and that it typeset everything."""
    has_math = page.locator(".math").count() > 0
    scripts = page.evaluate("() => [...document.querySelectorAll('script[src*=\"mathjax\" i]')]"
                            ".map(s => new URL(s.src, location.href))"
                            ".map(u => ({host: u.host, path: u.pathname}))")
    if not has_math:
        return 0
    local = [s for s in scripts if s["host"] == urlsplit(page.url).netloc and "/_static/mathjax/" in s["path"]]
    if not local or len(local) != len(scripts):
        problems.append(f"MathJax is not loaded from the site's _static/mathjax: {scripts}")
    else:
        try:
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                                   timeout=15000)
            page.evaluate("() => MathJax.startup.promise")
        except Exception as exc:
            problems.append(f"MathJax did not start: {type(exc).__name__}")
    n = page.locator("mjx-container").count()
    if n == 0:
        problems.append("the page has math but no mjx-container: nothing was typeset")
    text = page.evaluate(TEXT_OUTSIDE_CODE, ARTICLE)
    for tex in RAW_TEX:
        at = text.find(tex)
        if at >= 0:
            problems.append(f"raw TeX {tex!r} left in the article: ...{text[max(at - 30, 0):at + 40]!r}...")
    return n


def check_solution_markers(page, problems):
    """A page made from a notebook shows no solution marker; return whether it is such a page."""
    text = page.evaluate(NOTEBOOK_TEXT, ARTICLE)
    for marker in SOLUTION_MARKERS:
        if marker in text:
            at = text.index(marker)
            problems.append(f"shows the solution marker {marker!r} {text.count(marker)} time(s), e.g. "
                            f"...{text[max(at - 40, 0):at + 30]!r}... (the _ext/solution_markers.py "
                            "extension must be listed under sphinx: local_extensions in _config.yml)")
    return bool(text)


def check_steppers(page, problems):
    """Click through every step of every backward-pass stepper on the page (bpkit.graph_stepper): each click
    moves one step, and at the last step every gradient shown equals the engine's. Return the clicks made."""
    clicks = 0
    for k in range(page.locator(".bp-stepper").count()):
        box = page.locator(".bp-stepper").nth(k)
        status = box.locator(".bp-status")
        total = int(status.inner_text().split()[-1])
        box.locator("button[data-act=start]").click()
        for step in range(1, total + 1):
            box.locator("button[data-act=next]").click()
            clicks += 1
            if status.inner_text() != f"step {step} of {total}":
                problems.append(f"stepper {k}: after {step} clicks it shows {status.inner_text()!r}")
                return clicks
        shown = box.locator(".bp-node").evaluate_all("ns => ns.map(n => [n.dataset.grad, n.dataset.engineGrad])")
        wrong = [i for i, (grad, engine) in enumerate(shown) if grad == "" or float(grad) != float(engine)]
        if wrong:
            problems.append(f"stepper {k}: after the last step nodes {wrong} show gradients that differ from the engine's")
    return clicks


def check_images(page, problems):
    """Every <img> of the article has loaded (naturalWidth > 0); return how many there are."""
    page.evaluate("() => document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')")
    try:
        page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=10000)
    except Exception:
        pass  # the broken ones are reported below
    images = page.evaluate(f"""sel => [...({FIND_ARTICLE})(sel).querySelectorAll('img')]
        .map(i => ({{src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}}))""", ARTICLE)
    unique = {i["src"]: i["ok"] for i in images}
    problems += [f"image did not load: {src[:80]}" for src, ok in unique.items() if not ok]
    return len(unique)


def check_links(rows):
    """Check each unique internal link target once; add the problems to the pages that hold the link."""
    targets, status = {}, {}
    for row in rows:
        for url in row["links"]:
            page_url, anchor = urldefrag(url)
            targets.setdefault(page_url, set()).add(anchor)
    for page_url in targets:
        status[page_url] = check_target(page_url)
    for row in rows:
        for url in sorted(row["links"]):
            page_url, anchor = urldefrag(url)
            error, ids = status[page_url]
            if error:
                row["problems"].append(f"broken link {url}: {error}")
            elif anchor and anchor not in ids:
                row["problems"].append(f"broken link {url}: no element with id {anchor!r}")
    return len(targets), sum(len(a) for a in targets.values())


def report(rows, n_pages, n_links):
    width = max(len(r["page"]) for r in rows) + 2
    print(f"{'page':<{width}}{'formulas':>9}{'images':>8}{'links':>7}{'errors':>8}")
    for r in rows:
        print(f"{r['page']:<{width}}{r['formulas']:>9}{r['images']:>8}{len(r['links']):>7}{len(r['problems']):>8}")
    total = lambda key: sum(r[key] for r in rows)  # noqa: E731
    n_problems = sum(len(r["problems"]) for r in rows)
    print(f"{'total (' + str(len(rows)) + ' pages)':<{width}}{total('formulas'):>9}{total('images'):>8}"
          f"{sum(len(r['links']) for r in rows):>7}{n_problems:>8}")
    print(f"internal links: {n_links} unique targets on {n_pages} pages, each checked once")
    print(f"solution markers: searched the {sum(r['notebook'] for r in rows)} pages made from a notebook")
    print(f"backward-pass steppers: {sum(r['steps'] for r in rows)} steps clicked, each gradient compared at the end")
    for r in rows:
        for p in r["problems"]:
            print(f"PROBLEM {r['page']}: {p}")
    return n_problems


def main(argv=None):
    parser = argparse.ArgumentParser(description="Browser test of the built site (offline-capable).")
    parser.add_argument("html", nargs="?", default="_build/html", type=Path)
    parser.add_argument("--toc", default=Path(__file__).resolve().parents[1] / "_toc.yml", type=Path)
    parser.add_argument("--editions", default="en,zh", help="comma-separated, of: " + ", ".join(EDITIONS))
    args = parser.parse_args(argv)
    editions = args.editions.split(",")
    for edition in editions:
        if not (args.html / EDITIONS[edition] / "index.html").exists():
            raise SystemExit(f"check_site: {args.html / EDITIONS[edition]} has no index.html: build the book first "
                             "(make book builds both editions)")
    from playwright.sync_api import sync_playwright

    pages = [EDITIONS[edition] + page for edition in editions for page in toc_pages(args.toc)]
    server, base = serve(args.html)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            rows = [check_page(browser, base, path) for path in pages]
            browser.close()
        n_pages, n_links = check_links(rows)
        n_outputs = compare_outputs(rows)
    finally:
        server.terminate()
        server.wait()
    failed = report(rows, n_pages, n_links)
    if len(editions) > 1:
        print(f"code cell outputs: {n_outputs} compared between the editions")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
