"""moreauctl.datasets (issue 10, item 6): readers checked on tiny fixtures written at test time
in the real formats (IDX raw and gzipped, CIFAR-10's binary records), their error messages,
the digits split, and, when Debian's dataset-fashion-mnist files are present, a short
training run on Fashion-MNIST."""
import gzip
import os
import pickle
import struct

import numpy as np
import pytest

import moreauctl as mc
from moreauctl import datasets, nn


def _idx_bytes(arr, code=0x08):
    """An IDX file's bytes: 0, 0, type, ndim, big-endian int32 sizes, big-endian data."""
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">i", s) for s in arr.shape)
    return head + np.asarray(arr).astype(dt).tobytes()


def _write(path, data, gz=False):
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)
    return str(path)


def _mnist_dir(d, n_train=12, n_test=5, gz_images=True, gz_labels=False, H=4, W=5):
    rng = np.random.default_rng(0)
    arrays = {"X_train": rng.integers(0, 256, size=(n_train, H, W), dtype=np.uint8),
              "y_train": np.arange(n_train, dtype=np.uint8) % 10,
              "X_test": rng.integers(0, 256, size=(n_test, H, W), dtype=np.uint8),
              "y_test": (np.arange(n_test, dtype=np.uint8) * 3) % 10}
    for key, name in datasets.IDX_FILES.items():
        gz = gz_images if key.startswith("X") else gz_labels
        _write(os.path.join(d, name + (".gz" if gz else "")), _idx_bytes(arrays[key]), gz)
    return arrays


@pytest.mark.parametrize("code", [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])
@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_every_type_raw_and_gzip(tmp_path, code, gz):
    rng = np.random.default_rng(code)
    arr = rng.integers(-100 if code != 0x08 else 0, 100, size=(3, 2, 4))
    if code >= 0x0D:
        arr = arr / 7.0
    if code == 0x0D:
        arr = arr.astype(np.float32)
    p = _write(tmp_path / "f.idx", _idx_bytes(arr, code), gz)
    got = datasets.load_idx(p)
    assert got.shape == (3, 2, 4) and got.dtype.isnative
    np.testing.assert_array_equal(got, arr)


def test_load_idx_errors(tmp_path):
    good = _idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3))
    cases = {
        "magic": (b"\x01" + good[1:], "not an IDX file"),
        "type": (good[:2] + b"\x07" + good[3:], "unknown data type 0x07"),
        "ndim": (good[:3] + b"\x00", "0 dimensions"),
        "truncated": (good[:6], "truncated IDX header"),
        "short": (good[:-1], "the header says shape (2, 3) of uint8 (6 bytes of data); the file has 5"),
        "long": (good + b"\x00", "the file has 7"),
    }
    for name, (data, msg) in cases.items():
        p = _write(tmp_path / name, data)
        with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            datasets.load_idx(p)
    bad_gz = _write(tmp_path / "bad.gz", b"\x1f\x8b" + b"garbage" * 3)
    with pytest.raises(ValueError, match="cannot read it as gzip"):
        datasets.load_idx(bad_gz)
    with pytest.raises(FileNotFoundError, match="IDX file not found"):
        datasets.load_idx(tmp_path / "nope")


def test_mnist_and_fashion_from_a_directory(tmp_path):
    arrays = _mnist_dir(tmp_path)
    d = datasets.mnist(tmp_path, scale="unit")
    assert d.image_shape == (1, 4, 5) and d.n_classes == 10
    np.testing.assert_array_equal(d.X_train, arrays["X_train"].reshape(12, -1) / 255.0)
    np.testing.assert_array_equal(d.y_test, arrays["y_test"])
    assert d.X_train.dtype == np.float64 and d.y_train.dtype == np.int64
    s = datasets.mnist(tmp_path)                 # StandardScaler fitted on the training split
    np.testing.assert_allclose(s.X_train.mean(axis=0), 0, atol=1e-12)
    raw = arrays["X_train"].reshape(12, -1).astype(float)
    sd = raw.std(axis=0)
    np.testing.assert_allclose(s.X_test, (arrays["X_test"].reshape(5, -1) - raw.mean(0)) / sd,
                               rtol=1e-12)
    f = datasets.fashion_mnist(tmp_path, scale=None, n_train=7, n_test=2)
    assert f.X_train.shape == (7, 20) and f.X_test.shape == (2, 20) and f.name == "Fashion-MNIST"
    np.testing.assert_array_equal(f.X_train, arrays["X_train"][:7].reshape(7, -1))
    assert datasets.load(f"mnist:{tmp_path}", n_train=3).X_train.shape == (3, 20)


