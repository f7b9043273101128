"""A classification task by name: data set + architecture + loss -> a :class:`~moreauctl.nn.Task`.

One factory shared by ``moreauctl train``, ``demos/paper_fig4.py`` and network studies
(:func:`moreauctl.studies.training_grid`), so that only JSON-like settings travel to worker
processes and every worker rebuilds the same problem::

    task = make_task(dataset="digits", arch="mlp", hidden=(64,), batch_size=32)
    res = mc.solve(task.problem, method="sgd", step=0.1, epochs=20, seed=0)
    task.accuracy(res.w)            # on the test split
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from .. import _validate as v
from .. import datasets as ds
from .network import Sequential, convnet, mlp
from .problem import Classification, accuracy

__all__ = ["Task", "make_task", "ARCHS"]

#: ``"mlp"``: dense layers ``n_features -> *hidden -> n_classes`` with ``activation``;
#: ``"convnet"``: the long paper's ConvNet (:func:`moreauctl.nn.convnet`) on the data set's
#: image shape.
ARCHS = ("mlp", "convnet")


@dataclass(frozen=True)
class Task:
    """A network problem with its data.

    Attributes
    ----------
    problem : Classification
        On the training split.
    net : Sequential
    data : moreauctl.datasets.Dataset
    settings : dict
        The keywords of :func:`make_task` (JSON-like).
    """

    problem: Classification
    net: Sequential
    data: ds.Dataset
    settings: dict

    def accuracy(self, w, split: str = "test") -> float:
        """Accuracy of parameters ``w`` on the ``"test"`` or ``"train"`` split."""
        v.choice("split", split, ("test", "train"))
        d = self.data
        X, y = (d.X_test, d.y_test) if split == "test" else (d.X_train, d.y_train)
        return accuracy(self.net, w, X, y)


def make_task(dataset: str = "digits", arch: str = "mlp", hidden: Sequence[int] = (64,),
              activation: str = "relu", loss: str = "cross_entropy",
              batch_size: Optional[int] = 32, weight_decay: float = 0.0,
              dtype: str = "float64", seed: int = 0, n_train: Optional[int] = None,
              n_test: Optional[int] = None, test_size: float = 0.25,
              scale: Optional[str] = "standard") -> Task:
    """Load ``dataset`` (:func:`moreauctl.datasets.load`), build the network and the problem.

    Parameters
    ----------
    dataset : str
        ``"digits"``, ``"fashion-mnist"``, ``"mnist:PATH"``, ``"cifar10:PATH"``.
    arch : {"mlp", "convnet"}
    hidden : sequence of int
        Hidden layer sizes of the MLP (empty for ``"convnet"``, whose layers are fixed).
    activation, loss, batch_size, weight_decay, dtype
        As :func:`moreauctl.nn.mlp` and :class:`moreauctl.nn.Classification`.
    seed : int
        The digits' train/test split and the initialization (``init_seed``).
    n_train, n_test, test_size, scale
        As :func:`moreauctl.datasets.load`.
    """
    v.choice("arch", arch, ARCHS)
    hidden = [v.positive_int("every hidden size", h) for h in hidden]
    if arch == "convnet" and hidden:
        raise ValueError(f"arch='convnet' has a fixed architecture; do not give hidden sizes "
                         f"(got {hidden})")
    v.nonnegative_int("seed", seed)
    data = ds.load(dataset, seed=seed, test_size=test_size, scale=scale, n_train=n_train,
                   n_test=n_test)
    if arch == "mlp":
        net = mlp([data.n_features, *hidden, data.n_classes], activation=activation)
    else:
        net = convnet(data.image_shape, n_classes=data.n_classes, activation=activation)
    prob = Classification(net, data.X_train, data.y_train, loss=loss, batch_size=batch_size,
                          weight_decay=weight_decay, dtype=dtype, init_seed=seed,
                          name=f"{arch}{'-' + '-'.join(map(str, hidden)) if hidden else ''} "
                               f"on {data.name}")
    settings = dict(dataset=dataset, arch=arch, hidden=list(hidden), activation=activation,
                    loss=loss, batch_size=batch_size, weight_decay=weight_decay, dtype=dtype,
                    seed=seed, n_train=n_train, n_test=n_test, test_size=test_size, scale=scale)
    return Task(prob, net, data, settings)
