"""Data for init studies: the bundled UCI digits, synthetic tasks, and loaders for files you have.

Every generator is deterministic from its seed (Philox streams, as everywhere in fastinit) and
returns a ``Dataset``: train and test arrays, the task, and the number of classes or outputs.
Nothing is downloaded.

    digits()                 UCI optical digits, 1,797 x 64, 10 classes (bundled; CC BY 4.0)
    teacher_student(...)     regression on the outputs of a random teacher MLP
    two_spirals(...)         2-class interleaved spirals in the plane
    blobs(...)               Gaussian clusters, one class each
    load_npz(path)           arrays you saved (x_train, y_train[, x_test, y_test] or x, y)
    load_mnist(path)         MNIST / Fashion-MNIST from the standard IDX files or mnist.npz
    load_dataset(name, ...)  any of them by the name a sweep spec uses ("digits", "npz:PATH")
"""
from __future__ import annotations

import gzip
import json
import math
import os
import struct
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from . import kernels, streams
from ._validate import (as_array, check_choice, check_int, check_npz, check_path, check_real,
                        check_seed, did_you_mean)
from .network import MLP
from .spread import fill, over_members

TASKS = ("classification", "regression", "binary")
DATASETS = ("digits", "two_spirals", "blobs", "teacher_student")   # generated, by name
FILE_DATASETS = ("npz", "mnist", "fashion_mnist")                  # "npz:PATH" and so on


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays with their task. ``y`` holds int labels (classification) or float
    targets (n, outputs) (regression, binary)."""
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: str = "classification"
    n_outputs: int = 0
    description: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def loss(self) -> str:
        """The loss that fits the task."""
        return {"classification": "cross_entropy", "regression": "mse", "binary": "bce"}[
            self.task]

    def __repr__(self):
        return (f"Dataset({self.name!r}, task={self.task!r}, train={self.x_train.shape}, "
                f"test={self.x_test.shape}, outputs={self.n_outputs})")


def _uniforms(seed: int, tag: int, n: int) -> np.ndarray:
    out = np.empty((1, n), dtype=np.float64)
    fill(kernels.sampling.uniform_fill, out, np.array([seed], np.uint64),
         np.array([tag], np.uint64), np.zeros(1), np.ones(1))
    return out[0]


def _normals(seed: int, tag: int, shape) -> np.ndarray:
    size = int(np.prod(shape))
    out = np.empty((1, size), dtype=np.float64)
    fill(kernels.sampling.normal_fill, out, np.array([seed], np.uint64),
         np.array([tag], np.uint64), np.zeros(1), np.ones(1))
    return out[0].reshape(shape)


def permutation(n: int, seed: int, tag: int = streams.data_tag(streams.PERMUTATION)
                ) -> np.ndarray:
    """A permutation of range(n), a pure function of (seed, tag): the stable argsort of the
    Philox uniforms _uniforms(seed, tag, n) (kernels.sampling.permutations)."""
    out = np.empty((1, n), dtype=np.int64)       # one row: no threads to spread it over
    kernels.sampling.permutations(0, 1, out, np.array([seed], np.uint64),
                                  np.array([tag], np.uint64))
    return out[0]


def permutations(n: int, seeds: np.ndarray, tags: np.ndarray) -> np.ndarray:
    """(len(seeds), n) int64: row k the permutation(n, seeds[k], tags[k]) (uint64 values),
    rows on Numba's threads."""
    seeds = np.ascontiguousarray(seeds, dtype=np.uint64)
    tags = np.ascontiguousarray(tags, dtype=np.uint64)
    out = np.empty((len(seeds), n), dtype=np.int64)
    over_members(kernels.sampling.permutations, len(seeds), out, seeds, tags)
    return out


def _test_fraction(value, func: str) -> float:
    """Every generator's test_fraction: in [0, 1) (0: no test split)."""
    return check_real(value, "test_fraction", func, low=0.0, high=1.0, high_open=True)


def _check_split(n_train: int, test_fraction: float, func: str):
    if n_train == 0:
        raise ValueError(f"The 'test_fraction' parameter of {func} leaves no training "
                         f"samples. Got {test_fraction!r}: use a smaller fraction or more "
                         f"samples.")


