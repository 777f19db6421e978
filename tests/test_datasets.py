"""fastinit.datasets: bundled digits, synthetic generators, loaders; all deterministic."""
import gzip
import os
import struct

import numpy as np
import pytest

import fastinit
from fastinit import datasets


def test_digits_shape_split_and_determinism():
    ds = datasets.digits()
    assert ds.x_train.shape[1] == 64 and len(ds.x_train) + len(ds.x_test) == 1797
    assert ds.task == "classification" and ds.n_outputs == 10 and ds.loss == "cross_entropy"
    # stratified: every class is split in the same proportion (to within one sample)
    train_counts = np.bincount(ds.y_train, minlength=10)
    test_counts = np.bincount(ds.y_test, minlength=10)
    np.testing.assert_allclose(test_counts / (train_counts + test_counts), 0.2, atol=0.006)
    again = datasets.digits()
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    other = datasets.digits(seed=1)
    assert not np.array_equal(other.y_test, ds.y_test)
    # standardised on the training split
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0, atol=1e-12)
    raw = datasets.digits(standardize=False)
    assert raw.x_train.min() == 0 and raw.x_train.max() == 16


def test_synthetic_generators_are_deterministic():
    for make in (lambda s: datasets.two_spirals(n=200, seed=s),
                 lambda s: datasets.blobs(n=150, centers=4, n_features=3, seed=s),
                 lambda s: datasets.teacher_student(n=100, teacher=(5, 8, 2), seed=s)):
        a, b, c = make(0), make(0), make(1)
        np.testing.assert_array_equal(a.x_train, b.x_train)
        np.testing.assert_array_equal(a.y_train, b.y_train)
        assert not np.array_equal(a.x_train, c.x_train)


def test_teacher_student_is_learnable_by_its_own_architecture():
    ds = datasets.teacher_student(n=400, teacher=(4, 6, 1), activation="tanh", seed=2)
    teacher = ds.meta["teacher"]
    np.testing.assert_allclose(teacher.forward(ds.x_train)[0], ds.y_train, atol=1e-12)
    assert ds.task == "regression" and ds.loss == "mse"
    net = fastinit.MLP([4, 6, 1], activation="tanh", init="xavier_normal", n=2, seed=7,
                       dtype=np.float64)
    h = fastinit.train(net, ds, epochs=40, batch_size=16, optimizer="adam", lr=0.01)
    assert np.all(h.test_loss[-1] < 0.2 * h.test_loss[0])
    assert np.all(np.isnan(h.test_acc))


def test_spirals_and_blobs_shapes():
    sp = datasets.two_spirals(n=301, seed=0)
    assert len(sp.x_train) + len(sp.x_test) == 301 and sp.n_outputs == 2
    assert set(np.unique(sp.y_train)) == {0, 1}
    bl = datasets.blobs(n=90, centers=3, n_features=5, spread=0.1, seed=0)
    assert bl.x_train.shape[1] == 5 and bl.n_outputs == 3
    net = fastinit.MLP([5, 3], init="zeros", dtype=np.float64)
    h = fastinit.train(net, bl, epochs=20, batch_size=8, lr=0.1)
    assert h.test_acc[-1, 0] == 1.0    # tight blobs are linearly separable


def test_load_npz(tmp_path):
    g = np.random.default_rng(0)
    p = tmp_path / "d.npz"
    np.savez(p, x_train=g.random((20, 2, 3)), y_train=g.integers(0, 4, 20),
             x_test=g.random((5, 2, 3)), y_test=g.integers(0, 4, 5))
    ds = datasets.load_npz(p)
    assert ds.x_train.shape == (20, 6) and ds.task == "classification"
    p2 = tmp_path / "xy.npz"
    np.savez(p2, x=g.random((8, 3)), y=g.random(8))
    ds2 = datasets.load_npz(p2)
    assert ds2.task == "regression" and len(ds2.x_test) == 0
    p3 = tmp_path / "bad.npz"
    np.savez(p3, a=np.zeros(3))
    with pytest.raises(ValueError, match="must hold x_train and y_train"):
        datasets.load_npz(p3)


