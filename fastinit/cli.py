"""The fastinit command line: demo, sweep, profile, report, schemes, warmup, bench, completion."""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import time
from platform import python_version

import numba
import numpy as np

from . import __version__, compilelog, completion, examples, overrides, profile_cli, warmup
from .benchsuite.run import run_bench
from .registry import schemes
from .frames import write_parquet
from .report import make_report, pick_sweep, text_table
from .report_html import write_interactive
from .runkeys import describe
from .sweepspec import SpecError
from .store import Store, StoreError
from .sweep import MAX_RUNS, ExecutorLost, run_sweep
from .training import numba_threads

DEMO_SCHEMES = ["zeros", {"name": "constant", "value": 0.1}, "xavier_normal",
                {"name": "kaiming_normal", "nonlinearity": "relu"}, "lecun_normal",
                "orthogonal", "ZerO", "torch_linear"]
DEMO_SPEC = {
    "name": "demo",
    "grid": {"scheme": DEMO_SCHEMES, "seed": [0, 1, 2, 3, 4], "depth": [2, 6, 12]},
    "train": {"dataset": "digits", "width": 64, "activation": "relu", "epochs": 15,
              "batch_size": 32, "optimizer": "momentum", "lr": 0.02},
}


def _progress(args) -> bool:
    return not args.quiet and sys.stderr.isatty()


class ConnectError(Exception):
    """The sweep's cluster cannot be reached: one line, exit status 2."""


def _scheduler_file(path: str) -> str:
    """The scheduler's address from a Dask scheduler file (``dask scheduler
    --scheduler-file PATH`` writes it), or ConnectError saying what is wrong with it."""
    try:
        with open(path) as f:
            address = json.load(f).get("address")
    except FileNotFoundError:
        raise ConnectError(f"--scheduler-file {path}: no such file (start the scheduler with "
                           f"`dask scheduler --scheduler-file {path}` first)") from None
    except (OSError, ValueError, AttributeError) as e:
        raise ConnectError(f"--scheduler-file {path}: not a Dask scheduler file "
                           f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else e})"
                           ) from None
    if not isinstance(address, str):
        raise ConnectError(f"--scheduler-file {path}: not a Dask scheduler file (no "
                           f"\"address\")")
    return address


def _executor(args):
    """(executor, client) for --scheduler ADDRESS or --scheduler-file PATH, else (None,
    None): the local default. ConnectError when the cluster cannot be reached."""
    if not (args.scheduler or args.scheduler_file):
        return None, None
    address = args.scheduler or _scheduler_file(args.scheduler_file)
    try:
        from distributed import Client
    except ImportError:
        raise ConnectError("a Dask scheduler needs Dask: pip install 'fastinit[dask]'") \
            from None
    try:
        client = Client(address, timeout=30)
    except (OSError, TimeoutError, ValueError, TypeError) as e:   # TypeError: tls/ucx unset
        raise ConnectError(f"cannot reach the Dask scheduler {address}: "
                           f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") \
            from None
    quiet_closed_connections()
    return client.get_executor(), client


class _ClosedConnections(logging.Filter):
    """Drops what Dask's and tornado's event loops log, traceback and all, when a connection
    closes under them (the scheduler or a worker gone): the sweep says so itself, in one line
    on stderr (ExecutorLost), before the client's own reconnecting would."""

    def filter(self, record) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], (OSError, EOFError)))


def quiet_closed_connections() -> None:
    """_ClosedConnections on the loggers (and their handlers) that Dask's client and tornado
    log a lost connection through."""
    drop = _ClosedConnections()
    for name in ("tornado.application", "tornado.general", "distributed"):
        logger = logging.getLogger(name)
        logger.addFilter(drop)
        for handler in logger.handlers:
            handler.addFilter(drop)


def _saved(db) -> int:
    try:
        with Store(db, readonly=True) as s:
            return s.count()
    except StoreError:          # stopped before the database was made
        return 0


def _stderr(command: str):
    return lambda msg: print(f"fastinit {command}: {msg}", file=sys.stderr, flush=True)


def _timed_sweep(spec, db, rate=False, **kwargs):
    """run_sweep, and the line that says how long its runs trained: the wall time without
    compiling or loading kernels in this process, the compile time stated apart, once."""
    t0 = time.perf_counter()
    with compilelog.announcing() as block:
        res = run_sweep(spec, db, **kwargs)
    compilelog.flush()
    trained = max(time.perf_counter() - t0 - block.ready, 0.0)
    return res, timing_line(res.ran, trained, block.compiled, block.ready, rate)


