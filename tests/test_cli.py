"""fastinit sweep / report as a user meets them: the whole spec checked before anything trains,
failures said on stderr, bad files in one line, no tqdm needed, an HTML page that escapes."""
import io
import re
import sys

import numpy as np
import pytest

import fastinit
import fastinit.cli as cli
import fastinit.sweep as sweep_mod
from fastinit.store import Store


def _sweep(tmp_path, capsys, toml, *extra):
    spec = tmp_path / "spec.toml"
    spec.write_text(toml)
    db = tmp_path / "runs.db"
    code = cli.main(["sweep", str(spec), "--db", str(db), "-q", *extra])
    return code, capsys.readouterr().err, spec, db


def _npz(tmp_path):
    g = np.random.default_rng(0)
    np.savez(tmp_path / "noxy.npz", a=np.zeros(3))
    np.savez(tmp_path / "neg.npz", x=g.random((20, 3)), y=np.full(20, -1))
    return tmp_path


HEAD = "[grid]\nseed = [0, 1]\n[train]\nepochs = 1\nwidth = 8\n"


@pytest.mark.parametrize("body,match", [
    ('dataset = "npz:{d}/missing.npz"',
     r"\[train\].dataset: cannot load 'npz:.*missing.npz': fastinit.datasets.load_npz: "
     r".*missing.npz does not exist.$"),
    ('dataset = "mnist:{d}/nowhere"',
     r"\[train\].dataset: cannot load 'mnist:.*nowhere'"),
    ('dataset = "npz:{d}/noxy.npz"',
     r"\[train\].dataset: cannot load .*noxy.npz must hold x_train and y_train"),
    ('dataset = "npz:{d}/neg.npz"',
     r"\[train\].dataset: .*neg.npz: The class labels .* must be 0, 1, 2, ... Got labels in "
     r"\[-1, -1\]"),
    ('loss = "bce"', r"\[train\].loss: loss 'bce' needs float targets, but dataset 'digits' "
                     r"holds class labels \(10 classes\): use loss = \"cross_entropy\""),
    ('loss = "mse"', r"\[train\].loss: loss 'mse' needs float targets"),
    ('dataset = "teacher_student"\nloss = "cross_entropy"',
     r"\[train\].loss: loss 'cross_entropy' needs class labels, but dataset 'teacher_student' "
     r"is a regression task: use loss = 'mse'"),
    ("weight_decay = inf", r"\[train\].weight_decay: weight_decay must be a finite "
                           r"non-negative number. Got inf."),
    ("activation_param = nan", r"\[train\].activation_param: activation_param must be a "
                               r"finite number. Got nan."),
    ('activation = "softplus"\nactivation_param = -1.0',
     r"\[train\].activation_param: softplus cannot be built: .*must be > 0"),
    ('residual = "fixup"\ndepth = 0', r"\[train\].depth: depth must be >= 1 with residual = "
                                      r"'fixup'"),
    ('scheme = "dirac"', r"\[train\].scheme: scheme dirac cannot initialise a dense layer"),
])
def test_the_whole_spec_is_checked_before_anything_trains(tmp_path, capsys, body, match):
    d = _npz(tmp_path)
    toml = "[grid]\nseed = [0, 1]\n[train]\nepochs = 1\nwidth = 8\n" + body.format(d=d) + "\n"
    code, err, spec, db = _sweep(tmp_path, capsys, toml)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"fastinit sweep: {spec}: ")
    assert re.search(match, err), err
    assert not db.exists()                  # nothing trained, no database written


def test_bad_grid_values_name_their_index(tmp_path, capsys):
    code, err, spec, db = _sweep(tmp_path, capsys, '[grid]\nloss = ["cross_entropy", "mse"]\n'
                                                   '[train]\nepochs = 1\n')
    assert code == 2 and f"{spec}: [grid].loss[1]: loss 'mse' needs float targets" in err


@pytest.mark.parametrize("threads", ["0", "-1", "99999"])
def test_threads_zero_is_refused(tmp_path, capsys, threads):
    code, err, spec, db = _sweep(tmp_path, capsys, HEAD, "--threads", threads)
    assert code == 2 and "fastinit: --threads must be in [1, " in err and not db.exists()
    assert err.endswith(f"]. Got {threads}.\n") and err.count("\n") == 1
    assert cli.main(["demo", "symmetry", "--threads", threads, "--out", str(tmp_path / "d")]) \
        == 2
    assert capsys.readouterr().err.endswith(f"]. Got {threads}.\n")
    assert not (tmp_path / "d").exists()


def test_run_time_failures_print_their_reason_even_with_q(tmp_path, capsys, monkeypatch):
    def broken(configs, *a, **k):
        raise MemoryError("no room for 2 networks")
    monkeypatch.setattr(sweep_mod, "run_population", broken)
    code, err, spec, db = _sweep(tmp_path, capsys, HEAD)
    assert code == 1
    assert "fastinit sweep: 2 run(s) failed (" in err and "MemoryError: no room for 2 networks" \
        in err
    assert "2 of 2 runs failed (reasons above" in err


def test_spec_paths_that_are_no_spec_files(tmp_path, capsys):
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    for path, match in ((binary, "not a text file: a sweep spec is TOML (UTF-8)."),
                        (tmp_path, "is a directory, not a sweep spec (TOML) file.")):
        assert cli.main(["sweep", str(path), "--db", str(tmp_path / "x.db")]) == 2
        err = capsys.readouterr().err
        assert err == f"fastinit sweep: {path}: {match}\n"