def _write_idx(path, arr, compress):
    header = b"\x00\x00\x08" + bytes([arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_from_idx_files(tmp_path, compress):
    g = np.random.default_rng(1)
    xs, ys = g.integers(0, 256, (12, 28, 28)), g.integers(0, 10, 12)
    xt, yt = g.integers(0, 256, (4, 28, 28)), g.integers(0, 10, 4)
    sfx = ".gz" if compress else ""
    _write_idx(tmp_path / f"train-images-idx3-ubyte{sfx}", xs, compress)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{sfx}", ys, compress)
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{sfx}", xt, compress)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{sfx}", yt, compress)
    ds = datasets.load_fashion_mnist(tmp_path)
    assert ds.name == "fashion_mnist" and ds.x_train.shape == (12, 784)
    np.testing.assert_allclose(ds.x_train, xs.reshape(12, -1) / 255.0)
    np.testing.assert_array_equal(ds.y_test, yt)
    with pytest.raises(FileNotFoundError, match="t10k-labels"):
        (tmp_path / f"t10k-labels-idx1-ubyte{sfx}").unlink()
        datasets.load_mnist(tmp_path)


def test_from_arrays_errors():
    with pytest.raises(ValueError, match="same number of samples"):
        datasets.from_arrays(np.ones((3, 2)), np.zeros(4, int))
    with pytest.raises(ValueError, match="'task' parameter.*Did you mean 'regression'"):
        datasets.from_arrays(np.ones((3, 2)), np.zeros(3), task="regresion")
    with pytest.raises(ValueError, match="must be 2-D"):
        datasets.from_arrays(np.ones(3), np.zeros(3, int))


@pytest.mark.parametrize("make", [
    lambda f: datasets.teacher_student(n=50, teacher=(3, 4, 1), test_fraction=f),
    lambda f: datasets.two_spirals(n=50, test_fraction=f),
    lambda f: datasets.blobs(n=50, test_fraction=f),
    lambda f: datasets.digits(test_fraction=f),
])
@pytest.mark.parametrize("fraction", [-0.5, 1.0, 2.0, float("nan")])
def test_every_generator_checks_test_fraction(make, fraction):
    with pytest.raises(ValueError, match=r"The 'test_fraction' parameter of fastinit.datasets."
                                         r"\w+ must be (in the interval \[0.0, 1.0\)|a finite)"):
        make(fraction)


def test_test_fraction_zero_means_no_test_split_and_no_train_split_is_refused():
    ds = datasets.two_spirals(n=40, test_fraction=0.0)
    assert len(ds.x_test) == 0 and len(ds.x_train) == 40
    with pytest.raises(ValueError, match=r"'test_fraction' parameter of fastinit.datasets.blobs "
                                         r"leaves no training samples. Got 0.9"):
        datasets.blobs(n=3, centers=3, test_fraction=0.9)


def test_npz_with_negative_labels_names_the_file(tmp_path):
    p = tmp_path / "neg.npz"
    np.savez(p, x=np.ones((6, 2)), y=np.full(6, -1))
    with pytest.raises(ValueError, match=r"fastinit.datasets.load_npz: .*neg.npz: The class "
                                         r"labels \(y_train, y_test\) of fastinit.datasets."
                                         r"from_arrays must be 0, 1, 2, ... Got labels in "
                                         r"\[-1, -1\] \(6 negative\)"):
        datasets.load_npz(p)
    with pytest.raises(ValueError, match="must be 0, 1, 2"):
        datasets.from_arrays(np.ones((3, 2)), np.array([0, 1, -2]))


def test_a_file_that_is_no_npz_archive_gets_one_line(tmp_path):
    for name, content in (("text.npz", b"x,y\n1,2\n"), ("array.npy", None)):
        p = tmp_path / name
        if content is None:
            np.save(p, np.zeros(3))
        else:
            p.write_bytes(content)
        with pytest.raises(ValueError) as e:
            datasets.load_npz(p)
        assert str(e.value) == (f"fastinit.datasets.load_npz: {p} is not an .npz archive (a "
                                f"zip of .npy arrays, as numpy.savez writes).")


def test_load_dataset_by_sweep_name_is_cached(tmp_path):
    a = datasets.load_dataset("two_spirals", {"n": 60}, seed=3)
    assert a is datasets.load_dataset("two_spirals", {"n": 60}, seed=3)
    assert len(a.x_train) + len(a.x_test) == 60
    with pytest.raises(ValueError, match="'name' parameter of fastinit.datasets.load_dataset"):
        datasets.load_dataset("spirals")


# -- permutations ----------------------------------------------------------------------------

@pytest.mark.parametrize("n,seed,tag", [(n, seed, tag) for n in (0, 1, 2, 3, 8, 1537, 70001)
                                         for seed, tag in ((0, 5), (2**64 - 1, 2**63 + 7))]
                         + [(2**22 + 5, 3, 2**40 + 1)])
def test_a_permutation_is_the_stable_argsort_of_its_uniforms(n, seed, tag):
    """The data order every epoch uses: NumPy's stable argsort of the Philox uniforms (past
    2^22 values, several to a bucket)."""
    want = np.argsort(datasets._uniforms(seed, tag, n), kind="stable")
    got = datasets.permutation(n, seed, tag)
    assert got.dtype == np.int64 and np.array_equal(got, want)


def test_permutations_of_many_seeds_on_threads_are_each_their_own():
    from fastinit.training import numba_threads
    seeds = np.array([3, 2**64 - 5, 3, 0, 7], np.uint64)
    tags = np.array([1, 1, 2, 2**40, 9], np.uint64)
    with numba_threads(2):
        got = datasets.permutations(999, seeds, tags)
    for k in range(5):
        assert np.array_equal(got[k], datasets.permutation(999, int(seeds[k]), int(tags[k])))


@pytest.mark.parametrize("high,shift", [(4, 51), (2**53, 43), (2**53, 52), (40, 47)])
def test_stable_order_breaks_ties_by_index(high, shift):
    """The sort under permutations, on keys with many ties, in 2 buckets to 2^10 (or all in
    one: insertion sort alone)."""
    from fastinit import kernels
    from reference import call
    g = np.random.default_rng(high + shift)
    q = g.integers(0, high, 3000, dtype=np.uint64)
    q[::7] = q[0]
    row = np.empty(3000, np.int64)
    count = np.empty((1 << (53 - shift)) + 1, np.int64)
    call(kernels.sampling.stable_order, q, row, count, np.uint64(shift))
    assert np.array_equal(row, np.argsort(q, kind="stable"))


def test_from_arrays_and_load_npz_check_the_test_split(tmp_path):
    x, y = np.ones((4, 2)), np.arange(4)
    for extra, only in (({"x_test": np.ones((2, 2))}, "x_test"), ({"y_test": np.arange(2)},
                                                                      "y_test")):
        p = tmp_path / f"{only}.npz"
        np.savez(p, x_train=x, y_train=y, **extra)      # x_test alone: "len() of unsized object"
        with pytest.raises(ValueError, match=rf"load_npz: .*{only}.npz: .*from_arrays: give "
                                             rf"x_test and y_test together, or neither \(no "
                                             rf"test set\). Got only {only}.$"):
            datasets.load_npz(p)
    with pytest.raises(ValueError, match=r"^The 'x_test' parameter of fastinit.datasets."
                                         r"from_arrays must be 2-D \(samples, features\), as "
                                         r"wide as x_train. Got shape \(2, 5\).$"):
        datasets.from_arrays(x, y, np.ones((2, 5)), np.arange(2))
    with pytest.raises(ValueError, match=r"^The 'y_train' parameter of .* must be 1-D \(labels, "
                                         r"targets\) or 2-D \(samples, outputs\). Got shape "
                                         r"\(\).$"):
        datasets.from_arrays(x, None)
    p = tmp_path / "objects.npz"
    np.savez(p, x=np.array([1, "a", None], dtype=object), y=np.arange(3))
    with pytest.raises(ValueError, match=r"objects.npz holds object \(pickled\) arrays; "
                                         r"fastinit loads arrays of numbers only.$"):
        datasets.load_npz(p)
    p = tmp_path / "scalar.npz"
    np.savez(p, x=np.float64(1.0), y=np.arange(3))
    with pytest.raises(ValueError, match=r"'x_train' parameter .* Got shape \(\).$"):
        datasets.load_npz(p)


def test_blobs_checks_box():
    for box, what in ((float("nan"), "a finite real number"), (-1.0, r"in the interval \[0.0")):
        with pytest.raises(ValueError, match=rf"^The 'box' parameter of fastinit.datasets.blobs "
                                             rf"must be {what}"):
            datasets.blobs(box=box)                    # nan: every point was nan


def test_load_mnist_names_itself_for_a_missing_or_broken_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^fastinit.datasets.load_mnist: .*nowhere does "
                                                r"not exist \(give a directory"):
        datasets.load_mnist(tmp_path / "nowhere")
    with pytest.raises(TypeError, match=r"^The 'path' parameter of fastinit.datasets.load_mnist"):
        datasets.load_mnist(None)
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte"]
    for content, suffix, why in ((b"\x00\x00\x08\x03\x00\x00", "", "unpack requires"),
                                 (b"\x1f\x8b cut-off gzip", ".gz", "Unknown compression")):
        folder = tmp_path / f"broken{suffix}"
        folder.mkdir()
        for stem in stems:
            (folder / (stem + suffix)).write_bytes(content)
        with pytest.raises(ValueError, match=rf"^fastinit.datasets.load_mnist: .*"
                                             rf"train-images-idx3-ubyte{suffix}: not a readable "
                                             rf"IDX file \({why}"):
            datasets.load_mnist(folder)


