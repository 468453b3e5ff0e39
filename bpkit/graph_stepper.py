r"""A backward pass to step through: an HTML picture of a ``bpkit.engine`` graph with buttons.

``stepper_html(L)`` takes a loss ``L`` on which ``L.backward()`` has run once, and returns a self-contained
HTML fragment (SVG, a few lines of CSS and JavaScript; no library, no network, no kernel). A reader steps
through the forward pass (each node's value appears, in the engine's topological order) and then the
backward pass, one edge at a time, exactly as ``Value.backward`` runs it: for each node after all its
consumers, and each parent, ``parent.grad += local * node.grad``. The step highlights that edge and
shows the local derivative used. The page opens on the last step (the whole graph with every value and
gradient), which is also what a printed page or a PDF shows; "start" goes back to the beginning.

Each gradient the buttons show is recomputed in the page from the local derivatives, in double
precision and in the engine's order, so the last step equals the engine's ``.grad`` bit for bit; each
node also carries the engine's value in ``data-engine-grad``, which the site test compares.
"""

import hashlib
import html
import json

from .engine import topological_order
from .graph_plot import _layout

_W, _H, _DX, _DY = 112, 46, 128, 74  # node box size and spacing, in SVG units


def _name(node):
    name = node.label or ("const" if not node.parents else "")
    return f"{name} = {node.op}" if name and node.op else (name or node.op)


def _short(node):
    """How the step text names a node: its label, else its operation."""
    return node.label or ("const" if not node.parents else f"the {node.op} node")


def _fmt(x):
    return f"{x:.4g}"


def steps_of(root):
    """The forward steps (one per node, topological order) and backward steps (one per edge, in
    ``Value.backward``'s order) of the graph of ``root``, and each node's gradient replayed from them."""
    order = topological_order(root)
    index = {node: i for i, node in enumerate(order)}
    grads = [0.0] * len(order)
    grads[index[root]] = 1.0
    backward = []
    for node in reversed(order):
        for parent, local in zip(node.parents, node.local_grads):
            grads[index[parent]] += local * grads[index[node]]
            backward.append((index[node], index[parent], local))
    return order, backward, grads


def stepper_html(root):
    """The HTML of the stepper for the graph of ``root`` (see the module docstring)."""
    order, backward, replayed = steps_of(root)
    engine = [node.grad for node in order]
    if replayed != engine:
        raise ValueError("stepper_html needs a loss on which backward() has run exactly once, on a fresh graph: "
                         "the gradients it replays differ from the nodes' .grad (call L.backward() once, or "
                         "rebuild the graph and call it then)")
    col, rank, n_cols, height = _layout(order)
    x0 = (height - 1) / 2
    pos = [((rank[n] + x0) * _DX + 8, (n_cols - 1 - col[n]) * _DY + 8) for n in order]
    width, tall = height * _DX, n_cols * _DY
    index = {node: i for i, node in enumerate(order)}
    edges = [(index[p], i) for i, node in enumerate(order) for p in node.parents]
    edge_ids = {}
    for k, edge in enumerate(edges):
        edge_ids.setdefault(edge, k)
    data = {"names": [_short(n) for n in order], "data": [n.data for n in order],
            "root": index[root], "backward": backward,
            "edge": [edge_ids[(parent, child)] for child, parent, _ in backward],
            "parents": [[index[p] for p in n.parents] for n in order]}
    payload = json.dumps(data, separators=(",", ":"))
    uid = "bp-stepper-" + hashlib.sha1(payload.encode()).hexdigest()[:10]
    svg = [f'<svg viewBox="0 0 {width + 16} {tall}" width="100%" style="max-width:{width + 16}px" '
           f'role="img" aria-label="computation graph">']
    for k, (p, c) in enumerate(edges):
        (xp, yp), (xc, yc) = pos[p], pos[c]
        svg.append(f'<line class="bp-edge" data-edge="{k}" x1="{xp + _W / 2:.1f}" y1="{yp + _H:.1f}" '
                   f'x2="{xc + _W / 2:.1f}" y2="{yc:.1f}"/>')
    for i, node in enumerate(order):
        x, y = pos[i]
        kind = "root" if node is root else ("op" if node.parents else "leaf")
        svg.append(
            f'<g class="bp-node bp-{kind}" data-node="{i}" data-engine-grad="{node.grad!r}" data-grad="{node.grad!r}">'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{_W}" height="{_H}" rx="6"/>'
            f'<text x="{x + _W / 2:.1f}" y="{y + 14:.1f}">{html.escape(_name(node))}</text>'
            f'<text class="bp-data" x="{x + _W / 2:.1f}" y="{y + 28:.1f}">data {_fmt(node.data)}</text>'
            f'<text class="bp-grad" x="{x + _W / 2:.1f}" y="{y + 41:.1f}">grad {_fmt(node.grad)}</text></g>')
    svg.append("</svg>")
    total = len(order) + 1 + len(backward)  # the forward steps, the seed dL/dL = 1, one step per edge
    return f"""<div class="bp-stepper" id="{uid}">
<style>
#{uid} line.bp-edge {{ stroke: #888; stroke-width: 1.2; }}
#{uid} line.bp-edge.bp-now {{ stroke: #d62728; stroke-width: 3; }}
#{uid} .bp-node rect {{ fill: #f4f4f4; stroke: #666; }}
#{uid} .bp-leaf rect {{ fill: #dbe9f6; }}
#{uid} .bp-root rect {{ fill: #fde2c8; }}
#{uid} .bp-node.bp-now rect {{ stroke: #d62728; stroke-width: 3; }}
#{uid} .bp-node.bp-hidden text.bp-data, #{uid} .bp-node.bp-nograd text.bp-grad {{ fill: #bbb; }}
#{uid} text {{ font: 11px monospace; text-anchor: middle; }}
#{uid} .bp-controls button {{ margin-right: 0.3em; }}
@media print {{ #{uid} .bp-controls {{ display: none; }} }}
</style>
{"".join(svg)}
<div class="bp-controls"><button type="button" data-act="start">« start</button><button type="button" data-act="prev">◀ back</button><button type="button" data-act="next">next ▶</button><button type="button" data-act="end">end »</button>
<span class="bp-status">step {total} of {total}</span></div>
<p class="bp-explain">The whole graph after the forward and the backward pass: every value and every gradient.</p>
<script type="application/json" class="bp-steps">{payload}</script>
<script>{_SCRIPT.replace("__UID__", uid)}</script>
</div>"""


