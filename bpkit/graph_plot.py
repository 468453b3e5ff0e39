"""Draw a ``bpkit.engine`` computation graph with matplotlib alone (no graphviz).

Layout: nodes sit in columns (layers). The output is in the last column and every other
node one column before its earliest consumer, so each input appears right next to the
operation that uses it. Inside a column, nodes are sorted by the mean position of their
consumers and of their parents, in alternate sweeps (the barycentre heuristic), which
keeps most arrows short and uncrossed. Columns run left to right (``"LR"``) or top to
bottom (``"TB"``, narrower: better for a long graph on a page).
"""

from .engine import topological_order

_LEAF_COLOR, _OP_COLOR, _ROOT_COLOR = "#dbe9f6", "#f4f4f4", "#fde2c8"


def _columns(order):
    """Column of each node, counted from the output: one more than its earliest consumer's."""
    col = {order[-1]: 0}
    for node in reversed(order):
        for parent in node.parents:
            col[parent] = max(col.get(parent, 0), col[node] + 1)
    return col


def _layout(order, sweeps=4):
    """``{node: column}``, ``{node: rank in its column}``, number of columns, largest column.

    Inside a column, nodes are sorted by the mean rank of their consumers (sweeping from
    the output) or of their parents (sweeping towards it), alternately.
    """
    col = _columns(order)
    n_cols = max(col.values()) + 1
    by_col = [[] for _ in range(n_cols)]
    consumers = {node: [] for node in order}
    for node in order:                                  # creation order breaks ties
        by_col[col[node]].append(node)
        for parent in dict.fromkeys(node.parents):
            consumers[parent].append(node)
    rank = {}

    def mean_rank(neighbours, default):
        known = [rank[m] for m in neighbours if m in rank]
        return sum(known) / len(known) if known else default

    for sweep in range(sweeps):
        leftwards = sweep % 2 == 0
        for c in (range(n_cols) if leftwards else range(n_cols - 1, -1, -1)):
            nbrs = consumers if leftwards else {n: dict.fromkeys(n.parents) for n in by_col[c]}
            by_col[c].sort(key=lambda n: mean_rank(nbrs[n], rank.get(n, 0.0)))
            for i, node in enumerate(by_col[c]):
                rank[node] = i - (len(by_col[c]) - 1) / 2.0
    return col, rank, n_cols, max(len(nodes) for nodes in by_col)


def _box_text(node):
    name = node.label or ("const" if not node.parents else "")
    op = node.op if node.op else ""
    head = f"{name} = {op}" if name and op else (name or op)
    return f"{head}\ndata {node.data:.4g}\ngrad {node.grad:.4g}"


def _draw_boxes(ax, order, pos, root, fontsize):
    """One text box per node, coloured by kind; returns ``{node: Text}``."""
    boxes = {}
    for node in order:
        color = _ROOT_COLOR if node is root else (_OP_COLOR if node.parents else _LEAF_COLOR)
        style = dict(boxstyle="round,pad=0.3", facecolor=color, edgecolor="0.4", linewidth=0.6)
        boxes[node] = ax.text(*pos[node], _box_text(node), ha="center", va="center",
                              fontsize=fontsize, family="monospace", zorder=3, bbox=style)
    return boxes


def _draw_arrows(ax, order, pos, col, boxes, lr):
    """One arrow per edge, box edge to box edge; edges that skip columns bend outwards."""
    src, dst = ((1.0, 0.5), (0.0, 0.5)) if lr else ((0.5, 0.0), (0.5, 1.0))
    across = 1 if lr else 0                             # the coordinate inside a column
    for node in order:
        for parent in dict.fromkeys(node.parents):
            outward = 0.3 if pos[parent][across] < pos[node][across] else -0.3
            bend = 0.0 if col[parent] - col[node] == 1 else outward
            ax.annotate("", xy=dst, xycoords=boxes[node], xytext=src, textcoords=boxes[parent],
                        zorder=1, arrowprops=dict(arrowstyle="-|>", color="0.35", linewidth=0.7,
                                                  shrinkA=4, shrinkB=4, mutation_scale=8,
                                                  connectionstyle=f"arc3,rad={bend}"))


def draw_graph(root, ax=None, direction="LR", fontsize=8):
    r"""Draw the graph that computes ``root``: one box per node, one arrow per edge.

    Each box shows the node's label and operation, its value (``data``) and, after
    ``root.backward()``, its gradient $\partial\,\text{root}/\partial\,\text{node}$
    (``grad``), to 4 significant digits. Leaves (inputs, parameters, constants) are
    blue, the output is orange.

    Args:
        root: the ``Value`` whose graph is drawn (usually the loss).
        ax: a matplotlib ``Axes``; by default a new figure sized to the graph.
        direction: ``"LR"`` (inputs left, output right) or ``"TB"`` (inputs at the top).
        fontsize: text size in the boxes.
    Returns:
        the ``Axes``.
    """
    import matplotlib.pyplot as plt                     # here: bpkit itself needs only numpy

    if direction not in ("LR", "TB"):
        raise ValueError(f"draw_graph direction must be 'LR' or 'TB', got {direction!r}")
    order = topological_order(root)
    col, rank, n_cols, height = _layout(order)
    lr = direction == "LR"
    pos = {n: (n_cols - 1 - col[n], -rank[n]) if lr else (rank[n], col[n]) for n in order}
    if ax is None:
        w, h = (1.45 * n_cols, 0.62 * height + 0.3) if lr else (1.2 * height + 0.2,
                                                                0.7 * n_cols + 0.1)
        fig, ax = plt.subplots(figsize=(max(3.0, w), max(1.2, h)))
        fig.subplots_adjust(left=0.0, right=1.0, bottom=0.0, top=1.0)
    _draw_arrows(ax, order, pos, col, _draw_boxes(ax, order, pos, root, fontsize), lr)
    xs, ys = zip(*pos.values())
    ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
    ax.set_ylim(min(ys) - 0.5, max(ys) + 0.5)
    ax.set_axis_off()
    return ax