def test_load_dataset_names_a_bad_name():
    with pytest.raises(ValueError, match=r"Got 'digit'. Did you mean 'digits'\?$"):
        datasets.load_dataset("digit")
    with pytest.raises(TypeError, match=r"^The 'name' parameter of fastinit.datasets."
                                        r"load_dataset must be a str .* Got int.$"):
        datasets.load_dataset(3)                  # was "'int' object has no attribute 'partition'"


@pytest.mark.parametrize("teacher, kind, match", [
    (5, TypeError, r"'teacher' parameter of fastinit.datasets.teacher_student must be the "
                   r"teacher's layer sizes, input width first and outputs last, e.g. "
                   r"\(20, 32, 1\). Got 5."),
    ((20,), TypeError, r"'teacher' parameter .* Got \(20,\)"),
    ((20, 0, 1), ValueError, r"'teacher' parameter of fastinit.datasets.teacher_student"),
    ((20, 2.5, 1), TypeError, r"'teacher' parameter of fastinit.datasets.teacher_student")])
def test_teacher_sizes_are_checked_and_named(teacher, kind, match):
    """teacher=5 raised Python's "'int' object is not iterable"; bad sizes named fastinit.MLP."""
    with pytest.raises(kind, match=match):
        datasets.teacher_student(n=20, teacher=teacher)


