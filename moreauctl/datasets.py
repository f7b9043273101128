"""Data sets for the network problems: scikit-learn's digits (embedded, the default), and
readers for the files MNIST, Fashion-MNIST (IDX) and CIFAR-10 (binary version) ship as.

Every loader returns a :class:`Dataset`: flat float64 inputs ``(m, prod(image_shape))``
and int64 labels, already split into train and test sets and scaled with statistics of
the training set only (scikit-learn's ``StandardScaler`` by default).

============================  ==============================================================
``digits(test_size, seed)``   8x8 digits bundled with scikit-learn (1797 images, 10 classes),
                              split by ``train_test_split`` (stratified)
``load_idx(path)``            one IDX file (gzip or raw), as an array
``mnist(path)``               a directory with the four MNIST IDX files
``fashion_mnist(path=None)``  the same for Fashion-MNIST; by default the files of Debian's
                              ``dataset-fashion-mnist`` package
``cifar10(path)``             the binary version (``cifar-10-batches-bin``: 3073-byte records);
                              the pickled Python version is refused (never unpickled)
``load(spec)``                any of them by the command line's name: ``digits``,
                              ``fashion-mnist[:PATH]``, ``mnist:PATH``, ``cifar10:PATH``
============================  ==============================================================

Every reader checks headers and sizes before reading the data and raises a ValueError
naming the file and what is wrong; a missing file raises FileNotFoundError saying how to
get it.
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from . import _validate as v

__all__ = ["Dataset", "digits", "load_idx", "mnist", "fashion_mnist", "cifar10", "load",
           "DATASETS", "SCALINGS", "FASHION_MNIST_DIR", "IDX_FILES"]

#: ``"standard"``: zero mean, unit variance per feature (``StandardScaler`` fitted on the
#: training set); ``"unit"``: divide by the format's largest value (16 for digits, 255 for
#: images), so inputs lie in [0, 1]; None: raw values.
SCALINGS = ("standard", "unit", None)

#: where Debian's ``dataset-fashion-mnist`` package installs its files
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

#: the four files of an MNIST-like directory (each may also be gzipped: name + ".gz")
IDX_FILES = {"X_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "X_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}

_IDX_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

_CIFAR_RECORD = 3073
_CIFAR_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_CIFAR_TEST = "test_batch.bin"


@dataclass(frozen=True)
class Dataset:
    """A train/test split.

    Attributes
    ----------
    X_train, X_test : ndarray, float64, shape (m, prod(image_shape))
    y_train, y_test : ndarray, int64, shape (m,)
    n_classes : int
    image_shape : tuple
        Per-sample shape ``(C, H, W)`` of the flat rows (``nn.convnet(input_shape=...)``).
    name : str
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    image_shape: Tuple[int, ...]
    name: str

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    def __repr__(self):
        return (f"Dataset({self.name!r}: {self.X_train.shape[0]} train / {self.X_test.shape[0]} "
                f"test samples, {self.n_features} features {self.image_shape}, "
                f"{self.n_classes} classes)")


def _scale(X_train, X_test, scale, max_value):
    v.choice("scale", scale, SCALINGS)
    X_train = np.asarray(X_train, dtype=np.float64)
    X_test = np.asarray(X_test, dtype=np.float64)
    if scale == "standard":
        from sklearn.preprocessing import StandardScaler
        sc = StandardScaler().fit(X_train)
        return sc.transform(X_train), sc.transform(X_test)
    if scale == "unit":
        return X_train / max_value, X_test / max_value
    return X_train, X_test


def _check_options(scale, n_train=None, n_test=None):
    """Options checked before any file is read."""
    v.choice("scale", scale, SCALINGS)
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if n is not None:
            v.positive_int(name, n)


def _limit(name, n, total):
    if n is None:
        return total
    n = v.positive_int(name, n)
    return min(n, total)


def digits(test_size: float = 0.25, seed: Optional[int] = 0, scale: Optional[str] = "standard"
           ) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1797 samples, 64 features in 0..16, 10
    classes), split with ``train_test_split(test_size, random_state=seed, stratify=y)``.

    Parameters
    ----------
    test_size : float in (0, 1)
        Fraction of samples held out.
    seed : int or None
        Seed of the split.
    scale : {"standard", "unit", None}
        See :data:`SCALINGS`.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    _check_options(scale)
    ts = v.positive_number("test_size", test_size)
    if not ts < 1:
        raise ValueError(f"test_size must be a fraction in (0, 1); got {test_size!r}")
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=ts, random_state=seed, stratify=y)
    Xtr, Xte = _scale(Xtr, Xte, scale, 16.0)
    return Dataset(Xtr, ytr.astype(np.int64), Xte, yte.astype(np.int64), 10, (1, 8, 8), "digits")


