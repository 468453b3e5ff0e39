"""Chapter 9, what comes next: wrong answers and the phrase each check must say."""

_ACCUMULATE = """model.zero_grad()
n_total = sum(len(X_j) for X_j, _ in batches)
for X_j, y_j in batches:
    loss.forward(model.forward(X_j), y_j)
    model.backward(loss.backward() * (len(X_j) / n_total))"""

_WEIGHT = "loss.backward() * (len(X_j) / n_total)"

_CONV = """grad_x = np.zeros((delta.shape[0], T))
for k in range(len(w)):
    grad_x[:, k:k + delta.shape[1]] += delta * w[k]
return grad_x"""

_CONV_BY_INDEX = """N, T_out = delta.shape
grad_x = np.zeros((N, T))
for i in range(T):
    for k in range(len(w)):
        if 0 <= i - k < T_out - 1:
            grad_x[:, i] += delta[:, i - k] * w[k]
return grad_x"""

WRONG = {
    "ex-next-dual-tanh": [
        ("t = np.tanh(u.val)\nreturn Dual(t, (1 - t) * u.dot)", "the tanh is squared, 1 - tanh(a) is not the slope"),
        ("return Dual(np.tanh(u.val), (1 - np.tanh(u.val)) ** 2 * u.dot)",
         "squares the tanh alone, not the difference"),
        ("t = np.tanh(u.val)\nreturn Dual(t, 1 - t * t)", "tanh'(a) times the tangent b = u.dot of the input"),
        ("return np.tanh(u.val)", "got a float64, expected a Dual"),
        ("t = np.tanh(u.val)\nreturn t, (1 - t * t) * u.dot", "got a tuple, expected a Dual"),
        ("t = np.tanh(u.val)\nreturn Dual(t, u.dot)", "the tangent b = u.dot passed through unchanged"),
        ("return Dual(np.tanh(u.val), 0.0)", "the tangent is 0, as for a constant"),
        ("t = np.tanh(u.val)\nreturn Dual(t, (1 - t * t) * u.val)", "tanh'(a) is multiplied by the value a = u.val"),
        ("return Dual(np.tanh(u.val), (1 - np.tanh(u.dot) ** 2) * u.dot)", "tanh' is taken at the tangent b"),
        ("t = np.tanh(u.val)\nreturn Dual(t, (t * t - 1) * u.dot)", "tanh is increasing"),
        ("t = np.tanh(u.val + u.dot)\nreturn Dual(t, (1 - t * t) * u.dot)", "the tangent b does not enter it"),
        ("u.val, u.dot = np.tanh(u.val), (1 - np.tanh(u.val) ** 2) * u.dot\nreturn u",
         "changed its argument u in place"),
        ("import math\nt = math.tanh(u.val)\nreturn Dual(t, (1 - t * t) * u.dot)",
         "use np.tanh, which takes numbers and arrays"),
    ],
    "ex-next-accum-unequal": [
        (_ACCUMULATE.replace(_WEIGHT, "loss.backward() / len(batches)"),
         "every minibatch has the weight 1/k, so the short last one counts as much as a full one"),
        (_ACCUMULATE.replace("model.zero_grad()\n", ""),
         "backward adds to .grad, which still held an earlier gradient"),
        (_ACCUMULATE.replace(_WEIGHT, "loss.backward() / n_total"), "divided twice"),
        (_ACCUMULATE.replace(_WEIGHT, "loss.backward()"), "the minibatch gradients are added without weights"),
        (_ACCUMULATE.replace("model.zero_grad()\n", "").replace("    loss.forward", "    model.zero_grad()\n    loss.forward"),
         "only the last minibatch is left in .grad"),
        (_ACCUMULATE.replace("model.zero_grad()\n", "").replace(_WEIGHT, "loss.backward() / len(batches)"),
         "weight 1/k, so the short last one counts as much as a full one: weight minibatch j by |B_j|/|B| "
         "(eq. next-accumulate)\n  hint: backward adds to .grad"),
        (_ACCUMULATE.replace("n_total = sum(len(X_j) for X_j, _ in batches)",
                             "n_total = len(batches) * len(batches[0][0])"),
         "the weights |B_j|/|B| add up to 1"),
        ("model.zero_grad()", "the gradients are all zero: run forward and backward on every minibatch"),
        (_ACCUMULATE.replace("loss.forward(model.forward(X_j), y_j)", "X_j -= X_j.mean(axis=0)\n    loss.forward(model.forward(X_j), y_j)"),
         "changed its argument 2 (batches) in place\n  hint: the minibatches are the data"),
    ],
    "ex-next-hvp-quadratic": [
        ("return B @ v", "B v keeps only the terms where theta_k is theta_i"),
        ("return B.T @ v", "B^T v keeps only the terms where theta_k is theta_j"),
        ("return (B + B.T) @ v", "the 1/2 of L = 1/2 theta^T B theta is lost"),
        ("return 0.5 * B @ v", "the 1/2 is right, but one term is missing"),
        ("return 0.5 * (B + B.T) * v", "multiply the matrix by v with @ (not *)"),
        ("B += B.T\nreturn 0.5 * B @ v", "changed its argument 0 (B) in place"),
        ("return 0.5 * (B @ B.T) @ v", "differentiate sum_ij theta_i B_ij theta_j by theta_k (two terms)"),
        ("return torch.tensor(0.5 * (B + B.T) @ v)", "convert a tensor with .detach().numpy()"),
    ],
    "ex-next-conv-input": [
        (_CONV.replace("w[k]", "w[len(w) - 1 - k]"), "the kernel runs the wrong way"),
        ("return np.array([np.correlate(d, w, mode='full') for d in delta])", "the kernel runs the wrong way"),
        (_CONV.replace("range(len(w))", "range(len(w) - 1)"), "an end of a range is missing"),
        (_CONV_BY_INDEX, "an end of a range is missing"),
        (_CONV.replace("+= delta * w[k]", "= delta * w[k]"), "their contributions add up; use += where = overwrites"),
        (_CONV.replace("return grad_x", "return grad_x / len(delta)"), "the input gradient adds no factor of its own"),
        (_CONV.replace("np.zeros((delta.shape[0], T))", "np.zeros_like(delta)"), "is an index or a slice out of range"),
        ("return delta * w.sum()", "dL/dx has the shape of x, (N, T)"),
        (_CONV.replace("+= delta * w[k]", "+= delta * w[k] * (k + 1)"), "add delta_{n,t} w_k into position t + k"),
    ],
}