def stratified_split(y: np.ndarray, test_fraction: float, seed: int):
    """(train indices, test indices): each class split in the same proportion, shuffled by
    seed, each side sorted."""
    y = np.asarray(y)
    perm = permutation(len(y), seed, streams.data_tag(streams.SPLIT))
    test = []
    for c in np.unique(y):
        idx = perm[y[perm] == c]
        test.extend(idx[:int(round(test_fraction * len(idx)))].tolist())
    test = np.sort(np.array(test, dtype=np.int64))
    mask = np.ones(len(y), dtype=bool)
    mask[test] = False
    return np.flatnonzero(mask), test


def _standardise(x_train, x_test):
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0
    return (x_train - mean) / std, (x_test - mean) / std


def digits(test_fraction: float = 0.2, seed: int = 0, standardize: bool = True) -> Dataset:
    """UCI optical digits (1,797 8x8 images, 10 classes), split stratified by ``seed``.

    Pixels are 0..16; with ``standardize`` each feature is shifted and scaled by the training
    split's mean and std (constant pixels keep scale 1). Data: E. Alpaydin, C. Kaynak, UCI ML
    Repository, doi:10.24432/C50P49, CC BY 4.0 (see fastinit/data/README.md).
    """
    func = "fastinit.datasets.digits"
    test_fraction = _test_fraction(test_fraction, func)
    seed = check_seed(seed, "seed", func)
    with resources.files("fastinit").joinpath("data/digits.csv.gz").open("rb") as f:
        raw = np.loadtxt(gzip.open(f), delimiter=",")
    x, y = raw[:, :-1], raw[:, -1].astype(np.int64)
    tr, te = stratified_split(y, test_fraction, seed)
    _check_split(len(tr), test_fraction, func)
    x_train, x_test = x[tr], x[te]
    if standardize:
        x_train, x_test = _standardise(x_train, x_test)
    return Dataset("digits", x_train, y[tr], x_test, y[te], "classification", 10,
                   "UCI optical recognition of handwritten digits, 8x8, 10 classes")


def teacher_student(n: int = 2000, teacher=(20, 32, 1), activation: str = "tanh",
                    init: str = "xavier_normal", noise: float = 0.0, test_fraction: float = 0.2,
                    seed: int = 0) -> Dataset:
    """Regression: x ~ N(0, I), y = teacher(x) + noise * N(0, 1), teacher a random MLP.

    ``teacher`` is its layer sizes (input width first, outputs last), drawn with ``init`` and
    ``seed``; a student with the teacher's sizes can fit it exactly.
    """
    func = "fastinit.datasets.teacher_student"
    n = check_int(n, "n", func, minimum=2)
    noise = check_real(noise, "noise", func, low=0.0)
    test_fraction = _test_fraction(test_fraction, func)
    seed = check_seed(seed, "seed", func)
    if not isinstance(teacher, (list, tuple, np.ndarray)) or len(teacher) < 2:
        raise TypeError(f"The 'teacher' parameter of {func} must be the teacher's layer sizes, "
                        f"input width first and outputs last, e.g. (20, 32, 1). Got "
                        f"{teacher!r}.")
    teacher = [check_int(v, "teacher", func, minimum=1) for v in teacher]
    net = MLP(teacher, activation=activation, init=init, bias_init="zeros", seed=seed,
              dtype=np.float64)
    x = _normals(seed, streams.data_tag(streams.TEACHER_X), (n, net.layer_sizes[0]))
    y = net.forward(x)[0] + noise * _normals(seed, streams.data_tag(streams.TEACHER_NOISE),
                                             (n, net.layer_sizes[-1]))
    perm = permutation(n, seed, streams.data_tag(streams.TEACHER_SPLIT))
    n_test = int(round(test_fraction * n))
    te, tr = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    _check_split(len(tr), test_fraction, func)
    return Dataset("teacher_student", x[tr], y[tr], x[te], y[te], "regression", y.shape[1],
                   f"teacher {list(teacher)} {activation} {init}, noise {noise}",
                   meta={"teacher": net})


