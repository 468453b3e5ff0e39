"""Chapter 1, the chain rule: wrong answers and the phrase each check must say."""

WRONG = {
    "ex-chain-tanh": [
        ("t = np.tanh(z)\nreturn 1 - t", "check your expression at z = 0"),
        ("t = np.tanh(z)\nreturn t * (1 - t)", "wrong values"),
        ("s = bk.sigmoid(2 * z)\nreturn 2 * s * (1 - s)", "two factors 2"),
        ("s = bk.sigmoid(2 * z)\nreturn 8 * s * (1 - s)", "each counted once"),
        ("t = np.tanh(z)\n1 - t * t", "did the function forget to `return`"),
        ("np.tanh(z, out=z)\nreturn 1 - z * z", "changed its argument 0 (z) in place"),
        ("return [1 - np.tanh(v) ** 2 for v in z]", "got a Python list, expected a numpy array"),
    ],
    "ex-chain-softplus": [
        ("return np.log(1 + np.exp(z))", "raised FloatingPointError: overflow", 0),
        ("return np.logaddexp(1, z)", "log 2 at z = 0", 0),
        ("return np.maximum(z, 0.0)", "softplus(z) = log(1 + e^z)", 0),
        ("return np.exp(z) / (1 + np.exp(z))", "bk.sigmoid never forms e^z", 1),
        ("return bk.activations.sigmoid_prime(z)", "equal 1/2 at z = 0", 1),
        ("return bk.sigmoid(-z)", "go to 0 for very negative z", 1),
        ("return np.log1p(np.exp(-np.abs(z)))", "close to z for large z", 0),
    ],
    "ex-chain-double-sigmoid": [
        ("return bk.activations.sigmoid_prime(a)", "without applying the sigmoid to a again"),
        ("return a * (1 + a)", "wrong values"),
        ("a *= 1 - a\nreturn a", "changed its argument 0 (a) in place"),
        ("return (a * (1 - a)).tolist()", "got a Python list"),
    ],
    "ex-chain-neuron-bce": [
        ("a = bk.sigmoid(X * w + b)\ndelta = a - y\nreturn float(np.sum(delta * X)), float(np.sum(delta))",
         "N = 16 times too large: check the 1/N factor"),
        ("a = bk.sigmoid(X * w + b)\ndelta = (a - y) * a * (1 - a)\nreturn float(np.mean(delta * X)), float(np.mean(delta))",
         "sigma' cancels"),
        ("a = bk.sigmoid(X * w + b)\ndelta = y - a\nreturn float(np.mean(delta * X)), float(np.mean(delta))",
         "wrong sign"),
        ("a = bk.sigmoid(X * w + b)\nreturn float(np.mean((a - y) * X))", "expected a tuple of 2 results (dw, db)"),
        ("a = bk.sigmoid(X * w + b)\ndelta = a - y\nreturn delta * X, delta", "expected a single number"),
    ],
}