def test_a_missing_file_is_named_by_the_function_given_it(tmp_path):
    # load_npz and MLP.load raised NumPy's bare "[Errno 2] No such file or directory", and
    # load_fashion_mnist's errors named load_mnist
    missing = tmp_path / "missing.npz"
    for call, func in ((datasets.load_npz, "fastinit.datasets.load_npz"),
                       (fastinit.MLP.load, "fastinit.MLP.load"),
                       (fastinit.ResMLP.load, "fastinit.ResMLP.load"),
                       (datasets.load_fashion_mnist, "fastinit.datasets.load_fashion_mnist")):
        with pytest.raises(FileNotFoundError, match=rf"^{func}: .*missing.npz does not exist"):
            call(missing)
    with pytest.raises(FileNotFoundError, match=r"^fastinit.datasets.load_fashion_mnist: "
                                                r"train-images-idx3-ubyte\[.gz\] not found"):
        datasets.load_fashion_mnist(tmp_path)


def test_an_npz_with_capital_x_loads_as_fastinit_train_names_its_arrays(tmp_path):
    # fastinit.train's data is (X_train, y_train, X_test, y_test); an npz saved with those
    # names was refused: "must hold x_train and y_train ... Found ['X_test', 'X_train', ...]"
    x, y = np.arange(24.0).reshape(8, 3), np.arange(8) % 2
    np.savez(tmp_path / "a.npz", X_train=x, y_train=y, X_test=x[:2], y_test=y[:2])
    np.savez(tmp_path / "b.npz", X=x, y=y)
    a, b = datasets.load_npz(tmp_path / "a.npz"), datasets.load_npz(tmp_path / "b.npz")
    np.testing.assert_array_equal(a.x_train, x)
    np.testing.assert_array_equal(a.x_test, x[:2])
    np.testing.assert_array_equal(b.x_train, x)
    np.savez(tmp_path / "c.npz", x=x, X=-x, y=y)                  # both: x is x
    np.testing.assert_array_equal(datasets.load_npz(tmp_path / "c.npz").x_train, x)


