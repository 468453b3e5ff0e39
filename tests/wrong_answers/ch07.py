"""Chapter 7, PyTorch side by side: wrong answers and the phrase each check must say."""

_TO_LINEAR = """linear = torch.nn.Linear(dense.n_in, dense.n_out, dtype=torch.float64)
with torch.no_grad():
    linear.weight.copy_(torch.tensor(dense.W.value.T))
    linear.bias.copy_(torch.tensor(dense.b.value))
return linear"""

_TO_DENSE = """n_out, n_in = linear.weight.shape
dense = bk.Dense(n_in, n_out, rng=np.random.default_rng(0))
dense.W.value[...] = linear.weight.detach().numpy().T
dense.b.value[...] = linear.bias.detach().numpy()
return dense"""

_ADAM = """beta1, beta2 = betas
w, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
for t, g in enumerate(grads, start=1):
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    w = w - lr / (1 - beta1**t) * m / (np.sqrt(v) / np.sqrt(1 - beta2**t) + eps)
return w"""

WRONG = {
    "ex-torch-port": [
        (_TO_LINEAR.replace("dense.W.value.T", "dense.W.value"), "stores weight = W^T, of shape (n_out, n_in)", 0),
        ("linear = torch.nn.Linear(dense.n_in, dense.n_out, dtype=torch.float64)\n"
         "linear.weight = torch.nn.Parameter(torch.from_numpy(dense.W.value.T))\n"
         "linear.bias = torch.nn.Parameter(torch.from_numpy(dense.b.value))\nreturn linear",
         "the nn.Linear shares its numbers with the Dense", 0),
        (_TO_DENSE.replace("linear.weight.detach().numpy().T", "linear.weight.detach().numpy()"),
         "linear_to_dense: raised ValueError", 1),
        (_TO_DENSE.replace("dense.W.value[...] = linear.weight.detach().numpy().T",
                           "dense.W.value = linear.weight.detach().numpy().T")
                  .replace("dense.b.value[...] = linear.bias.detach().numpy()",
                           "dense.b.value = linear.bias.detach().numpy()"),
         "linear_to_dense: the Dense shares its numbers with the nn.Linear", 1),
        (_TO_LINEAR.replace("    linear.bias.copy_(torch.tensor(dense.b.value))\n", ""), "are both copied?", 0),
        (_TO_LINEAR.replace(", dtype=torch.float64", ""), "expected torch.float64", 0),
        (_TO_LINEAR.replace("return linear", "linear"), "got None instead of a Linear", 0),
    ],
    "ex-torch-mse": [
        ("return F.mse_loss(y_hat, y)", "F.mse_loss averages over all N k entries and has no 1/2"),
        ("return F.mse_loss(y_hat, y, reduction='sum') / y_hat.shape[0]", "exactly 2 times too large"),
        ("return F.mse_loss(y_hat, y, reduction='sum') / (2 * y_hat.numel())", "a constant times bk.MSE"),
        ("return (F.mse_loss(y_hat, y, reduction='sum') / (2 * y_hat.shape[0])).item()",
         "got a float, expected a Tensor"),
        ("diff = y_hat.detach().numpy() - y.numpy()\nreturn torch.tensor((diff ** 2).sum() / (2 * len(diff)))",
         "the result does not require a gradient"),
        ("return F.mse_loss(y_hat, y, reduction='none') / 2", "expected one number"),
    ],
    "ex-torch-function": [
        ({1: "a, W = ctx.saved_tensors\nreturn grad_z @ W, a.T @ grad_z, grad_z.sum(dim=0)"},
         "each of its input's shape"),
        ({1: "a, W = ctx.saved_tensors\nreturn grad_z @ W.T, a.T @ grad_z"}, "backward() through DenseFunction: raised"),
        ({1: "a, W = ctx.saved_tensors\nreturn grad_z @ W.T, a.T @ grad_z, grad_z.sum(dim=1)"},
         "invalid gradient at index 2"),
        ({0: "ctx.save_for_backward(a, W)\nreturn a @ W"}, "forward computes z = a W + b"),
        ({1: "a, W = ctx.saved_tensors\nreturn -(grad_z @ W.T), a.T @ grad_z, grad_z.sum(dim=0)"},
         "the gradient for a disagrees with finite differences"),
        ({1: "a, W = ctx.saved_tensors\nreturn grad_z @ W.T, grad_z.T @ a, grad_z.sum(dim=0)"},
         "backward() through DenseFunction: raised RuntimeError"),
        ({1: "a, W = ctx.saved_tensors\nreturn grad_z @ W.T, a.T @ grad_z, grad_z.mean(dim=0)"},
         "the three lines of Dense.backward"),
    ],
    "ex-torch-adam": [
        (_ADAM.replace("w = w - lr / (1 - beta1**t) * m / (np.sqrt(v) / np.sqrt(1 - beta2**t) + eps)",
                       "w = w - lr * np.sqrt(1 - beta2**t) / (1 - beta1**t) * m / (np.sqrt(v) + eps)"),
         "the Adam paper's cheaper ordering is a different step"),
        (_ADAM.replace("lr / (1 - beta1**t)", "lr").replace("np.sqrt(v) / np.sqrt(1 - beta2**t)", "np.sqrt(v)"),
         "eq. torch-adam adds eps"),
        (_ADAM.replace("start=1", "start=0"), "the step number t starts at 1"),
        (_ADAM.replace("np.sqrt(v) / np.sqrt(1 - beta2**t) + eps", "np.sqrt(v / (1 - beta2**t) + eps)"),
         "adds eps to sqrt(v_t) / sqrt(1 - beta2^t)"),
        (_ADAM.replace("w, m, v = w0.copy()", "w, m, v = w0").replace("    w = w - lr", "    w -= lr"),
         "changed its argument 0 (w0) in place"),
        (_ADAM.replace("(1 - beta2) * g * g", "(1 - beta2) * g"), "the square root of a negative number"),
        (_ADAM.replace("return w", "return [w]"), "got a Python list"),
    ],
}