def show_stepper(root):
    """Display the stepper in Jupyter (the same HTML as ``stepper_html``)."""
    from IPython.display import HTML, display

    display(HTML(stepper_html(root)))


_SCRIPT = r"""
(function () {
  var box = document.getElementById("__UID__");
  var S = JSON.parse(box.querySelector(".bp-steps").textContent);
  var n = S.names.length, total = n + 1 + S.backward.length, step = total;
  var nodes = box.querySelectorAll(".bp-node"), edges = box.querySelectorAll(".bp-edge");
  function fmt(x) {  // Python's format(x, ".4g")
    if (x === 0) return Object.is(x, -0) ? "-0" : "0";
    var e = Math.floor(Math.log10(Math.abs(Number(x.toPrecision(4)))));
    if (e < -4 || e >= 4) {
      var p = x.toExponential(3).split("e"), m = p[0].replace(/\.?0+$/, ""), k = Number(p[1]);
      return m + "e" + (k < 0 ? "-" : "+") + (Math.abs(k) < 10 ? "0" : "") + Math.abs(k);
    }
    return x.toFixed(3 - e).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
  }
  function show(k) {
    step = Math.max(0, Math.min(total, k));
    var grad = new Array(n).fill(0), reached = new Array(n).fill(false), now = [], edgeNow = -1, text;
    if (step > n) { grad[S.root] = 1; reached[S.root] = true; }
    for (var b = 0; b < step - n - 2; b++) {  // the edges before this step's
      var st = S.backward[b]; grad[st[1]] += st[2] * grad[st[0]]; reached[st[1]] = true;
    }
    if (step === 0) text = "Nothing computed yet: press next for the forward pass.";
    else if (step <= n) { now = [step - 1]; var ps = S.parents[step - 1].map(function (p) { return S.names[p]; });
      text = "forward: " + S.names[step - 1] + (ps.length ? " of " + ps.join(", ") : "") + " gives " + fmt(S.data[step - 1]); }
    else if (step === n + 1) { now = [S.root]; text = "backward starts: the gradient of the loss with respect to itself is 1."; }
    else {
      var s2 = S.backward[step - n - 2], before = grad[s2[1]];
      grad[s2[1]] += s2[2] * grad[s2[0]]; reached[s2[1]] = true; now = [s2[0], s2[1]]; edgeNow = S.edge[step - n - 2];
      text = "backward: grad of " + S.names[s2[1]] + " += (local derivative " + fmt(s2[2]) + ") × (grad of " +
             S.names[s2[0]] + " " + fmt(grad[s2[0]]) + "): " + fmt(before) + " → " + fmt(grad[s2[1]]);
    }
    if (step === total) text = "The whole graph after the forward and the backward pass: every value and every " +
                               "gradient. The last step was: " + text;
    for (var i = 0; i < n; i++) {
      var g = nodes[i], known = step > i, has = step === total || reached[i];
      g.classList.toggle("bp-hidden", !known); g.classList.toggle("bp-nograd", !has);
      g.classList.toggle("bp-now", now.indexOf(i) >= 0);
      g.querySelector(".bp-data").textContent = "data " + (known ? fmt(S.data[i]) : "?");
      g.setAttribute("data-grad", has ? String(grad[i]) : "");
      g.querySelector(".bp-grad").textContent = "grad " + (has ? fmt(grad[i]) : "?");
    }
    for (var e = 0; e < edges.length; e++) edges[e].classList.toggle("bp-now", e === edgeNow);
    box.querySelector(".bp-status").textContent = "step " + step + " of " + total;
    box.querySelector(".bp-explain").textContent = text;
  }
  var moves = {start: function () { return 0; }, prev: function () { return step - 1; },
               next: function () { return step + 1; }, end: function () { return total; }};
  box.querySelectorAll("button").forEach(function (b) {
    b.addEventListener("click", function () { show(moves[b.getAttribute("data-act")]()); });
  });
  show(total);
})();
"""
