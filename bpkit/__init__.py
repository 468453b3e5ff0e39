"""bpkit: the small numpy package behind *Backpropagation, Derived and Built*.

Batch-first throughout: inputs ``X`` are ``(N, n_in)``, weights ``W`` are ``(n_in, n_out)``,
``z = a_prev @ W + b``, and ``delta`` always means ``dL/dz`` of a layer.
"""

from . import check, data, optim, plotting, train
from .activations import ACTIVATIONS, Activation, gelu, identity, leaky_relu, relu, sigmoid, tanh
from .display import show_source
from .engine import Value, topological_order
from .graph_plot import draw_graph
from .gradcheck import check_layer, check_model, directional_check, gradcheck, numerical_gradient, rel_error
from .layers import Dense, Dropout, Embedding, Flatten, Layer, Parameter
from .losses import BCEWithLogits, L2Penalty, MSE, SoftmaxCrossEntropy, log_softmax, softmax
from .model import MLP, Residual, Sequential
from .norms import BatchNorm, LayerNorm

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS", "Activation", "identity", "sigmoid", "tanh", "relu", "leaky_relu", "gelu",
    "MSE", "BCEWithLogits", "SoftmaxCrossEntropy", "L2Penalty", "softmax", "log_softmax",
    "Layer", "Parameter", "Dense", "Dropout", "BatchNorm", "Embedding", "Flatten", "LayerNorm", "Residual", "Sequential", "MLP",
    "numerical_gradient", "rel_error", "gradcheck", "check_layer", "check_model", "directional_check",
    "Value", "topological_order", "draw_graph",
    "show_source",
    "check", "data", "optim", "plotting", "train",
]
