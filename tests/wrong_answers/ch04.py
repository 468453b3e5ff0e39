"""Chapter 4, hidden-layer deltas: wrong answers and the phrase each check must say."""

_TRAIN = """net = bk.MLP([2, 4, 1], "sigmoid", output_activation, rng=np.random.default_rng({seed}))
threshold = {threshold}
for epoch in range(max_epochs):
    out = net.forward(X_xor)
    if np.all((out > threshold) == (y_xor > 0.5)):
        return {found}
    loss.forward(out, y_xor)
    net.backward(loss.backward())
    for p in net.parameters():
        p.value -= lr * p.grad
    {reset}
return {not_found}"""


def _train(seed=1, threshold='0.0 if output_activation == "identity" else 0.5', found="epoch",
           reset="net.zero_grad()", not_found="None"):
    return _TRAIN.format(seed=seed, threshold=threshold, found=found, reset=reset, not_found=not_found)


WRONG = {
    "ex-hidden-tanh-delta": [
        ("t = np.tanh(z)\nreturn (delta_next @ W_next) * (1 - t * t)", "the sum over the next layer's units"),
        ("return (delta_next @ W_next.T) * (1 - np.tanh(z))", "tanh'(z) = 1 - tanh(z)^2"),
        ("return delta_next @ W_next.T", "wrong values"),
        ("t = np.tanh(z)\nreturn (delta_next @ W_next.T) * (1 - t * t) / len(z)",
         "the 1/N of the batch mean is already inside delta_next"),
        ("t = np.tanh(z)\nreturn ((delta_next @ W_next.T) * (1 - t * t)).T", "did you forget .T"),
    ],
    "ex-hidden-off-by-one": [
        ("for i in range(L - 2, 0, -1):\n    delta = (delta @ W[i + 1].T) * f_prime(z[i])\n    grad_W[i] = a[i].T @ delta",
         "dL/dW^(1) is still zero: the loop never reaches this layer"),
        ("for i in range(L - 1, -1, -1):\n    delta = (delta @ W[i + 1].T) * f_prime(z[i])\n    grad_W[i] = a[i].T @ delta",
         "raised IndexError"),
        ("for i in range(L - 2, -1, -1):\n    delta = (delta @ W[i].T) * f_prime(z[i])\n    grad_W[i] = a[i].T @ delta",
         "W[i] is W^(i+1)"),
        ("for i in range(L - 2, -1, -1):\n    delta = (delta @ W[i + 1].T) * f_prime(z[i])\n    grad_W[i] = a[i + 1].T @ delta",
         "a[i] is a^(i), so W and a have L entries"),
        ("for i in range(L - 2, -1, -1):\n    delta = delta @ W[i + 1].T\n    grad_W[i] = a[i].T @ delta",
         "the delta of layer i + 1 uses W[i + 1] and z[i]"),
    ],
    "ex-hidden-shapes": [
        ('n0, n1, n2 = 784, 256, 10\nreturn {"X": (N, n0), "W1": (n1, n0), "b1": (n1,), "z1": (N, n1), "a1": (N, n1),\n'
         '        "W2": (n1, n2), "b2": (n2,), "z2": (N, n2), "delta2": (N, n2), "grad_a1": (N, n1),\n'
         '        "delta1": (N, n1), "grad_W1": (n0, n1), "grad_b1": (n1,), "grad_W2": (n1, n2),\n'
         '        "grad_b2": (n2,), "params": n0 * n1 + n1 + n1 * n2 + n2}',
         "entry 'W1': (256, 784) looks transposed"),
        ('n0, n1, n2 = 784, 256, 10\nreturn {"X": [N, n0], "W1": [n0, n1], "b1": [n1], "z1": [N, n1], "a1": [N, n1],\n'
         '        "W2": [n1, n2], "b2": [n2], "z2": [N, n2], "delta2": [N, n2], "grad_a1": [N, n1],\n'
         '        "delta1": [N, n1], "grad_W1": [n0, n1], "grad_b1": [n1], "grad_W2": [n1, n2],\n'
         '        "grad_b2": [n2], "params": n0 * n1 + n1 + n1 * n2 + n2}',
         "is a list; write a shape as a tuple"),
        ('n0, n1, n2 = 784, 256, 10\nreturn {"X": (N, n0), "W1": (n0, n1), "b1": (n1,), "z1": (N, n1), "a1": (N, n1),\n'
         '        "W2": (n1, n2), "b2": (n2,), "z2": (N, n2), "delta2": (N, n2),\n'
         '        "delta1": (N, n1), "grad_W1": (n0, n1), "grad_b1": (n1,), "grad_W2": (n1, n2),\n'
         '        "grad_b2": (n2,), "params": n0 * n1 + n1 + n1 * n2 + n2}',
         "has no entry 'grad_a1'"),
        ('n0, n1, n2 = 784, 256, 10\nreturn {"X": (N, n0), "W1": (n0, n1), "b1": (n1,), "z1": (N, n1), "a1": (N, n1),\n'
         '        "W2": (n1, n2), "b2": (n2,), "z2": (N, n2), "delta2": (N, n2), "grad_a1": (N, n1),\n'
         '        "delta1": (N, n1), "grad_W1": (n0, n1), "grad_b1": (n1,), "grad_W2": (n1, n2),\n'
         '        "grad_b2": (n2,), "params": n0 * n1 + n1 * n2}',
         "count every entry of W1, b1, W2 and b2"),
        ('n0, n1, n2 = 784, 256, 10\nreturn {"X": (N, n0), "W1": (n0, n1), "b1": (1, n1), "z1": (N, n1), "a1": (N, n1),\n'
         '        "W2": (n1, n2), "b2": (1, n2), "z2": (N, n2), "delta2": (N, n2), "grad_a1": (N, n1),\n'
         '        "delta1": (N, n1), "grad_W1": (n0, n1), "grad_b1": (1, n1), "grad_W2": (n1, n2),\n'
         '        "grad_b2": (1, n2), "params": n0 * n1 + n1 + n1 * n2 + n2}',
         "entry 'b1': (1, 256) has 2 axes, expected 1"),
        ('n0, n1, n2 = 784, 256, 10\nreturn {"X": (N, n0), "W1": (n0, n1), "b1": (n1,), "z1": (N, n1), "a1": (N, n1),\n'
         '        "W2": (n1, n2), "b2": (n2,), "z2": (N, n2), "delta2": (N, n2), "grad_a1": (N, n1),\n'
         '        "delta1": (N, n1), "grad_W1": (N, n1), "grad_b1": (N, n1), "grad_W2": (N, n2),\n'
         '        "grad_b2": (N, n2), "params": n0 * n1 + n1 + n1 * n2 + n2}',
         "a gradient has the shape of the array it differentiates"),
    ],
    "ex-hidden-sigmoid-bound": [
        ("return 0.25 ** len(Ws)", "its spectral norm ||W||_2"),
        ("return 1e-3", "sigmoid_shrink_bound on test case 0 (1 matrix): wrong value"),
        ("return float(np.prod([np.linalg.norm(W_k) / 4 for W_k in Ws]))", "the largest factor by which it stretches"),
        ("return float(sum(np.linalg.norm(W_k, 2) / 4 for W_k in Ws))", "on test case 1"),
        ("return float(np.prod([np.linalg.norm(W_k, 2) for W_k in Ws]))", "wrong value"),
        ("return [np.linalg.norm(W_k, 2) / 4 for W_k in Ws]", "got a list, expected a number"),
        ("for W_k in Ws:\n    W_k /= 4\nreturn float(np.prod([np.linalg.norm(W_k, 2) for W_k in Ws]))",
         "changed its argument 0 (Ws) in place"),
    ],
    "ex-hidden-mse-output": [
        ("return (bk.sigmoid(z) - y) / len(z)", "delta = dL/dy_hat times sigma'(z)", 0),
        ("return (bk.sigmoid(z) - y) * bk.activations.sigmoid_prime(z)", "N = 4 times too large", 0),
        ("a = bk.sigmoid(z)\nreturn (a - y) * a / len(z)", "wrong values", 0),
        (_train(reset="pass"), "the gradients are reset to zero after every step", 1),
        (_train(seed=0), "the network and its seed", 1),
        ('return {"identity": 304, "sigmoid": 1201}[output_activation]',
         "epochs_to_solve_xor('identity', bk.BCEWithLogits(), lr=1.0): returned 304", 1),
        (_train(threshold="0.5"), "returned 320, the wrong number of steps", 1),
        (_train(not_found="max_epochs"), "expected None", 1),
        (_train(found="epoch + 1"), "off by one", 1),
        (_train(threshold="0.5 if output_activation == 'identity' else 0.0"), "and the decision (class 1 above 0 for a logit", 1),
        (_train().replace("loss.forward(out, y_xor)\n    net.backward(loss.backward())",
                          "bce = bk.BCEWithLogits()\n    bce.forward(out, y_xor)\n    net.backward(bce.backward())"),
         "the loss and the rate lr you are given", 1),
    ],
}

SECRETS = {
    "ex-hidden-shapes": ["203530", "203,530"],
    "ex-hidden-mse-output": ["1201", "607", "602"],
}
