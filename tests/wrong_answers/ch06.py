"""Chapter 6, optimizers: wrong answers and the phrase each check must say."""

_ADAM = """m = beta1 * m + (1 - beta1) * g
v = beta2 * v + (1 - beta2) * g * g
m_hat = m / (1 - beta1**t)
v_hat = v / (1 - beta2**t)
return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v"""

_NESTEROV = """w, v = np.array(w0, dtype=np.float64), np.zeros(len(w0))
ws, vs = [w.copy()], [v.copy()]
for _ in range(steps):
    v = beta * v + grad(w - lr * beta * v)
    w = w - lr * v
    ws.append(w.copy())
    vs.append(v.copy())
return np.array(ws), np.array(vs)"""

_FROZEN = """before = [p.value.copy() for p in model.parameters()]
loss.forward(model.forward(X), y)
model.backward(loss.backward())
optimizer.step()
return [p.name for p, old in zip(model.parameters(), before) if np.array_equal(p.value, old)]"""

WRONG = {
    "ex-optim-adam-step": [
        ("m *= beta1\nm += (1 - beta1) * g\nv *= beta2\nv += (1 - beta2) * g * g\n"
         "return w - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps), m, v",
         "changed its argument 2 (m) in place"),
        (_ADAM.replace("m / (1 - beta1**t)", "m").replace("v / (1 - beta2**t)", "v"),
         "the bias corrections with the step number t"),
        (_ADAM.replace("np.sqrt(v_hat) + eps", "np.sqrt(v_hat + eps)"), "eps added to sqrt(v_hat)"),
        (_ADAM.replace("beta1**t", "beta1**(t - 1)").replace("beta2**t", "beta2**(t - 1)"),
         "1 - beta^t are never 0"),
        (_ADAM.replace("return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v",
                       "return w - lr * m_hat / (np.sqrt(v_hat) + eps), v, m"),
         "adam_step on input 0 (shape (3,), shape (3,), shape (3,), shape (3,), 1, 0.1), m: wrong values"),
        (_ADAM.replace("(1 - beta2) * g * g", "(1 - beta2) * g"), "the square root of a negative number"),
        (_ADAM.replace("return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v",
                       "w -= lr * m_hat / (np.sqrt(v_hat) + eps)\nreturn w, m, v"),
         "changed its argument 0 (w) in place"),
    ],
    "ex-optim-momentum-limits": [
        ("return lr * g", "the velocity is a geometric series in beta; what does it tend to?"),
        ("return lr * g / (1 - beta) ** 2", "a constant times the right step"),
        ("return -lr * g / (1 - beta)", "for a positive rate it points along g"),
        ("return lr * g * beta / (1 - beta)", "wrong values"),
        ("return list(lr * g / (1 - beta))", "got a Python list, expected a numpy array"),
        ("g *= lr / (1 - beta)\nreturn g", "changed its argument 2 (g) in place"),
    ],
    "ex-optim-nesterov-lookahead": [
        (_NESTEROV.replace("grad(w - lr * beta * v)", "grad(w)"), "with the velocity before its update inside grad"),
        (_NESTEROV.replace("v = beta * v + grad(w - lr * beta * v)\n    w = w - lr * v",
                           "g = grad(w)\n    v = beta * v + g\n    w = w - lr * (g + beta * v)"),
         "iterates ws: wrong values"),
        (_NESTEROV.replace("return np.array(ws), np.array(vs)", "return np.array(ws)"),
         "got an ndarray, expected a tuple of 2 results (ws, vs)"),
        (_NESTEROV.replace("ws, vs = [w.copy()], [v.copy()]", "ws, vs = [], []"),
         "the starting point w0 (with v = 0) first"),
        (_NESTEROV.replace("    w = w - lr * v\n    ws.append(w.copy())", "    w -= lr * v\n    ws.append(w)"),
         "store copies of w and v after every step"),
        (_NESTEROV.replace("grad(w - lr * beta * v)", "grad(w - lr * v)"), "velocities vs: wrong values"),
        (_NESTEROV.replace("w = w - lr * v", "w = w + lr * v"), "the iterates ran off to infinity"),
    ],
    "ex-optim-frozen-layers": [
        (_FROZEN.replace("p.value.copy()", "p.value"), "compare each value with a copy taken before the step"),
        (_FROZEN.replace("return [p.name", "return {p.name").replace("np.array_equal(p.value, old)]",
                                                                    "np.array_equal(p.value, old)}"),
         "got a set, expected a list of names"),
        (_FROZEN.replace("if np.array_equal(p.value, old)", "if not np.array_equal(p.value, old)"),
         "which should not be there"),
        (_FROZEN.replace("model.backward(loss.backward())\n", ""), "does your function run forward and backward"),
        (_FROZEN.replace("optimizer.step()\n", "optimizer.step()\noptimizer.step()\n"),
         "called optimizer.step() 2 times, expected once"),
        ("loss.forward(model.forward(X), y)\nmodel.backward(loss.backward())\noptimizer.step()\n"
         "return [p.name for p in model.parameters() if not p.grad.any()]", "misses names that should be there"),
        (_FROZEN.replace("return [p.name for p, old", "return [p for p, old"), "a parameter's name is p.name"),
    ],
    "ex-optim-update-ratio": [
        ("return float(abs(np.linalg.norm(W_after) / np.linalg.norm(W_before) - 1))",
         "compares the lengths of W_after and W_before"),
        ("return float(np.linalg.norm(W_after - W_before) / np.linalg.norm(W_after))",
         "divides by the norm of W_after"),
        ("return float(np.mean(np.abs(W_after - W_before) / np.abs(W_before)))",
         "averages entry-by-entry ratios"),
        ("return [float(np.linalg.norm(W_after - W_before) / np.linalg.norm(W_before))]",
         "returned a list: return a Python float"),
        ("return float(np.linalg.norm(W_after - W_before))", "gives a wrong value"),
        ("W_after -= W_before\nreturn float(np.linalg.norm(W_after) / np.linalg.norm(W_before))",
         "changed W_before or W_after in place"),
        ("return float(np.linalg.norm(W_after - W_before) / np.linalg.norm(W_before) ** 2)",
         "gives a wrong value"),
    ],
}
