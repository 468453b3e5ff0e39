"""Chapter 5, gradient checking: wrong answers and the phrase each check must say."""

_FD = """grad = np.zeros(x.shape, dtype=np.float64)
f_0 = f()
for i in np.ndindex(x.shape):
    old = x[i]
    x[i] = old + eps
    grad[i] = (f() - f_0) / eps
    x[i] = old
return grad"""

_ERRORS = """err_central = bk.rel_error(W2.grad, bk.numerical_gradient(f, W2.value, 1e-6))
err_forward = bk.rel_error(W2.grad, forward_difference_gradient(f, W2.value, 1e-6))
err_forward_best = bk.rel_error(W2.grad, forward_difference_gradient(f, W2.value, eps_fwd))
return err_central, err_forward, err_forward_best"""

_TDC = """model.zero_grad()
loss.forward(model.forward(X), y)
model.backward(loss.backward())
v = rng.normal(size=param.value.shape)
v /= np.linalg.norm(v)
slope = float(np.sum(param.grad * v))
saved = param.value.copy()
param.value += eps * v
L_plus = loss.forward(model.predict(X), y)
param.value[...] = saved - eps * v
L_minus = loss.forward(model.predict(X), y)
param.value[...] = saved
return slope, (L_plus - L_minus) / (2 * eps)"""

_MISSED = """missed = set()
for name, bug in planted_bugs.BUGS.items():
    m, l, X_1, y_1 = bug.build(np.random.default_rng(0))
    if bk.check_model(m, l, X_1[:1], y_1[:1]).passed:
        missed.add(name)
return missed"""

_FIXED = """self.W.grad += self.a_prev.T @ delta
self.b.grad += delta.sum(axis=0)
return delta @ self.W.value.T if input_grad else None"""

WRONG = {
    "ex-gradcheck-forward-diff": [
        (_FD.replace("x[i] = old + eps\n    grad[i] = (f() - f_0) / eps",
                     "x[i] = old + eps\n    f_plus = f()\n    x[i] = old - eps\n    grad[i] = (f_plus - f()) / (2 * eps)"),
         "is yours the forward difference, divided by eps?", 0),
        (_FD.replace("    x[i] = old\n", ""), "save x[i] before the step and put the saved value back", 0),
        ("grad = np.zeros(x.shape)\nf_0 = f()\nfor i in np.ndindex(x.shape):\n    x_step = x.copy()\n"
         "    x_step[i] += eps\n    grad[i] = (f() - f_0) / eps\nreturn grad", "(f reads x when it is called)", 0),
        (_FD.replace("f_0 = f()\n", "").replace("    x[i] = old + eps\n", "    x[i] = old + eps\n    f_0 = f()\n"),
         "f() must be evaluated at x and again after x[i] is moved", 0),
        (_FD.replace("dtype=np.float64", "dtype=int"), "has integer dtype", 0),
        (_FD.replace("return grad", "grad"), "did the function forget to `return`", 0),
        (_ERRORS.replace("W2.value, eps_fwd)", "W2.value, 1e-8)"), "err_forward_best: wrong value", 1),
        (_ERRORS.replace("W2.value, eps_fwd)", "W2.value, eps_ctr)"), "eps_fwd is the chapter's best forward step", 1),
        (_ERRORS.replace("return err_central, err_forward, err_forward_best",
                         "return err_forward, err_central, err_forward_best"), "err_central: wrong value", 1),
        (_ERRORS.replace("return err_central, err_forward, err_forward_best", "return err_forward_best"),
         "expected a tuple of 3 results (err_central, err_forward, err_forward_best)", 1),
    ],
    "ex-gradcheck-find-bug": [
        (_FIXED.replace("delta.sum(axis=0)", "delta.mean(axis=0)"), "FixedDense does not pass the gradient check"),
        (_FIXED.replace("+=", "="), "does not hold the sum of both gradients"),
        (_FIXED.replace("delta @ self.W.value.T", "delta @ self.W.value"),
         "the error comes from FixedDense.backward"),
        (_FIXED.replace("return delta @ self.W.value.T if input_grad else None", "pass"),
         "FixedDense.backward: got None instead of an ndarray"),
        (_FIXED.replace("delta.sum(axis=0)", "delta.sum()"), "by what factor do they differ?"),
    ],
    "ex-gradcheck-tensor-direction": [
        (_TDC.replace("v /= np.linalg.norm(v)\n", ""), "is v a unit vector"),
        (_TDC.replace("param.value[...] = saved - eps * v\nL_minus = loss.forward(model.predict(X), y)\n"
                      "param.value[...] = saved\nreturn slope, (L_plus - L_minus) / (2 * eps)",
                      "param.value[...] = saved\nL_0 = loss.forward(model.predict(X), y)\n"
                      "return slope, (L_plus - L_0) / eps"),
         "numeric is the central difference"),
        (_TDC.replace("param.value[...] = saved - eps * v", "param.value -= 2 * eps * v")
             .replace("param.value[...] = saved\n", "param.value += eps * v\n"),
         "adding and subtracting the step leaves round-off"),
        (_TDC.replace("model.zero_grad()\n", ""), "the gradients must start from zero"),
        (_TDC.replace("return slope, (L_plus - L_minus) / (2 * eps)", "return (L_plus - L_minus) / (2 * eps), slope"),
         "W1, buggy set-up, slope: wrong value"),
        (_TDC.replace("return slope, (L_plus - L_minus) / (2 * eps)",
                      "return {'slope': slope, 'numeric': (L_plus - L_minus) / (2 * eps)}"),
         "got a dict, expected a tuple of 2 results (slope, numeric)"),
        (_TDC.replace("v = rng.normal(size=param.value.shape)", "v = rng.normal(size=param.value.shape)\nrng.normal()"),
         "drew 2 random array(s)"),
    ],
    "ex-gradcheck-float32-step": [
        ("return float(np.finfo(dtype).eps ** (1 / 3))", "the best step makes the truncation and the round-off"),
        ("return float(np.sqrt(np.finfo(dtype).eps))", "wrong value"),
        ("return float((3 * np.finfo(np.float64).eps) ** (1 / 3))", "best_central_step on input 0 (float32)"),
        ("return float(np.finfo(dtype).eps)", "u = np.finfo(dtype).eps for the given dtype"),
        ("return np.array([(3 * np.finfo(dtype).eps) ** (1 / 3)])", "expected a single number"),
    ],
    "ex-gradcheck-one-example": [
        (_MISSED.replace("missed = set()", "missed = []").replace("missed.add(name)", "missed.append(name)"),
         "got a list, expected a set of names"),
        (_MISSED.replace("X_1[:1], y_1[:1]", "X_1, y_1"), "misses names that should be there"),
        (_MISSED.replace(".passed:", ".passed is False:"), "the check of these bugs fails on one example"),
        (_MISSED.replace("bug.build(np.random.default_rng(0))", "bug.build(np.random.default_rng(0), buggy=False)"),
         "which should not be there"),
        (_MISSED.replace("missed.add(name)", "missed.add(bug)"), "the names are the keys of planted_bugs.BUGS"),
    ],
}
