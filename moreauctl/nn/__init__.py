"""Networks as chains of stages: train classifiers with the same solver as control problems.

>>> import moreauctl as mc
>>> from moreauctl import nn, datasets
>>> data = datasets.digits(test_size=0.25, seed=0)
>>> net = nn.mlp([64, 32, 10], activation="relu")     # x_t = act(x_{t-1} W_t^T + b_t)
>>> prob = nn.Classification(net, data.X_train, data.y_train, loss="cross_entropy",
...                          batch_size=32)
>>> res = mc.solve(prob, method="sgd", step=0.1, epochs=5, seed=0, verbose=False)
>>> nn.accuracy(net, res.w, data.X_test, data.y_test)   # doctest: +SKIP

Modules: :mod:`.activations` (element-wise, derivatives from outputs), :mod:`.layers`
(``Dense`` with a fused activation, ``ActivationLayer``, ``Flatten``; what each layer
offers to rules and oracles is in its docstring), :mod:`.conv` (``Conv2d``, ``MaxPool2d``,
``AvgPool2d``), :mod:`.losses` (cross-entropy, squared), :mod:`.network` (``Sequential``,
``mlp``, ``convnet``), :mod:`.problem` (``Classification``, ``accuracy``), :mod:`.tasks`
(``make_task``: a data set, an architecture and a loss by name, for the command line,
demos and studies).
"""
from .activations import ACTIVATIONS, Activation, get_activation, relu_moreau_grad
from .conv import AvgPool2d, Conv2d, MaxPool2d, col2im, im2col
from .layers import ActivationLayer, AffineActivation, Dense, Flatten, Layer
from .losses import LOSSES, CrossEntropy, Squared, get_loss
from .network import INIT_SCHEMES, Sequential, convnet, mlp
from .problem import Classification, NetworkChain, accuracy
from .tasks import ARCHS, Task, make_task

__all__ = ["Activation", "ACTIVATIONS", "get_activation", "relu_moreau_grad", "Layer",
           "AffineActivation", "Dense", "ActivationLayer", "Flatten", "Conv2d", "MaxPool2d",
           "AvgPool2d", "im2col", "col2im", "CrossEntropy", "Squared", "LOSSES", "get_loss",
           "Sequential", "mlp", "convnet", "INIT_SCHEMES", "Classification", "NetworkChain",
           "accuracy", "Task", "make_task", "ARCHS"]
