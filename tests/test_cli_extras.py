"""Command-line conveniences: PATH=VALUE overrides of a sweep spec (TOML values, applied before
the checks, so the sweep's version reflects them) and shell completion scripts."""
import shutil
import subprocess

import pytest

import fastinit.cli as cli
from fastinit import completion, examples, overrides
from fastinit.store import Store
from fastinit.sweepspec import SpecError, SweepSpec

SPEC = 'name = "o"\n[grid]\nseed = [0]\n[train]\nepochs = 1\nwidth = 8\nlr = 0.05\n'


def test_overrides_change_the_spec_before_it_is_checked(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    db = tmp_path / "runs.db"
    assert cli.main(["sweep", str(spec), "--db", str(db), "-q"]) == 0
    assert cli.main(["sweep", str(spec), "grid.lr=[0.1,0.01]", "--db", str(db), "-q",
                     "train.epochs=2", "train.activation=tanh"]) == 0   # before and after options
    same = tmp_path / "same.toml"
    same.write_text('name = "o"\n[grid]\nseed = [0]\nlr = [0.1, 0.01]\n[train]\nepochs = 2\n'
                    'width = 8\nactivation = "tanh"\n')
    with Store(db, readonly=True) as s:
        rows = s.rows("o")
        (current,) = [w for w in s.sweeps() if w["name"] == "o"]
    assert sorted(r["lr"] for r in rows) == [0.01, 0.1]
    assert {r["epochs"] for r in rows} == {2} and {r["activation"] for r in rows} == {"tanh"}
    assert current["spec_hash"] == SweepSpec.from_toml(same).hash()       # the version too
    assert "sweep 'o': the spec changed since it last ran" in capsys.readouterr().err


def test_override_values_are_toml():
    body = {"grid": {"seed": [0]}, "train": {"lr": 0.05}}
    out = overrides.apply(body, ["grid.lr=[0.1, 0.01]", 'train.scheme={name = "orthogonal", '
                                 'gain = 2.0}', "train.dataset=two_spirals", "diagnose=false",
                                 "data.two_spirals.n=300", 'name="x y"'])
    assert out == {"grid": {"seed": [0], "lr": [0.1, 0.01]},
                   "train": {"scheme": {"name": "orthogonal", "gain": 2.0},
                             "dataset": "two_spirals"},
                   "diagnose": False, "data": {"two_spirals": {"n": 300}}, "name": "x y"}
    assert body == {"grid": {"seed": [0]}, "train": {"lr": 0.05}}      # the input untouched
    assert overrides.apply(out, ["train.lr=0.3"])["grid"] == {"seed": [0]}   # axis -> fixed


@pytest.mark.parametrize("override,match", [
    ("grid.lr=[0.1,", r"override 'grid.lr=\[0.1,': '\[0.1,' is not a TOML value \(.*\); write "
                      r"strings in quotes, lists as \[1, 2\], tables as \{name = \"x\"\}."),
    ("grid.lr", r"override 'grid.lr': an override is PATH=VALUE, e.g. train.epochs=5"),
    ("gird.lr=[1]", r"override 'gird.lr=\[1\]': unknown spec key 'gird'. Did you mean 'grid'\?"),
    ("grid=[1]", r"override 'grid=\[1\]': write grid.KEY=VALUE."),
    ("name.x=1", r"override 'name.x=1': write name=VALUE."),
    ("grid.lr=[0, 0.1]", r"spec.toml: \[grid\].lr\[0\]: lr must be a positive number. Got 0. "
                         r"\(set by the override 'grid.lr=\[0, 0.1\]'\)"),
    ("train.epochs=five", r"\[train\].epochs: epochs must be a non-negative integer. Got "
                          r"'five'. \(set by the override 'train.epochs=five'\)"),
    ("grid.lrr=[1]", r"\[grid\]: unknown key 'lrr'. Did you mean 'lr'\?.* \(set by the override "
                     r"'grid.lrr=\[1\]'\)"),
])
def test_override_errors_name_the_override(tmp_path, override, match):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    with pytest.raises(SpecError, match=match):
        overrides.load(spec, [override])


def test_cli_override_errors_exit_2_on_one_line(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    assert cli.main(["sweep", str(spec), "grid.lr=[0.1,", "--db", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastinit sweep: override 'grid.lr=[0.1,'") and err.count("\n") == 1
    assert not (tmp_path / "x.db").exists()
    with pytest.raises(SystemExit):
        cli.main(["sweep", str(spec), "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    assert cli.main(["sweep", str(tmp_path / "missing.toml"), "train.epochs=1"]) == 2
    assert "missing.toml: no such sweep spec file." in capsys.readouterr().err



@pytest.mark.parametrize("command", ["sweep", "profile"])
@pytest.mark.parametrize("override,match", [
    ("grid.seed=3", "spec.toml: [grid].seed: must be a list of values (a grid axis). Got 3"),
    ('train.loss="mse"', "spec.toml: [train].loss: loss 'mse' needs float targets, but dataset "
                         "'digits' holds class labels"),
    ('grid.scheme=["dirac"]', "spec.toml: [grid].scheme[0]: scheme dirac cannot initialise a "
                              "dense layer"),
    ("data.digits.test_fraction=2", "spec.toml: dataset (default): cannot load 'digits' "
                                    "with [data].digits options"),
])
def test_errors_found_checking_the_runs_name_the_override_too(tmp_path, capsys, command,
                                                              override, match):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)         # the file is fine: the override made the runs unable to start
    db = tmp_path / "x.db"
    extra = ["--db", str(db)] if command == "sweep" else ["-q"]
    assert cli.main([command, str(spec), override, *extra]) == 2
    err = capsys.readouterr().err
    assert match in err and err.rstrip().endswith(f"(set by the override {override!r})")
    assert err.count("(set by the override") == 1
    assert err.count("\n") == 1 and not db.exists()


@pytest.mark.parametrize("override", ["=3", "grid.seed.x=3"])
def test_an_override_error_names_it_once(tmp_path, override):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    with pytest.raises(SpecError, match=f"^override {override!r}: ") as e:
        overrides.load(spec, [override])
    assert "(set by the override" not in str(e.value)

SUBCOMMANDS = ["demo", "sweep", "profile", "report", "schemes", "warmup", "bench",
               "completion"]
DEMOS = ["sweep", *examples.EXAMPLES]          # what `fastinit demo NAME` accepts, in order
assert DEMOS[:5] == ["sweep", "symmetry", "depth", "linear", "chaos"]


def _script(shell, capsys):
    assert cli.main(["completion", shell]) == 0
    return capsys.readouterr().out


def test_bash_completion_knows_every_subcommand_and_option(capsys, tmp_path):
    text = _script("bash", capsys)
    sub = next(a for a in cli.parser()._actions if hasattr(a, "choices") and a.choices)
    assert sorted(sub.choices) == sorted(SUBCOMMANDS)
    for name in SUBCOMMANDS:
        assert f"{name})" in text
    for flag in ("--interactive", "--parquet", "--max-runs", "--markdown"):
        assert flag in text
    if shutil.which("bash") is None:
        return
    path = tmp_path / "fastinit.bash"
    path.write_text(text)

    def complete(*words):
        line = " ".join(f'"{w}"' for w in words)
        out = subprocess.run(["bash", "-c", f'source "{path}"; COMP_WORDS=(fastinit {line}); '
                              f'COMP_CWORD={len(words)}; _fastinit; echo "${{COMPREPLY[@]}}"'],
                             capture_output=True, text=True, check=True)
        return out.stdout.split()

    assert complete("") == SUBCOMMANDS + ["-h", "--help", "--version"]
    assert complete("--v") == ["--version"]
    assert complete("re") == ["report"]
    assert complete("demo", "") == DEMOS
    assert complete("report", "--in") == ["--interactive"]
    assert complete("report", "--out", "") == []            # a value: the shell's file names
    assert complete("completion", "") == ["bash", "zsh"]


def test_zsh_completion_describes_every_subcommand(capsys, tmp_path):
    text = _script("zsh", capsys)
    assert text.startswith("#compdef fastinit")
    for name in SUBCOMMANDS:
        assert f"\n    {name}) _arguments" in text and f"'{name}:" in text
    assert f"'1:name:({' '.join(DEMOS)})'" in text
    if shutil.which("zsh"):
        path = tmp_path / "_fastinit"
        path.write_text(text)
        subprocess.run(["zsh", "-n", str(path)], check=True)


def test_completion_scripts_come_from_the_parser():
    assert completion.script(cli.parser(), "bash") == completion.bash(cli.parser())
    with pytest.raises(SystemExit):
        cli.main(["completion", "fish"])


def test_schemes_lists_the_aliases(capsys):
    """The README sends readers to `fastinit schemes` for every scheme's aliases; only
    --markdown printed them."""
    assert cli.main(["schemes"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["identity(gain=1.0)"].endswith("(aliases: eye, torch.eye, keras.identity)")
    assert "aliases" not in lines["zeros"]