def _open(path):
    """Read the whole file, gunzipping it when it starts with gzip's magic bytes."""
    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path}: cannot read it as gzip ({e})") from None


def load_idx(path) -> np.ndarray:
    """One IDX file (the format of MNIST and Fashion-MNIST), gzip-compressed or raw.

    The header is two zero bytes, a type byte (0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int,
    0x0D float, 0x0E double), a dimension count ``d``, then ``d`` big-endian int32 sizes;
    the data follow in C order, big-endian.

    Returns
    -------
    ndarray of the file's shape (native byte order)

    Raises
    ------
    FileNotFoundError
    ValueError
        Corrupt header (magic, type, dimensions) or a data size that does not match it.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = _open(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (the header must start with two zero "
                         f"bytes; got {raw[:4].hex() or 'an empty file'})")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{path}: corrupt IDX header: unknown data type 0x{code:02x}; "
                         f"expected one of {[hex(c) for c in _IDX_TYPES]}")
    if ndim < 1:
        raise ValueError(f"{path}: corrupt IDX header: 0 dimensions")
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes for {ndim} dimensions)")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dt = _IDX_TYPES[code]
    expected = int(np.prod(shape)) * dt.itemsize
    if len(raw) - head != expected:
        raise ValueError(f"{path}: corrupt IDX file: the header says shape {shape} of "
                         f"{dt.name} ({expected} bytes of data); the file has {len(raw) - head}")
    return np.frombuffer(raw, dtype=dt, offset=head).reshape(shape).astype(dt.newbyteorder("="))


def _find(directory, name, how_to_get):
    for cand in (name + ".gz", name):
        p = os.path.join(directory, cand)
        if os.path.isfile(p):
            return p
    raise FileNotFoundError(f"{name}(.gz) not found in {directory}. {how_to_get}")


def _idx_dataset(directory, name, how_to_get, scale, n_train, n_test) -> Dataset:
    _check_options(scale, n_train, n_test)
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{name}: directory not found: {directory}. {how_to_get}")
    arrays = {k: load_idx(_find(directory, f, how_to_get)) for k, f in IDX_FILES.items()}
    for split in ("train", "test"):
        X, y = arrays[f"X_{split}"], arrays[f"y_{split}"]
        if X.ndim != 3 or y.ndim != 1 or X.shape[0] != y.shape[0]:
            raise ValueError(f"{name} {split} files do not match: images {X.shape}, labels "
                             f"{y.shape}; expected (m, H, W) and (m,)")
    H, W = arrays["X_train"].shape[1:]
    if arrays["X_test"].shape[1:] != (H, W):
        raise ValueError(f"{name}: train images are {H}x{W}, test images "
                         f"{arrays['X_test'].shape[1:]}")
    if min(arrays["y_train"].min(), arrays["y_test"].min()) < 0:
        raise ValueError(f"{name}: negative labels in the label files")
    K = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
    ntr = _limit("n_train", n_train, arrays["y_train"].shape[0])
    nte = _limit("n_test", n_test, arrays["y_test"].shape[0])
    ytr = arrays["y_train"][:ntr].astype(np.int64)
    yte = arrays["y_test"][:nte].astype(np.int64)
    Xtr, Xte = _scale(arrays["X_train"][:ntr].reshape(ntr, -1),
                      arrays["X_test"][:nte].reshape(nte, -1), scale, 255.0)
    return Dataset(Xtr, ytr, Xte, yte, K, (1, H, W), name)


def mnist(path, scale: Optional[str] = "standard", n_train: Optional[int] = None,
          n_test: Optional[int] = None) -> Dataset:
    """MNIST from a directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each raw or ``.gz``).

    Parameters
    ----------
    path : str
    scale : {"standard", "unit", None}
    n_train, n_test : int, optional
        Keep only the first samples of each split (quick runs).
    """
    return _idx_dataset(path, "MNIST", "Download the four files from "
                        "http://yann.lecun.com/exdb/mnist/ (or a mirror) into that directory.",
                        scale, n_train, n_test)


def fashion_mnist(path=None, scale: Optional[str] = "standard", n_train: Optional[int] = None,
                  n_test: Optional[int] = None) -> Dataset:
    """Fashion-MNIST (Zalando; 60000 + 10000 28x28 grey images, 10 classes) from a directory
    of the same four IDX files as :func:`mnist`; by default Debian's package files in
    :data:`FASHION_MNIST_DIR`."""
    how = ("Install Debian's package (apt-get install dataset-fashion-mnist, which puts the "
           f"files in {FASHION_MNIST_DIR}) or download them from "
           "https://github.com/zalandoresearch/fashion-mnist and pass path=.")
    return _idx_dataset(FASHION_MNIST_DIR if path is None else path, "Fashion-MNIST", how, scale,
                        n_train, n_test)


def _read_cifar(path) -> Tuple[np.ndarray, np.ndarray]:
    size = os.path.getsize(path)
    if size == 0 or size % _CIFAR_RECORD:
        raise ValueError(f"{path}: corrupt CIFAR-10 binary file: {size} bytes is not a "
                         f"multiple of the {_CIFAR_RECORD}-byte record (1 label + 3072 pixels)")
    rec = np.fromfile(path, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = rec[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise ValueError(f"{path}: corrupt CIFAR-10 binary file: label byte "
                         f"{int(labels.max())} (expected 0..9) at record "
                         f"{int(np.argmax(labels > 9))}")
    return rec[:, 1:], labels


def cifar10(path, scale: Optional[str] = "standard", n_train: Optional[int] = None,
            n_test: Optional[int] = None) -> Dataset:
    """CIFAR-10, binary version: a directory (``cifar-10-batches-bin``) with
    ``data_batch_1.bin`` .. ``data_batch_5.bin`` and ``test_batch.bin``, each a sequence of
    3073-byte records (a label byte, then 1024 red, 1024 green and 1024 blue pixels, rows
    first). Rows of ``X`` keep that order, i.e. images ``(3, 32, 32)``.

    The Python version (pickled ``data_batch_1`` files) is refused: unpickling runs code
    from the file.
    """
    how = ("Download the binary version, https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz, "
           "and pass the extracted cifar-10-batches-bin directory.")
    _check_options(scale, n_train, n_test)
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"CIFAR-10: directory not found: {path}. {how}")
    if not os.path.isfile(os.path.join(path, _CIFAR_TEST)):
        if os.path.isfile(os.path.join(path, "data_batch_1")):
            raise ValueError(f"{path} holds the pickled Python version of CIFAR-10, which "
                             f"moreauctl does not read (unpickling runs code). {how}")
        raise FileNotFoundError(f"CIFAR-10: {_CIFAR_TEST} not found in {path}. {how}")
    train = [os.path.join(path, f) for f in _CIFAR_TRAIN if os.path.isfile(os.path.join(path, f))]
    if not train:
        raise FileNotFoundError(f"CIFAR-10: no data_batch_*.bin in {path}. {how}")
    parts = [_read_cifar(p) for p in train]
    Xtr = np.concatenate([p[0] for p in parts])
    ytr = np.concatenate([p[1] for p in parts])
    Xte, yte = _read_cifar(os.path.join(path, _CIFAR_TEST))
    ntr, nte = _limit("n_train", n_train, len(ytr)), _limit("n_test", n_test, len(yte))
    Xtr, Xte = _scale(Xtr[:ntr], Xte[:nte], scale, 255.0)
    return Dataset(Xtr, ytr[:ntr], Xte, yte[:nte], 10, (3, 32, 32), "CIFAR-10")


#: names of :func:`load`; those marked with ``:PATH`` need a directory
DATASETS = ("digits", "fashion-mnist", "fashion-mnist:PATH", "mnist:PATH", "cifar10:PATH")


def load(spec: str, *, seed: Optional[int] = 0, test_size: float = 0.25,
         scale: Optional[str] = "standard", n_train: Optional[int] = None,
         n_test: Optional[int] = None) -> Dataset:
    """A data set by name, as the command line spells it: ``"digits"``, ``"fashion-mnist"``
    (Debian's files) or ``"fashion-mnist:PATH"``, ``"mnist:PATH"``, ``"cifar10:PATH"``.

    ``seed`` and ``test_size`` split the digits (the others come split); ``n_train`` and
    ``n_test`` keep the first samples of each split.
    """
    if not isinstance(spec, str):
        raise TypeError(f"dataset must be a string such as 'digits' or 'mnist:PATH'; got {spec!r}")
    name, sep, path = spec.partition(":")
    _check_options(scale, n_train, n_test)
    if name == "digits" and not sep:
        d = digits(test_size=test_size, seed=seed, scale=scale)
        ntr, nte = _limit("n_train", n_train, len(d.y_train)), _limit("n_test", n_test, len(d.y_test))
        return Dataset(d.X_train[:ntr], d.y_train[:ntr], d.X_test[:nte], d.y_test[:nte],
                       d.n_classes, d.image_shape, d.name)
    if name == "fashion-mnist":
        return fashion_mnist(path or None, scale=scale, n_train=n_train, n_test=n_test)
    if name in ("mnist", "cifar10"):
        if not path:
            raise ValueError(f"dataset {name!r} needs a directory: '{name}:PATH'")
        return (mnist if name == "mnist" else cifar10)(path, scale=scale, n_train=n_train,
                                                      n_test=n_test)
    raise ValueError(f"unknown dataset {spec!r}; choose one of {list(DATASETS)}")
