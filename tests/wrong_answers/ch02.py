"""Chapter 2, the computation graph: wrong answers and the phrase each check must say."""

WRONG = {
    "ex-graph-sin": [
        ("return Value(math.sin(v.data), parents=(v,), local_grads=(-math.cos(v.data),), op='sin')",
         "the local derivative d sin(a)/da"),
        ("return Value(math.cos(v.data), parents=(v,), local_grads=(-math.sin(v.data),), op='sin')",
         "sin(a).data: wrong value"),
        ("return Value(math.sin(v.data), op='sin')", "its parents are not (a,)"),
        ("return math.sin(v.data)", "got a float, expected a Value"),
        ("return Value(math.sin(v.data), parents=(v,), local_grads=(math.cos(v.data) * v.grad,), op='sin')",
         "dg/dx: wrong value"),
    ],
    "ex-graph-overwrite": [
        ("self.grad = other.data * out.grad\nother.grad = self.data * out.grad",
         "or does the second one replace the first?", 1),
        ("self.grad = out.grad\nother.grad = out.grad", "gradient of x + x: wrong values", 0),
        ("self.grad += other.data\nother.grad += self.data", "gradient of (x * y) * (x + y)", 1),
        ("self.grad += self.data * out.grad\nother.grad += other.data * out.grad",
         "gradient of x * y + x: wrong values", 1),
        ("self.grad += out.grad\nother.grad += out.grad", "local derivative times out.grad", 1),
    ],
    "ex-graph-jacobian": [
        # no reset between the backward passes: the second row keeps the first one's gradients
        ("J = np.zeros((len(outputs), len(inputs)))\nfor i, out in enumerate(outputs):\n"
         "    out.backward()\n    J[i] = [x.grad for x in inputs]\nreturn J, len(outputs)",
         "out.zero_grad() resets only the nodes out depends on", 0),
        ("J = np.zeros((len(outputs), len(inputs)))\nfor i, out in enumerate(outputs):\n"
         "    out.zero_grad()\n    out.backward()\n    J[i] = [x.grad for x in inputs]\nreturn J, len(outputs)",
         "every input's gradient is zero before each backward pass", 0),
        # a self-reported count: the Jacobian by forward sweeps, the count of a reverse mode
        ("J = np.zeros((len(outputs), len(inputs)))\nfor j, x in enumerate(inputs):\n"
         "    J[:, j] = forward_sweep(outputs, x)\nreturn J, len(outputs)",
         "returned 2 as its number of sweeps, but ran 0 backward passes", 0),
        # one backward pass per entry, reported as one per row
        ("J = np.zeros((len(outputs), len(inputs)))\nfor i, out in enumerate(outputs):\n"
         "    for j, x in enumerate(inputs):\n        for leaf in inputs:\n            leaf.grad = 0.0\n"
         "        out.backward()\n        J[i, j] = x.grad\nreturn J, len(outputs)",
         "returned 2 as its number of sweeps, but ran 6 backward passes", 0),
        # one forward_mode per entry, honestly counted
        ("J = np.zeros((len(outputs), len(inputs)))\nfor j, x in enumerate(inputs):\n"
         "    J[:, j] = [forward_mode(out, x)[0] for out in outputs]\nreturn J, len(outputs) * len(inputs)",
         "ran 6 forward-mode sweeps, not the number the mode needs", 1),
        ("J = np.zeros((len(inputs), len(outputs)))\nfor j, x in enumerate(inputs):\n"
         "    J[j] = forward_sweep(outputs, x)\nreturn J, len(inputs)",
         "did you forget .T", 1),
        ("J = np.zeros((len(outputs), len(inputs)))\nfor j, x in enumerate(inputs):\n"
         "    J[:, j] = forward_sweep(outputs, x)\nreturn J", "expected a tuple of 2 results (J, sweeps)", 1),
    ],
    "ex-graph-power": [
        ("return a ** b.data", "it must enter the result as a Value"),
        ("return (a.log() * b.data).exp()", "no gradient reached this input"),
        ("return (a * b.log()).exp()", "a**b: wrong value"),
        ("return b * a.log()", "a**b: wrong value"),
        ("return Value(a.data ** b.data)", "d(a**b)/da against central differences"),
        ("return a ** b", "build the power from operations the engine differentiates"),
        ("return math.exp(b.data * math.log(a.data))", "got a float, expected a Value"),
    ],
}
