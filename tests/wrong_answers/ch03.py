"""Chapter 3, the output-layer delta: wrong answers and the phrase each check must say."""

WRONG = {
    "ex-outdelta-tanh-mse": [
        ("a = np.tanh(z)\nreturn (a - y) * (1 - a * a)", "N = 5 times too large: check the 1/N factor"),
        ("a = np.tanh(z)\nreturn (a - y) / z.shape[0]", "both factors"),
        ("a = bk.sigmoid(z)\nreturn (a - y) * a * (1 - a) / z.shape[0]", "wrong values"),
        ("a = np.tanh(z)\nreturn (y - a) * (1 - a * a) / z.shape[0]", "wrong sign"),
        ("a = np.tanh(z)\nreturn (a - y) * (1 - a * a) / z.size", "divided by all N k entries instead of by N"),
    ],
    "ex-outdelta-weighted-bce": [
        ("s = bk.sigmoid(z)\nreturn (s * (y + pos_weight * (1 - y)) - y) / z.shape[0]",
         "on input 1 (shape (6, 2), shape (6, 2), 4)"),
        ("s = bk.sigmoid(z)\nreturn s * (pos_weight * y + 1 - y) - pos_weight * y", "N = 6 times too large"),
        ("s = bk.sigmoid(z)\nreturn (s * (pos_weight * y + 1 - y) - pos_weight * y) * s * (1 - s) / z.shape[0]",
         "no sigma' is left over"),
        ("return (bk.sigmoid(z) - y) / z.shape[0]", "w+ multiplies only the positive term"),
        ("s = bk.sigmoid(z)\nreturn (s - pos_weight * y) / z.shape[0]", "wrong values"),
    ],
    "ex-outdelta-label-smoothing": [
        ("N, C = z.shape\nY_smooth = (1 - zeta) * np.eye(C)[labels] + zeta / (C - 1)\nreturn (bk.softmax(z) - Y_smooth) / N",
         "so the row sums to 1"),
        ("N, C = z.shape\nreturn (bk.softmax(z) - np.eye(C)[labels]) / N", "on input 1"),
        ("N, C = z.shape\nY_smooth = (1 - zeta) * np.eye(C)[labels] + zeta / C\nreturn bk.softmax(z) - Y_smooth",
         "N = 5 times too large"),
        ("N, C = z.shape\nY_smooth = (1 - zeta) * np.eye(C)[labels] + zeta / C\nreturn (Y_smooth - bk.softmax(z)) / N",
         "wrong sign"),
        ("N, C = z.shape\nY_smooth = (1 - zeta) * np.eye(C)[labels] + zeta\nreturn (bk.softmax(z) - Y_smooth) / N",
         "wrong values"),
    ],
    "ex-outdelta-jacobian": [
        ("N = z.shape[0]\nP = bk.softmax(z)\ndelta = np.empty_like(z)\nfor n in range(N):\n"
         "    delta[n] = (-Y[n] / P[n]) @ np.diag(P[n])\nreturn delta / N", "J_n = diag(p_n) - p_n p_n^T"),
        ("N = z.shape[0]\nP = bk.softmax(z)\ndelta = np.empty_like(z)\nfor n in range(N):\n"
         "    J = np.diag(P[n]) - np.outer(P[n], P[n])\n    delta[n] = (Y[n] / P[n]) @ J\nreturn delta / N",
         "wrong sign"),
        ("N = z.shape[0]\nP = bk.softmax(z)\ndelta = np.empty_like(z)\nfor n in range(N):\n"
         "    J = np.diag(P[n]) - np.outer(P[n], P[n])\n    delta[n] = (-Y[n] / P[n]) @ J\nreturn delta",
         "N = 6 times too large"),
        ("N = z.shape[0]\nP = bk.softmax(z)\ndelta = np.empty_like(z)\nfor n in range(N):\n"
         "    J = np.diag(P[n]) - np.outer(P[n], P[n])\n    delta[n] = (-Y[n] * P[n]) @ J\nreturn delta / N",
         "wrong values"),
        ("N = z.shape[0]\nP = bk.softmax(z)\ndelta = np.empty_like(z)\nfor n in range(N - 1):\n"
         "    J = np.diag(P[n]) - np.outer(P[n], P[n])\n    delta[n] = (-Y[n] / P[n]) @ J\nreturn delta / N",
         "every wrong entry is at index 5 of axis 0"),
    ],
    "ex-outdelta-find-bug": [
        ("return bce_delta_buggy(z, y)", "is it still a factor of your delta?"),
        ("return bk.sigmoid(z) - y", "N = 7 times too large"),
        ("return (y - bk.sigmoid(z)) / z.shape[0]", "wrong sign"),
        ("delta = (bk.sigmoid(z) - y) / z.shape[0]", "forget to `return`"),
    ],
}