def test_idx_directory_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        datasets.fashion_mnist(tmp_path / "absent")
    _mnist_dir(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte\(.gz\) not found in"):
        datasets.mnist(tmp_path)
    # labels that do not match the images
    _write(tmp_path / "t10k-labels-idx1-ubyte", _idx_bytes(np.zeros(4, dtype=np.uint8)))
    with pytest.raises(ValueError, match=r"test files do not match: images \(5, 4, 5\), labels \(4,\)"):
        datasets.mnist(tmp_path)
    with pytest.raises(ValueError, match="unknown scale 'minmax'"):
        datasets.mnist(tmp_path, scale="minmax")


def _cifar_dir(d, n=(4, 3), n_test=5, label_max=9):
    rng = np.random.default_rng(1)
    recs = {}
    for i, k in enumerate(n):
        r = rng.integers(0, 256, size=(k, 3073), dtype=np.uint8)
        r[:, 0] = rng.integers(0, label_max + 1, size=k)
        (d / f"data_batch_{i + 1}.bin").write_bytes(r.tobytes())
        recs[i] = r
    t = rng.integers(0, 256, size=(n_test, 3073), dtype=np.uint8)
    t[:, 0] = rng.integers(0, 10, size=n_test)
    (d / "test_batch.bin").write_bytes(t.tobytes())
    return recs, t


def test_cifar10_binary_records(tmp_path):
    recs, t = _cifar_dir(tmp_path)
    d = datasets.cifar10(tmp_path, scale=None)
    assert d.image_shape == (3, 32, 32) and d.X_train.shape == (7, 3072)
    train = np.concatenate([recs[0], recs[1]])
    np.testing.assert_array_equal(d.y_train, train[:, 0])
    np.testing.assert_array_equal(d.X_train, train[:, 1:])      # label byte, then R, G, B planes
    np.testing.assert_array_equal(d.X_test, t[:, 1:])
    # the red plane is channel 0 of the image
    img = d.X_train[2].reshape(3, 32, 32)
    np.testing.assert_array_equal(img[0, 0, :], train[2, 1:33])
    assert datasets.load(f"cifar10:{tmp_path}", n_test=2).X_test.shape == (2, 3072)


def test_cifar10_errors(tmp_path):
    a = tmp_path / "a"
    a.mkdir()
    _cifar_dir(a)
    with open(a / "data_batch_2.bin", "ab") as f:
        f.write(b"\x00" * 10)
    with pytest.raises(ValueError, match="not a multiple of the 3073-byte record"):
        datasets.cifar10(a)
    b = tmp_path / "b"
    b.mkdir()
    _cifar_dir(b, label_max=12)
    with pytest.raises(ValueError, match=r"label byte 1[0-2] \(expected 0..9\)"):
        datasets.cifar10(b)
    c = tmp_path / "c"
    c.mkdir()
    (c / "data_batch_1").write_bytes(pickle.dumps({"data": 1}))   # the Python version
    with pytest.raises(ValueError, match="pickled Python version of CIFAR-10"):
        datasets.cifar10(c)
    with pytest.raises(FileNotFoundError, match="cifar-10-binary.tar.gz"):
        datasets.cifar10(tmp_path / "absent")


def test_digits_split():
    d = datasets.digits(test_size=0.25, seed=0)
    assert d.X_train.shape == (1347, 64) and d.X_test.shape == (450, 64)
    all_counts = np.bincount(np.concatenate([d.y_train, d.y_test]))
    assert np.all(np.abs(np.bincount(d.y_test) - 0.25 * all_counts) < 1)   # stratified
    np.testing.assert_allclose(d.X_train.mean(axis=0), 0, atol=1e-12)
    again = datasets.digits(test_size=0.25, seed=0)
    np.testing.assert_array_equal(d.X_test, again.X_test)
    assert not np.array_equal(datasets.digits(seed=1).y_test, d.y_test)
    u = datasets.digits(scale="unit")
    assert u.X_train.max() == 1.0 and u.X_train.min() == 0.0
    with pytest.raises(ValueError, match="test_size must be a fraction in"):
        datasets.digits(test_size=1.5)
    with pytest.raises(ValueError, match="unknown dataset 'digitz'"):
        datasets.load("digitz")


@pytest.mark.skipif(not os.path.isdir(datasets.FASHION_MNIST_DIR),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_integration():
    d = datasets.fashion_mnist(n_train=6000, n_test=1000)
    assert d.image_shape == (1, 28, 28) and d.n_classes == 10
    full = datasets.load_idx(os.path.join(datasets.FASHION_MNIST_DIR,
                                          "train-labels-idx1-ubyte.gz"))
    assert full.shape == (60000,) and set(np.unique(full)) == set(range(10))
    net = nn.mlp([784, 100, 10], activation="relu")
    prob = nn.Classification(net, d.X_train, d.y_train, batch_size=32)
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):   # a second BLAS thread only slows
        res = mc.solve(prob, method="sgd", step=0.05, epochs=2, seed=0, verbose=False)
    assert res.success and res.costs[-1] < 0.6 * res.costs[0]
    assert nn.accuracy(net, res.w, d.X_test, d.y_test) >= 0.78