def test_max_runs_flag(tmp_path, capsys):
    code, err, spec, db = _sweep(tmp_path, capsys, HEAD, "--max-runs", "1")
    assert code == 2 and "[grid]: 2 runs (2 seed) is more than max_runs = 1." in err
    for bad in ("0", "zero"):
        with pytest.raises(SystemExit):
            cli.main(["sweep", str(spec), "--max-runs", bad])
        assert f"--max-runs: must be a positive integer. Got '{bad}'." in \
            capsys.readouterr().err


def test_sweep_help_lists_every_run_key(capsys):
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--help"])
    out = capsys.readouterr().out
    assert "--max-runs N" in out and "run keys" in out
    for key in ("scheme", "seed", "depth", "residual", "data_init", "weight_decay"):
        assert f"\n  {key} " in out
    # a key with a few named values lists them (residual and data_init did not)
    assert "a ResMLP variant (plain, skipinit, rezero, fixup, zero)" in out
    assert "lsuv or kraehenbuehl" in out


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_without_tqdm_is_a_plain_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)          # import tqdm raises ImportError
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    spec = tmp_path / "p.toml"
    spec.write_text("max_population = 1\n" + HEAD)
    assert cli.main(["sweep", str(spec), "--db", str(tmp_path / "p.db")]) == 0
    text = term.getvalue()
    assert "\rsweep sweep: 0/2 runs" in text and "\rsweep sweep: 2/2 runs" in text
    assert "Traceback" not in text and text.endswith("\n")


def test_html_report_escapes_every_stored_string(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    db = tmp_path / "x.db"
    spec = {"name": "x", "grid": {"seed": [0, 1]}, "train": {"epochs": 1, "width": 8}}
    sweep_mod.run_sweep(spec, db)
    evil = "<script>alert(1)</script>"
    with Store(db) as s:
        s.con.execute("UPDATE runs SET activation = ?, scheme = ?", (evil, evil + "b"))
    out = tmp_path / "rep"
    assert cli.main(["report", str(db), "--out", str(out), "-q"]) == 0
    page = (out / "index.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_output_paths_that_cannot_be_written_are_one_line(tmp_path, capsys):
    """An export or report path that cannot be written (no such directory, a file where a
    directory goes) is one line on stderr and status 2, after the runs are saved."""
    db = tmp_path / "x.db"
    sweep_mod.run_sweep({"name": "x", "grid": {"seed": [0]},
                         "train": {"epochs": 1, "width": 8}}, db)
    spec = tmp_path / "spec.toml"
    spec.write_text(HEAD)
    missing, a_file = tmp_path / "no" / "such", str(spec)
    for argv, path in ((["report", str(db), "--csv", f"{missing}.csv"], f"{missing}.csv"),
                       (["report", str(db), "--json", f"{missing}.json"], f"{missing}.json"),
                       (["report", str(db), "--out", a_file], a_file),
                       (["sweep", a_file, "--db", str(db), "--report", a_file], a_file),
                       (["demo", "symmetry", "--out", a_file], a_file)):
        assert cli.main(argv + ["-q"] * (argv[0] != "demo")) == 2, argv
        err = capsys.readouterr().err
        assert re.fullmatch(rf"fastinit {argv[0]}: {re.escape(path)}: [^\n]+\.\n", err), err
    with Store(db, readonly=True) as s:
        assert len(s.rows("sweep")) == 2       # the sweep's two runs were saved first


def test_version_names_fastinit_and_what_decides_its_numbers(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"fastinit {fastinit.__version__} (Python ") and "Numba" in out


def test_the_memory_check_refuses_no_population_that_fits(tmp_path, capsys, monkeypatch):
    """The estimate counts only what a population certainly holds at once: 32 runs of [64,
    1024 x 4, 10] with adam peaked at 1.31 GB (parameters and adam's two moments; the
    diagnostics' gradient comes before and after training), so 1.3 GB available passes the
    check; the first estimate (parameters, a population-wide gradient, the state) said 1.65."""
    from fastinit import preflight

    def refuse(key, value, msg):
        raise ValueError(msg)
    monkeypatch.setattr(preflight, "available_memory", lambda: int(1.3e9))
    sp = fastinit.sweepspec.SweepSpec.from_dict({"grid": {"seed": list(range(32))}, "train": {
        "width": 1024, "depth": 4, "optimizer": "adam", "epochs": 1}})
    d = fastinit.datasets.digits()
    preflight._check_memory(sp, d, refuse)
    monkeypatch.setattr(preflight, "available_memory", lambda: int(1.2e9))
    with pytest.raises(ValueError, match="needs at least 1.24 GB"):
        preflight._check_memory(sp, d, refuse)

@pytest.mark.parametrize("train,match", [
    ("epochs = 100000000000", r"\[train\].epochs: a population of 2 runs over 100000000000 "
                              r"epochs needs at least [0-9.e+]+ GB \(its History\) but "),
    ("width = 1000000000", r"\[train\].width: a population of 2 runs of \[64, 1000000000, "
                           r"1000000000, 10\] needs at least [0-9.e+]+ GB \(parameters and "
                           r"sgd state or diagnostics\) but "),
])
def test_a_population_too_big_for_this_machine_is_refused_before_anything_trains(
        tmp_path, capsys, train, match):
    """A spec whose populations cannot fit in memory failed at run time: each population a
    stored failure with NumPy's MemoryError, after the runs before it had trained."""
    code, err, spec, db = _sweep(tmp_path, capsys, "[grid]\nseed = [0, 1]\n[train]\n"
                                 + train + "\n")
    assert code == 2 and err.count("\n") == 1, err
    assert re.search(match, err) and "GB of memory is available" in err, err
    assert not db.exists()