def two_spirals(n: int = 1000, noise: float = 0.2, turns: float = 1.5,
                test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Two interleaved spirals (classes 0 and 1), n points in all, Gaussian jitter ``noise``."""
    func = "fastinit.datasets.two_spirals"
    n = check_int(n, "n", func, minimum=4)
    noise = check_real(noise, "noise", func, low=0.0)
    turns = check_real(turns, "turns", func, low=0.0, low_open=True)
    test_fraction = _test_fraction(test_fraction, func)
    seed = check_seed(seed, "seed", func)
    half = n // 2
    t = np.sqrt(_uniforms(seed, streams.data_tag(streams.SPIRAL_ANGLE), n)) * turns * 2 \
        * math.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (turns * 2 * math.pi)
    x = np.concatenate([arm[:half], -arm[half:]])   # the second spiral: the first, rotated
    x = x + noise / (turns * 2 * math.pi) * _normals(
        seed, streams.data_tag(streams.SPIRAL_NOISE), x.shape)
    y = np.concatenate([np.zeros(half, np.int64), np.ones(n - half, np.int64)])
    tr, te = stratified_split(y, test_fraction, seed)
    _check_split(len(tr), test_fraction, func)
    return Dataset("two_spirals", x[tr], y[tr], x[te], y[te], "classification", 2,
                   f"two spirals, {turns} turns, noise {noise}")


def blobs(n: int = 1000, centers: int = 3, n_features: int = 2, spread: float = 1.0,
          box: float = 5.0, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Gaussian clusters: ``centers`` centres uniform in [-box, box]^d, std ``spread``."""
    func = "fastinit.datasets.blobs"
    n = check_int(n, "n", func, minimum=2)
    centers = check_int(centers, "centers", func, minimum=1)
    n_features = check_int(n_features, "n_features", func, minimum=1)
    spread = check_real(spread, "spread", func, low=0.0)
    box = check_real(box, "box", func, low=0.0)
    test_fraction = _test_fraction(test_fraction, func)
    seed = check_seed(seed, "seed", func)
    c = (2 * _uniforms(seed, streams.data_tag(streams.BLOB_CENTRES), centers * n_features)
         - 1).reshape(
        centers, n_features) * box
    y = np.arange(n) % centers
    x = c[y] + spread * _normals(seed, streams.data_tag(streams.BLOB_POINTS), (n, n_features))
    tr, te = stratified_split(y, test_fraction, seed)
    _check_split(len(tr), test_fraction, func)
    return Dataset("blobs", x[tr], y[tr], x[te], y[te], "classification", centers,
                   f"{centers} Gaussian blobs in {n_features}-D, spread {spread}")


def inferred_task(y: np.ndarray) -> str:
    """The task of arrays given without one: integer (or bool) y is classification."""
    return "classification" if y.dtype.kind in "iub" else "regression"


def from_arrays(x_train, y_train, x_test=None, y_test=None, task: str | None = None,
                name: str = "arrays") -> Dataset:
    """A Dataset from arrays; the task is inferred (integer y: classification) unless given."""
    func = "fastinit.datasets.from_arrays"
    if (x_test is None) != (y_test is None):
        raise ValueError(f"{func}: give x_test and y_test together, or neither (no test set). "
                         f"Got only {'x_test' if y_test is None else 'y_test'}.")
    x_train, y_train = as_array(x_train, "x_train", func), as_array(y_train, "y_train", func)
    no_test = x_test is None
    x_test, y_test = (x_train, y_train) if no_test else (as_array(x_test, "x_test", func),
                                                         as_array(y_test, "y_test", func))
    for param, x in (("x_train", x_train), ("x_test", x_test)):
        if x.ndim != 2 or x.shape[1:] != x_train.shape[1:]:
            raise ValueError(f"The {param!r} parameter of {func} must be 2-D (samples, "
                             f"features){', as wide as x_train' * (param == 'x_test')}. Got "
                             f"shape {x.shape}.")
    for param, y in (("y_train", y_train), ("y_test", y_test)):
        if y.ndim not in (1, 2):
            raise ValueError(f"The {param!r} parameter of {func} must be 1-D (labels, targets) "
                             f"or 2-D (samples, outputs). Got shape {y.shape}.")
    if no_test:
        x_test, y_test = x_train[:0], y_train[:0]
    if task is None:
        task = inferred_task(y_train)
    check_choice(task, "task", func, TASKS)
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError(f"{func}: X and y must have the same number of samples. Got "
                         f"train {len(x_train)} vs {len(y_train)}, test {len(x_test)} vs "
                         f"{len(y_test)}.")
    if task == "classification":
        sets = [y for y in (y_train, y_test) if y.size]
        low, high = (min(y.min() for y in sets), max(y.max() for y in sets)) if sets else (0, -1)
        if low < 0:
            raise ValueError(f"The class labels (y_train, y_test) of {func} must be 0, 1, "
                             f"2, ... Got labels in [{low}, {high}] "
                             f"({sum(int(np.sum(y < 0)) for y in sets)} negative).")
        outputs = int(high) + 1
    else:
        outputs = 1 if y_train.ndim == 1 else y_train.shape[1]
    return Dataset(name, x_train, y_train, x_test, y_test, task, outputs)


def load_npz(path, task: str | None = None) -> Dataset:
    """Arrays from an .npz: x_train, y_train (and x_test, y_test), or x, y (no test split);
    X_train, X_test and X for the x arrays too."""
    func = "fastinit.datasets.load_npz"
    path = check_npz(path, "path", func)
    with np.load(path, allow_pickle=False) as f:
        keys = {k[0].lower() + k[1:] if k[:1] == "X" and k.lower() not in f.files else k: k
                for k in f.files}                      # x_train: the file's X_train
        names = (["x_train", "y_train", "x_test", "y_test"] if {"x_train", "y_train"} <= set(keys)
                 else ["x", "y"] if {"x", "y"} <= set(keys) else None)
        if names is None:
            raise ValueError(f"fastinit.datasets.load_npz: {path!s} must hold x_train and "
                             f"y_train (optionally x_test, y_test), or x and y. Found "
                             f"{sorted(f.files)}.")
        try:
            parts = [f[keys[k]] if k in keys else None for k in names] + [None] * (4 - len(names))
        except ValueError:        # numpy: "Object arrays cannot be loaded when allow_pickle..."
            raise ValueError(f"{func}: {path!s} holds object (pickled) arrays; fastinit loads "
                             f"arrays of numbers only.") from None
    flat = lambda x: x if x is None or x.ndim in (0, 2) else x.reshape(x.shape[0],
                                                                       math.prod(x.shape[1:]))
    x_train, y_train, x_test, y_test = parts
    x_train, x_test = flat(x_train), flat(x_test)     # images (n, h, w): (n, h * w)
    try:
        return from_arrays(x_train, y_train, x_test, y_test, task,
                           name=os.path.basename(str(path)))
    except ValueError as e:
        raise ValueError(f"{func}: {path!s}: {e}") from None


def _read_idx(path: str, func: str) -> np.ndarray:
    where = f"{func}: {path}"
    try:
        with open(path, "rb") as f:       # gzip or not by its first bytes, not by its name: a
            gz = f.read(2) == b"\x1f\x8b"  # browser may unpack a .gz and keep the name
        with (gzip.open if gz else open)(path, "rb") as f:
            magic = f.read(4)
            if len(magic) != 4 or magic[:2] != b"\x00\x00" or magic[2] != 0x08:
                raise ValueError(f"{where}: not an IDX file of unsigned bytes (magic "
                                 f"{magic!r}).")
            ndim = magic[3]
            dims = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
            data = np.frombuffer(f.read(), dtype=np.uint8)
    except (OSError, EOFError, struct.error) as e:     # a bad gzip, a cut-off header or file
        raise ValueError(f"{where}: not a readable IDX file ({e}).") from None
    if data.size != math.prod(dims):
        raise ValueError(f"{where}: header says {dims} but the file holds {data.size} bytes.")
    return data.reshape(dims)


def load_mnist(path, name: str = "mnist", scale: bool = True) -> Dataset:
    """MNIST or Fashion-MNIST from files you have: a directory with the four standard IDX files
    (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
    t10k-labels-idx1-ubyte, optionally .gz) or an .npz with x_train, y_train, x_test, y_test.
    IDX files are found under LeCun's names or Kaggle's (train-images.idx3-ubyte), in ``path``
    or in torchvision's ``path``/MNIST/raw (FashionMNIST/raw), read as gzip by their content.
    Images are flattened to 784 features; with ``scale``, pixels 0..255 are divided by 255
    (pixels already in [0, 1], as a float .npz may hold them, are left as they are)."""
    func = f"fastinit.datasets.load_{'fashion_' * (name == 'fashion_mnist')}mnist"
    path = check_path(path, "path", func)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{func}: {path} does not exist (give a directory with the four "
                                f"IDX files, or an .npz).")
    if os.path.isdir(path):
        def find(stem):
            for cand in _idx_candidates(path, stem, name):
                if os.path.isfile(cand):
                    return cand
            raise FileNotFoundError(f"{func}: {stem}[.gz] not found in {path} (nor in "
                                    f"{_TORCHVISION.get(name, 'MNIST')}/raw, as torchvision "
                                    f"keeps it).")
        x_train = _read_idx(find("train-images-idx3-ubyte"), func)
        y_train = _read_idx(find("train-labels-idx1-ubyte"), func)
        x_test = _read_idx(find("t10k-images-idx3-ubyte"), func)
        y_test = _read_idx(find("t10k-labels-idx1-ubyte"), func)
        ds = from_arrays(x_train.reshape(len(x_train), -1), y_train.astype(np.int64),
                         x_test.reshape(len(x_test), -1), y_test.astype(np.int64),
                         "classification", name)
    else:
        ds = load_npz(path, "classification")
        ds = Dataset(name, ds.x_train, ds.y_train.astype(np.int64), ds.x_test,
                     ds.y_test.astype(np.int64), "classification", ds.n_outputs)
    if scale and max(float(x.max(initial=0)) for x in (ds.x_train, ds.x_test)) > 1:
        ds = Dataset(ds.name, ds.x_train / 255.0, ds.y_train, ds.x_test / 255.0, ds.y_test,
                     ds.task, ds.n_outputs)
    return ds


_TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}   # root/<this>/raw