def _mnist_files(folder, names=lambda stem: stem, content=lambda data: data):
    """The four IDX files of a tiny MNIST in ``folder`` (made), each name from its LeCun stem
    by ``names``, each file's bytes by ``content``; the arrays (x_train, y_train, x_test, y_test)."""
    g = np.random.default_rng(2)
    arrays = {"train-images-idx3-ubyte": g.integers(0, 256, (6, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": g.integers(0, 10, 6, dtype=np.uint8),
              "t10k-images-idx3-ubyte": g.integers(0, 256, (3, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": g.integers(0, 10, 3, dtype=np.uint8)}
    for stem, arr in arrays.items():
        target = folder / names(stem)
        target.parent.mkdir(parents=True, exist_ok=True)
        header = b"\x00\x00\x08" + bytes([arr.ndim]) + struct.pack(">" + "I" * arr.ndim,
                                                                    *arr.shape)
        target.write_bytes(content(header + arr.tobytes()))
    return list(arrays.values())


@pytest.mark.parametrize("layout", ["kaggle", "torchvision", "gz_unpacked", "gz_unnamed"])
def test_load_mnist_finds_the_files_as_users_have_them(tmp_path, layout):
    # Kaggle's zip holds train-images.idx3-ubyte next to a folder train-images-idx3-ubyte/
    # holding the file again: the folder was opened as the file ("Is a directory"). A browser
    # that unpacks a download keeps its .gz name, and a gzip saved without .gz was read raw:
    # both were "not an IDX file". torchvision keeps the files in root/MNIST/raw.
    if layout == "kaggle":
        xs = _mnist_files(tmp_path, lambda stem: stem.replace("-idx", ".idx"))
        _mnist_files(tmp_path, lambda stem: f"{stem}/{stem}")
    elif layout == "torchvision":
        xs = _mnist_files(tmp_path, lambda stem: f"MNIST/raw/{stem}.gz", gzip.compress)
    elif layout == "gz_unpacked":
        xs = _mnist_files(tmp_path, lambda stem: stem + ".gz")
    else:
        xs = _mnist_files(tmp_path, content=gzip.compress)
    ds = datasets.load_mnist(tmp_path)
    for got, want in zip((ds.x_train, ds.y_train, ds.x_test, ds.y_test), xs):
        np.testing.assert_array_equal(got, want.reshape(len(want), -1) / 255.0
                                      if want.ndim == 3 else want)


def test_load_mnist_does_not_scale_pixels_already_in_0_1(tmp_path):
    # An .npz of float pixels already divided by 255 was divided again: pixels in [0, 1/255].
    g = np.random.default_rng(3)
    x, xt = g.random((5, 28, 28)).astype(np.float32), g.random((2, 28, 28)).astype(np.float32)
    np.savez(tmp_path / "scaled.npz", x_train=x, y_train=np.arange(5), x_test=xt,
             y_test=np.arange(2))
    ds = datasets.load_mnist(tmp_path / "scaled.npz")
    np.testing.assert_array_equal(ds.x_train, x.reshape(5, -1))
    np.testing.assert_array_equal(ds.x_test, xt.reshape(2, -1))
    raw = x * 255
    np.savez(tmp_path / "raw.npz", x_train=raw, y_train=np.arange(5), x_test=xt * 255,
             y_test=np.arange(2))
    np.testing.assert_allclose(datasets.load_mnist(tmp_path / "raw.npz").x_train,
                               raw.reshape(5, -1) / 255.0)


def test_a_relative_file_dataset_is_located_as_the_system_opens_it(tmp_path, monkeypatch):
    """A sweep's client makes a relative npz:PATH absolute for its workers. It normalised the
    text, so link/../x.npz became ./x.npz, while the system opens the parent of link's target:
    another file, loaded by the workers and cached under the other's name. Now the path is
    joined, not normalised, and loads the file preflight opened."""
    rng = np.random.default_rng(0)
    (tmp_path / "cwd").mkdir()
    (tmp_path / "other" / "deep").mkdir(parents=True)
    np.savez(tmp_path / "cwd" / "x.npz", x=rng.standard_normal((20, 5)), y=np.arange(20) % 2)
    np.savez(tmp_path / "other" / "x.npz", x=rng.standard_normal((20, 3)), y=np.arange(20) % 2)
    os.symlink(tmp_path / "other" / "deep", tmp_path / "cwd" / "link")
    monkeypatch.chdir(tmp_path / "cwd")
    name = "npz:link/../x.npz"
    where = datasets.located(name)
    assert where == f"npz:{tmp_path / 'cwd'}/link/../x.npz"
    assert datasets.load_dataset(where).x_train.shape[1] == 3      # other/x.npz, as opened
    assert datasets.load_dataset("npz:x.npz").x_train.shape[1] == 5
    assert datasets.located("digits") == "digits"
    assert datasets.located(f"npz:{tmp_path}/a.npz") == f"npz:{tmp_path}/a.npz"


def test_a_worker_that_cannot_see_the_clients_path_opens_the_spec_path(tmp_path, monkeypatch):
    """A Dask worker that sees the project under another mount point, started in its
    directory, opened the spec's relative path; the client's absolute path (sent since runs
    load what preflight checked) is not there: the worker falls back to the spec's path."""
    np.savez(tmp_path / "x.npz", x=np.zeros((20, 5)), y=np.arange(20) % 2)
    monkeypatch.chdir(tmp_path)
    assert datasets.reachable(f"npz:{tmp_path}/x.npz", "npz:x.npz") == f"npz:{tmp_path}/x.npz"
    assert datasets.reachable("npz:/no/such/mount/x.npz", "npz:x.npz") == "npz:x.npz"
    assert datasets.reachable(None, "digits") == "digits"