def timing_line(ran: int, trained: float, compiled: float, ready: float,
                rate: bool = False) -> str:
    """"N runs trained in X s", with the rate, and what compiling took, if anything."""
    notes = [f"{ran / trained:.1f} runs/s"] if rate and ran and trained > 0 else []
    if compiled >= 0.05:
        notes.append(f"plus {ready:.1f} s compiling the kernels for this machine, first run "
                     f"only: they are cached now")
    elif ready >= 0.05:
        notes.append(f"plus {ready:.1f} s loading the compiled kernels")
    return f"{ran} runs trained in {trained:.1f} s" + (f" ({'; '.join(notes)})" if notes else "")


def cmd_sweep(args) -> int:
    log = _stderr("sweep")
    try:
        spec = overrides.load(args.spec, args.overrides)
        executor, client = _executor(args)
        try:
            res, timing = _timed_sweep(
                spec, args.db, rate=True, executor=executor, progress=_progress(args),
                threads=args.threads, max_in_flight=args.max_in_flight,
                max_runs=args.max_runs, log=log)
        except ExecutorLost:
            # the client's own reconnect attempts would log tracebacks as it closes
            logging.disable(logging.ERROR)
            raise
        finally:
            if client is not None:
                client.close(timeout=10)
        with Store(args.db, readonly=True) as s:
            rows = s.rows(spec.name)
    except (SpecError, StoreError, ConnectError) as e:
        log(overrides.blame(str(e), args.overrides) if isinstance(e, SpecError) else str(e))
        return 2
    except ExecutorLost as e:
        log(f"stopped: {e.reason}; {_saved(args.db)} runs are saved in {args.db}. Run the "
            f"same command again to finish the rest.")
        return 3
    except KeyboardInterrupt:
        print(f"\nfastinit sweep: stopped; {_saved(args.db)} runs are saved in {args.db}. Run "
              f"the same command again to finish the rest.", file=sys.stderr)
        return 130
    if not args.quiet:
        print(text_table(rows))
        print(f"\n{timing}, {res.skipped} already done, {res.failed} failed; results in "
              f"{args.db}")
    if res.failed:
        log(f"{res.failed} of {res.total} runs failed (reasons above, and in the database's "
            f"error column); running the same command again retries them.")
    if args.report:
        files = make_report(args.db, args.report, spec.name)
        if not args.quiet:
            print(f"report: {files['index.html']}")
    return 1 if res.failed else 0


def cmd_report(args) -> int:
    try:
        with Store(args.db, readonly=True) as s:
            sweep = pick_sweep(s, args.sweep)
            rows = s.rows(sweep)
            if args.csv:
                s.export_csv(args.csv, sweep)
            if args.json:
                s.export_json(args.json, sweep)
        if args.parquet:
            parquet = write_parquet(args.db, args.parquet, sweep)
        if not args.quiet:
            print(text_table(rows))
        files = make_report(args.db, args.out, sweep)
        if args.interactive:
            page = write_interactive(args.db, args.out, sweep)["interactive.html"]
    except (StoreError, ImportError) as e:
        _stderr("report")(str(e))
        return 2
    if not args.quiet:
        print(f"report: {files['index.html']} ({len(files) - 1} figures)")
        if args.interactive:
            print(f"interactive report: {page}")
        if args.parquet:
            print(f"parquet: {parquet['runs']} (runs), {parquet['curves']} (curves)")
    return 0


def cmd_demo(args) -> int:
    if args.name != "sweep":
        if args.interactive:            # the sweep demo's report; an example draws one PNG
            _stderr("demo")(f"--interactive is the sweep demo's: {args.name} writes a PNG only.")
            return 2
        os.makedirs(args.out, exist_ok=True)
        with numba_threads(args.threads), \
                contextlib.redirect_stdout(io.StringIO() if args.quiet else sys.stdout):
            path = examples.EXAMPLES[args.name](args.out)
        if not args.quiet:
            print(f"wrote {path}")
        return 0
    os.makedirs(args.out, exist_ok=True)
    db = os.path.join(args.out, "demo.db")
    t0 = time.perf_counter()
    if not args.quiet:
        print(f"fastinit demo: {len(DEMO_SCHEMES)} schemes x 5 seeds x 3 depths "
              f"(2, 6, 12 hidden layers of 64 relu units) on the UCI digits, 15 epochs each")
    res, timing = _timed_sweep(DEMO_SPEC, db, progress=_progress(args), threads=args.threads)
    with Store(db) as s:
        rows = s.rows("demo")
    files = make_report(db, args.out, "demo")
    if args.interactive:
        files.update(write_interactive(db, args.out, "demo"))
    if not args.quiet:
        print(text_table(rows))
        print(f"\n{timing}; {time.perf_counter() - t0:.1f} s in all; results in {db}; report: "
              f"{files['index.html']}"
              + (f" and {files['interactive.html']}" if args.interactive else ""))
        print(examples.symmetric_verdict(rows))
    return 0