def _idx_candidates(path: str, stem: str, name: str):
    """Where an IDX file may be in ``path``: as LeCun named it or with a dot (Kaggle's
    train-images.idx3-ubyte), gzipped or not; inside a folder of its own name (Kaggle's zip
    holds both); in torchvision's root/MNIST/raw."""
    names = [n + gz for n in (stem, stem.replace("-idx", ".idx")) for gz in ("", ".gz")]
    for folder in (path, os.path.join(path, stem),
                   os.path.join(path, _TORCHVISION.get(name, "MNIST"), "raw")):
        yield from (os.path.join(folder, n) for n in names)


def load_fashion_mnist(path, scale: bool = True) -> Dataset:
    """Fashion-MNIST (same file formats as load_mnist)."""
    return load_mnist(path, name="fashion_mnist", scale=scale)


_CACHE: dict[str, Dataset] = {}


def located(name: str) -> str:
    """A dataset name with a file dataset's relative PATH joined to this process's working
    directory (a sweep's client resolves it so that workers started elsewhere open the same
    file), as the system resolves it: not normalised as text (``link/../x.npz`` is the
    parent of link's target, not ``./x.npz``); any other name as it is."""
    base, colon, path = name.partition(":")
    keep = base not in FILE_DATASETS or not path or os.path.isabs(path)
    return name if keep else f"{base}:{os.path.join(os.getcwd(), path)}"   # not normalised


def reachable(where: str | None, name: str) -> str:
    """What a worker loads: ``where`` (the client's ``located`` name) where its file exists
    here, else ``name`` as the spec wrote it (the shared files under another mount point)."""
    return where if where is not None and os.path.exists(where.partition(":")[2]) else name


def load_dataset(name: str, options: dict | None = None, seed: int = 0) -> Dataset:
    """A dataset by the name a sweep spec uses: one of DATASETS (generated from ``seed`` with
    ``options``) or npz:PATH, mnist:PATH, fashion_mnist:PATH. Cached per process."""
    if not isinstance(name, str):
        raise TypeError(f"The 'name' parameter of fastinit.datasets.load_dataset must be a str "
                        f"such as 'digits' or 'npz:PATH'. Got {type(name).__name__}.")
    options = dict(options or {})
    key = json.dumps([located(name), options, seed], sort_keys=True)   # one file, one entry
    if key not in _CACHE:
        base, _, path = name.partition(":")
        if base == "npz":
            d = load_npz(path)
        elif base in ("mnist", "fashion_mnist"):
            d = load_mnist(path, name=base)
        elif base in DATASETS:
            if "teacher" in options:
                options["teacher"] = tuple(options["teacher"])
            d = globals()[base](seed=seed, **options)
        else:
            raise ValueError(f"The 'name' parameter of fastinit.datasets.load_dataset must be "
                             f"one of {DATASETS} or npz:PATH, mnist:PATH, fashion_mnist:PATH. "
                             f"Got {name!r}.{did_you_mean(base, DATASETS + FILE_DATASETS)}")
        _CACHE[key] = d
    return _CACHE[key]