def cmd_schemes(args) -> int:
    rows = []
    for name, s in schemes().items():
        params = ", ".join(p.name if repr(p.default) == "<required>" else
                           f"{p.name}={p.default!r}" for p in s.params)
        rows.append((f"{name}({params})" if params else name, s.framework, s.formula,
                     ", ".join(s.aliases)))
    if args.markdown:
        print("| scheme | framework | formula | aliases |\n|---|---|---|---|")
        for r in rows:
            print(f"| `{r[0]}` | {r[1]} | {r[2]} | {', '.join(f'`{a}`' for a in r[3].split(', ') if a)} |")
    else:
        for r in rows:
            print(f"{r[0]:<52} {r[1]:<10} {r[2]}" + (f"  (aliases: {r[3]})" if r[3] else ""))
    return 0


def cmd_warmup(args) -> int:
    seconds = warmup.warmup(jobs=args.jobs)
    compilelog.flush()
    if not args.quiet:
        print(f"fastinit warmup: kernels ready in {seconds:.1f} s (cached on disk for the next "
              f"process)")
    return 0


def cmd_completion(args) -> int:
    print(completion.script(parser(), args.shell), end="")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer. Got {text!r}.")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fastinit", description="Fast, reproducible weight-"
                                "initialization studies: sample, train, sweep, report.")
    p.add_argument("--version", action="version", version=f"fastinit {__version__} (Python "
                   f"{python_version()}, NumPy {np.__version__}, Numba {numba.__version__})")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp, threads=True):
        sp.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
        if threads:
            sp.add_argument("--threads", type=int, default=None,
                            help="Numba threads (default: all cores)")

    d = sub.add_parser("demo", help="a small sweep of the main schemes on the bundled digits, "
                                    "its table and report; or one example",
                       description="Without a name: run 8 schemes x 5 seeds x 3 depths on the "
                       "UCI digits, print the table, write the report. With a name: one example "
                       f"({', '.join(examples.EXAMPLES)}), each writing a PNG.")
    d.add_argument("name", nargs="?", default="sweep",
                   choices=["sweep", *examples.EXAMPLES],
                   help="which demo (default: sweep)")
    d.add_argument("--out", default="fastinit-demo", help="output directory (default: "
                                                          "fastinit-demo)")
    d.add_argument("--interactive", action="store_true", help="also write the interactive "
                   "report, interactive.html (needs plotly)")
    common(d)
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("sweep", help="run a sweep spec (TOML)", description="Run every "
                       "unfinished run of a sweep spec, storing results in SQLite as each "
                       "population finishes; re-running resumes. The whole spec is checked "
                       "before the first run trains.", epilog="run keys ([grid] lists or "
                       "[train] values; name, default, meaning):\n" + describe(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("spec", help="the sweep spec, a TOML file")
    s.add_argument("overrides", nargs="*", metavar="PATH=VALUE", help="change the spec "
                   "before it is checked, values in TOML: grid.lr=[0.1,0.01] train.epochs=5")
    s.add_argument("--db", default="runs.db", help="results database (default: runs.db)")
    where = s.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="a Dask scheduler, e.g. tcp://host:8786 (default: this machine)")
    where.add_argument("--scheduler-file", default=None, metavar="PATH",
                       help="the file a Dask scheduler wrote (dask scheduler --scheduler-file "
                            "PATH), as on HPC systems")
    s.add_argument("--max-in-flight", type=_positive, default=None, metavar="N",
                   help="populations submitted and not yet stored (default: twice the "
                        "cluster's worker threads)")
    s.add_argument("--report", default=None, metavar="DIR", help="also write the report here")
    s.add_argument("--max-runs", type=_positive, default=MAX_RUNS, metavar="N",
                   help=f"refuse a grid of more than N runs (default: {MAX_RUNS:,})")
    common(s, threads=False)
    s.add_argument("--threads", type=int, default=None, help="Numba threads per "
                   "population (default: all cores here; on a cluster, a worker's cores / its "
                   "threads)")
    s.set_defaults(func=cmd_sweep)

    profile_cli.add_parser(sub, _positive)

    r = sub.add_parser("report", help="figures and an HTML summary from a results database",
                       description="Write PNG figures and index.html for the runs in DB.")
    r.add_argument("db", help="results database")
    r.add_argument("--out", default="report", help="output directory (default: report)")
    r.add_argument("--sweep", default=None, metavar="NAME", help="the runs of this sweep's "
                   "current spec (needed when the database holds several sweeps)")
    r.add_argument("--csv", default=None, metavar="PATH", help="also export the runs as CSV")
    r.add_argument("--json", default=None, metavar="PATH", help="also export as JSON")
    r.add_argument("--parquet", default=None, metavar="PATH", help="also export the runs "
                   "(PATH) and their curves (PATH with .curves before .parquet) as Parquet "
                   "(needs pandas and pyarrow)")
    r.add_argument("--interactive", action="store_true", help="also write interactive.html: "
                   "plotly figures and a sortable table, offline (needs plotly)")
    common(r, threads=False)
    r.set_defaults(func=cmd_report)

    c = sub.add_parser("schemes", help="list the registered init schemes",
                       description="List every registered scheme with its formula.")
    c.add_argument("--markdown", action="store_true", help="as a markdown table")
    c.set_defaults(func=cmd_schemes)

    w = sub.add_parser("warmup", help="compile every kernel into the on-disk cache",
                       description="Compile (or load) every kernel for float32 and float64, "
                       "the kernels not yet cached in parallel processes.")
    w.add_argument("--jobs", type=_positive, default=None, metavar="N", help="processes "
                   "compiling at once "
                   "(default: the cores this process may use)")
    common(w, threads=False)
    w.set_defaults(func=cmd_warmup)

    b = sub.add_parser("bench", help="the benchmark suite: throughput and convergence",
                       description="Run the benchmark suite and write a markdown table and "
                       "plots.")
    b.add_argument("--threads", default=None, help="thread counts, e.g. 1,2 (default: 1 and "
                                                   "all cores)")
    b.add_argument("--quick", action="store_true", help="small cases, under 2 minutes")
    b.add_argument("--out", default="bench-out", help="output directory (default: bench-out)")
    b.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    b.set_defaults(func=run_bench)

    sh = sub.add_parser("completion", help="print a shell completion script",
                        description="Print a completion script for bash or zsh: eval "
                        "\"$(fastinit completion bash)\" in ~/.bashrc; for zsh, save it as "
                        "_fastinit in a directory of $fpath.")
    sh.add_argument("shell", choices=completion.SHELLS, help="bash or zsh")
    sh.set_defaults(func=cmd_completion)
    return p


def main(argv=None) -> int:
    p = parser()
    args, extra = p.parse_known_args(argv)
    if args.command in ("sweep", "profile") and args.spec is not None:
        # PATH=VALUE overrides after options (argparse stops early)
        args.overrides += [a for a in extra if "=" in a and not a.startswith("-")]
        extra = [a for a in extra if a not in args.overrides]
    if extra:
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    quiet = getattr(args, "quiet", False)
    with compilelog.on_stderr(logging.WARNING if quiet else logging.INFO), \
            compilelog.announcing():
        return _run(p, args)


def _run(p, args) -> int:
    if getattr(args, "threads", None) is not None and args.command not in ("bench", "profile"):
        # a cluster's workers may have more cores than this machine
        on_cluster = getattr(args, "scheduler", None) or getattr(args, "scheduler_file", None)
        most = None if on_cluster else numba.config.NUMBA_NUM_THREADS
        if args.threads < 1 or most is not None and args.threads > most:
            want = f"in [1, {most}]" if most else ">= 1"
            print(f"fastinit: --threads must be {want}. Got {args.threads}.", file=sys.stderr)
            return 2
    try:
        return args.func(args)
    except OSError as e:
        if e.filename is None:      # not a path the user gave: a bug, shown in full
            raise
        _stderr(args.command)(f"{e.filename}: {e.strerror or e}.")
        return 2


if __name__ == "__main__":
    sys.exit(main())
