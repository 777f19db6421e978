"""Sweeps on pools and clusters: the in-flight window, several populations in one worker process
on every threading layer, lost workers retried, a lost scheduler stopping cleanly, connecting."""
import concurrent.futures as cf
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import numba
import pytest

import fastinit.sweep as sweep_mod
from fastinit import cli, cluster
from fastinit.store import Store
from fastinit.sweep import ExecutorLost, LocalExecutor, run_sweep

# 16 populations of one run each, tiny: what matters is how many run at once
WIDE = {"name": "wide", "max_population": 1, "grid": {"seed": list(range(16))},
        "train": {"epochs": 1, "width": 8}}
SPEC = {"name": "t", "grid": {"scheme": ["zeros", "he_normal"], "seed": [0, 1],
                              "depth": [1, 2]}, "train": {"epochs": 2, "width": 16}}


def _table(db):
    with Store(db) as s:
        return {r["id"]: (r["status"], r["curves"], r["final_test_acc"], r["diagnostics"])
                for r in s.rows()}


@pytest.fixture(scope="module")
def local_tables(tmp_path_factory):
    """The local executor's results, every other executor's reference."""
    d = tmp_path_factory.mktemp("local")
    out = {}
    for spec in (WIDE, SPEC):
        run_sweep(spec, d / f"{spec['name']}.db")
        out[spec["name"]] = _table(d / f"{spec['name']}.db")
    return out


class Probe:
    """Wraps run_population: counts the populations inside it at once. Each of the first
    ``hold`` waits (at most 30 s) until ``hold`` have entered, so the peak reaches ``hold``
    exactly when the executor runs that many together."""

    def __init__(self, real, hold):
        self.real, self.hold = real, hold
        self.cond = threading.Condition()
        self.now = self.peak = self.entered = 0

    def __call__(self, *args, **kwargs):
        with self.cond:
            self.now += 1
            self.entered += 1
            self.peak = max(self.peak, self.now)
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.entered >= self.hold, timeout=30)
        try:
            return self.real(*args, **kwargs)
        finally:
            with self.cond:
                self.now -= 1


# -- the window ------------------------------------------------------------------------------

def test_window_follows_the_executor():
    assert cluster.slots(LocalExecutor()) == 1
    assert cluster.InFlight(LocalExecutor()).limit() == 1
    with cf.ThreadPoolExecutor(max_workers=3) as pool:
        assert cluster.slots(pool) == 3
        assert cluster.layouts(pool) == {"": cluster.Layout(1, 3)}
        assert cluster.InFlight(pool).limit() == 6
        assert cluster.InFlight(pool, max_in_flight=2).limit() == 2
    with cf.ProcessPoolExecutor(max_workers=2) as pool:
        assert cluster.layouts(pool) == {"": cluster.Layout(2, 2)}


def test_thread_share_divides_a_hosts_cores():
    cores = numba.config.NUMBA_NUM_THREADS
    assert cluster.thread_share(None, None, serial=False) is None     # local: Numba's setting
    assert cluster.thread_share(3, {"": cluster.Layout(1, 8)}, serial=False) == min(3, cores)
    assert cluster.thread_share(None, {"": cluster.Layout(1, 1)}, serial=False) == cores
    assert cluster.thread_share(None, {"": cluster.Layout(1, 2 * cores)}, False) == 1
    # one process, its populations one at a time (workqueue): each gets every core
    assert cluster.thread_share(None, {"": cluster.Layout(1, 8)}, serial=True) == cores
    assert cluster.thread_share(10_000, {}, serial=False) == cores   # a small worker: clamped


def test_thread_pool_keeps_twice_its_workers_in_flight(tmp_path, monkeypatch, local_tables):
    probe = Probe(sweep_mod.run_population, hold=8)
    monkeypatch.setattr(sweep_mod, "run_population", probe)
    with cf.ThreadPoolExecutor(max_workers=8) as pool:
        res = run_sweep(WIDE, tmp_path / "pool.db", executor=pool)
    assert res.ran == 16 and res.failed == 0
    assert probe.peak >= 8
    assert _table(tmp_path / "pool.db") == local_tables["wide"]


def test_max_in_flight_caps_the_window(tmp_path, monkeypatch):
    probe = Probe(sweep_mod.run_population, hold=1)
    monkeypatch.setattr(sweep_mod, "run_population", probe)
    with cf.ThreadPoolExecutor(max_workers=8) as pool:
        res = run_sweep(WIDE, tmp_path / "cap.db", executor=pool, max_in_flight=2)
    assert res.ran == 16 and probe.peak <= 2
    with pytest.raises(ValueError, match="'max_in_flight' parameter of "
                                         "fastinit.sweep.run_sweep must be an integer >= 1. Got 0"):
        run_sweep(WIDE, tmp_path / "cap.db", max_in_flight=0)


def test_dask_cluster_keeps_every_worker_busy(tmp_path, monkeypatch, local_tables):
    distributed = pytest.importorskip("distributed")
    probe = Probe(sweep_mod.run_population, hold=4)
    monkeypatch.setattr(sweep_mod, "run_population", probe)      # workers are threads here
    with distributed.LocalCluster(n_workers=4, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        executor = client.get_executor()
        assert cluster.slots(executor) == 4
        assert cluster.InFlight(executor).limit() == 8
        res = run_sweep(WIDE, tmp_path / "dask.db", executor=executor)
    assert res.ran == 16 and res.failed == 0
    assert probe.peak >= 4
    assert _table(tmp_path / "dask.db") == local_tables["wide"]


# -- several populations in one worker process -----------------------------------------------

ONE_WORKER = textwrap.dedent("""
    import json, sys
    import numba
    from numba.core.errors import NumbaError
    import distributed
    from fastinit.store import Store
    from fastinit.sweep import run_sweep

    def table(db):
        with Store(db) as s:
            return {r["id"]: [r["status"], r["curves"]] for r in s.rows()}

    if __name__ == "__main__":
        spec = json.loads(sys.argv[1])
        try:
            numba.get_num_threads()         # loads the threading layer
        except (ValueError, ImportError, NumbaError):
            sys.exit(77)                    # this threading layer is not installed here
        run_sweep(spec, sys.argv[2])
        with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                      dashboard_address=None) as lc, \\
                distributed.Client(lc) as client:
            layer = client.run(lambda: (numba.get_num_threads(), numba.threading_layer())[1])
            res = run_sweep(spec, sys.argv[3], executor=client.get_executor())
        print(json.dumps({"layer": list(layer.values())[0], "failed": res.failed,
                          "same": table(sys.argv[2]) == table(sys.argv[3])}))
""")


@pytest.mark.parametrize("layer", ["workqueue", "omp", "tbb"])
@pytest.mark.slow
def test_one_worker_two_threads_on_each_threading_layer(tmp_path, layer):
    """Two populations at once in one worker process: workqueue aborts a process whose
    parallel kernels are entered from two threads; fastinit must not let that happen."""
    pytest.importorskip("distributed")
    script = tmp_path / "one_worker.py"
    script.write_text(ONE_WORKER)
    spec = {**SPEC, "max_population": 1, "train": {**SPEC["train"], "epochs": 4}}
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer)
    res = subprocess.run([sys.executable, str(script), json.dumps(spec), str(tmp_path / "l.db"),
                          str(tmp_path / "d.db")], env=env, capture_output=True, text=True,
                         timeout=300)
    if res.returncode == 77:
        pytest.skip(f"Numba's {layer} threading layer is not installed")
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out == {"layer": layer, "failed": 0, "same": True}
    assert "Concurrent access" not in res.stderr and "Restarting worker" not in res.stderr


def test_serial_layer_lock_admits_one_population_at_a_time(monkeypatch):
    monkeypatch.setattr(cluster, "serial_layer", lambda: True)
    inside, peak = [0], [0]
    gate = threading.Lock()

    def work(_):
        with cluster.population_threads(None, {"": cluster.Layout(1, 4)}) as share:
            with gate:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            time.sleep(0.01)
            with gate:
                inside[0] -= 1
            return share
    with cf.ThreadPoolExecutor(max_workers=4) as pool:
        shares = list(pool.map(work, range(8)))
    assert peak[0] == 1 and shares == [numba.config.NUMBA_NUM_THREADS] * 8


# -- failures --------------------------------------------------------------------------------

class KilledWorker(Exception):
    """Named as Dask's: what a population sees when its worker dies under it."""


def test_lost_worker_is_recorded_retried_once_and_the_sweep_goes_on(tmp_path, monkeypatch):
    real = sweep_mod.run_population
    calls = {}

    def flaky(configs, *a, **k):
        seed = configs[0]["seed"]
        calls[seed] = calls.get(seed, 0) + 1
        if seed == 1 and calls[seed] == 1 or seed == 2:
            raise KilledWorker(f"attempted to run the task on 1 worker(s); seed {seed}")
        return real(configs, *a, **k)
    monkeypatch.setattr(sweep_mod, "run_population", flaky)
    spec = {"name": "lw", "max_population": 1, "grid": {"seed": [0, 1, 2, 3]},
            "train": {"epochs": 1, "width": 8}}
    heard = []
    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        res = run_sweep(spec, tmp_path / "lw.db", executor=pool, log=heard.append)
    assert calls == {0: 1, 1: 2, 2: 2, 3: 1}                  # retried once, never more
    assert (res.ran, res.failed) == (3, 1)
    assert res.failures[0][1] == "KilledWorker: attempted to run the task on 1 worker(s); seed 2"
    assert sum("lost their worker" in m and "retrying once" in m for m in heard) == 2
    with Store(tmp_path / "lw.db") as s:
        rows = {r["seed"]: r for r in s.rows()}
    assert [rows[k]["status"] for k in range(4)] == ["done", "done", "failed", "done"]
    assert "KilledWorker" in rows[2]["error"]


def test_killed_worker_process_mid_sweep_completes_and_equals_a_clean_run(tmp_path,
                                                                          local_tables):
    distributed = pytest.importorskip("distributed")
    import dask
    marker = tmp_path / "kill-once"

    class KillOnce(distributed.WorkerPlugin):
        """Kills its worker process as the next task starts once the marker file exists."""

        def __init__(self, path):
            self.path = str(path)

        def transition(self, key, start, finish, **kwargs):
            if finish == "executing":
                try:
                    os.remove(self.path)         # only one worker wins the marker
                except OSError:
                    return
                os._exit(1)

    heard = []
    spec = {**SPEC, "max_population": 1}
    # no retries by Dask itself: the first death is a KilledWorker, which fastinit retries
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        client.register_plugin(KillOnce(marker))
        res = run_sweep(spec, tmp_path / "k.db", executor=client.get_executor(),
                        on_commit=lambda n: n == 1 and marker.touch(), log=heard.append)
    assert not marker.exists()                      # a worker was killed
    assert res.failed == 0 and res.ran == 8
    assert any("lost their worker" in m and "KilledWorker" in m for m in heard), heard
    assert _table(tmp_path / "k.db") == local_tables["t"]


# -- connecting, and losing the scheduler ----------------------------------------------------

def _fastinit(*args, **kw):
    return subprocess.run([sys.executable, "-m", "fastinit", *args], capture_output=True,
                          text=True, **kw)


def test_bad_scheduler_file_is_one_line_and_exit_2(tmp_path):
    pytest.importorskip("distributed")
    spec = tmp_path / "s.toml"
    spec.write_text("[grid]\nseed = [0]\n[train]\nepochs = 1\nwidth = 8\n")
    res = _fastinit("sweep", str(spec), "--scheduler-file", str(tmp_path / "none.json"))
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0
    assert "fastinit sweep: --scheduler-file" in res.stderr and "no such file" in res.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("scheduler: tcp://x")
    res = _fastinit("sweep", str(spec), "--scheduler-file", str(bad))
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0
    assert "not a Dask scheduler file" in res.stderr
    res = _fastinit("sweep", str(spec), "--scheduler-file", str(bad), "--scheduler",
                    "tcp://x:1")
    assert res.returncode == 2 and "not allowed with argument" in res.stderr
    res = _fastinit("sweep", str(spec), "--max-in-flight", "0")
    assert res.returncode == 2 and "--max-in-flight: must be a positive integer" in res.stderr



@pytest.mark.parametrize("address,match", [
    ("tls://127.0.0.1:1", "TLS expects a `ssl_context`"),       # no TLS configured
    ("ucx://127.0.0.1:1", "UCXConnector"),                     # ucx-py not installed
    ("http://127.0.0.1:1", "unknown address scheme 'http'"),
])
def test_a_scheduler_address_dask_cannot_use_is_one_line_and_exit_2(tmp_path, capsys, address,
                                                                   match):
    pytest.importorskip("distributed")
    spec = tmp_path / "s.toml"
    spec.write_text("[grid]\nseed = [0]\n[train]\nepochs = 1\nwidth = 8\n")
    db = tmp_path / "r.db"
    assert cli.main(["sweep", str(spec), "--db", str(db), "--scheduler", address]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fastinit sweep: cannot reach the Dask scheduler {address}: ")
    assert match in err and err.count("\n") == 1 and not db.exists()

def _count(db):
    try:
        con = sqlite3.connect(db, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _start(args, log):
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_scheduler_file_sweep_then_losing_the_scheduler_stops_cleanly(tmp_path,
                                                                      local_tables):
    """A cluster started as on HPC (a scheduler writing its file, a worker reading it), the
    sweep connecting with --scheduler-file; the scheduler killed mid-sweep: the sweep stops
    with a clear message and exit 3, every finished population saved, nothing else."""
    pytest.importorskip("distributed")
    sched_file = tmp_path / "scheduler.json"
    log = open(tmp_path / "cluster.log", "w")
    dask_cli = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    scheduler = _start(dask_cli + ["--scheduler-file", str(sched_file), "--no-dashboard",
                                   "--host", "127.0.0.1", "--port", "0"], log)
    worker = _start([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                     str(sched_file), "--nworkers", "1", "--nthreads", "1",
                     "--no-dashboard"], log)
    try:
        deadline = time.time() + 120
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        # a clean sweep through the file equals the local one
        spec = tmp_path / "t.toml"
        spec.write_text(textwrap.dedent("""
            name = "t"
            [grid]
            scheme = ["zeros", "he_normal"]
            seed = [0, 1]
            depth = [1, 2]
            [train]
            epochs = 2
            width = 16
        """))
        res = _fastinit("sweep", str(spec), "--db", str(tmp_path / "t.db"), "-q",
                        "--scheduler-file", str(sched_file), timeout=300)
        assert res.returncode == 0, res.stderr
        assert _table(tmp_path / "t.db") == local_tables["t"]
        # a long sweep, the scheduler killed once the first population is stored
        long_spec = tmp_path / "long.toml"
        long_spec.write_text("name = 'long'\nmax_population = 1\n[grid]\nseed = "
                             f"{list(range(12))}\n[train]\nepochs = 60\nwidth = 32\n")
        db = tmp_path / "long.db"
        proc = subprocess.Popen([sys.executable, "-m", "fastinit", "sweep", str(long_spec),
                                 "--db", str(db), "-q", "--scheduler-file", str(sched_file)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 300
        while _count(db) == 0 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        _stop(scheduler)
        out, err = proc.communicate(timeout=180)
        if proc.returncode == 0:
            pytest.skip("the sweep finished before the scheduler was killed")
        assert proc.returncode == 3, err
        assert "lost the connection to the Dask scheduler" in err and "Traceback" not in err
        assert "runs are saved in" in err and "Run the same command again" in err
        with Store(db) as s:
            rows = s.rows()
        assert rows and {r["status"] for r in rows} == {"done"}
    finally:
        _stop(scheduler)
        _stop(worker)
        log.close()


def test_executor_lost_when_the_pool_breaks(tmp_path):
    """A process pool whose worker dies breaks for good: the sweep stops, nothing is lost."""
    ex = cf.ProcessPoolExecutor(max_workers=1)
    with pytest.raises(cf.process.BrokenProcessPool):
        ex.submit(os._exit, 1).result()
    with pytest.raises(ExecutorLost, match="the executor broke.*Run the same sweep again"):
        run_sweep(WIDE, tmp_path / "b.db", executor=ex)
    ex.shutdown()


def test_slurm_recipe_books_one_worker_per_node_on_all_its_cores():
    """docs/slurm_sweep.py, the README's recipe: the job script it makes (no SLURM needed)."""
    pytest.importorskip("dask_jobqueue")
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).parents[1] / "docs" / "slurm_sweep.py"
    spec = importlib.util.spec_from_file_location("slurm_sweep", path)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    with recipe.slurm_cluster(32, "64GB", "/shared/numba", queue="normal") as slurm:
        script = slurm.job_script()
    assert "#SBATCH --cpus-per-task=32" in script and "#SBATCH --nodes=1" in script
    assert "#SBATCH -n 1" in script and "--nthreads 1" in script
    assert "export NUMBA_CACHE_DIR=/shared/numba" in script
    assert "--nworkers" not in script                # one worker process per job


def test_ctrl_c_on_a_pool_saves_the_populations_in_flight(tmp_path, monkeypatch):
    """The first Ctrl-C stops submitting and waits for what is in flight, then stops: every
    population that started is saved, no more start."""
    probe = Probe(sweep_mod.run_population, hold=1)
    sent, second, first = threading.Event(), threading.Event(), threading.Lock()

    def second_waits(*args, **kwargs):
        if first.acquire(blocking=False):
            second.wait(30)             # finishes once another has started: it is in flight
        else:
            second.set()
            sent.wait(30)               # the rest wait for Ctrl-C
        return probe(*args, **kwargs)
    monkeypatch.setattr(sweep_mod, "run_population", second_waits)
    heard = []

    def interrupt(n):
        if n == 1:
            os.kill(os.getpid(), signal.SIGINT)      # as Ctrl-C: the handler only notes it
            sent.set()
    with cf.ThreadPoolExecutor(max_workers=2) as pool, pytest.raises(KeyboardInterrupt):
        run_sweep(WIDE, tmp_path / "c.db", executor=pool, on_commit=interrupt,
                  log=heard.append)
    with Store(tmp_path / "c.db") as s:
        rows = s.rows()
    assert 1 < len(rows) == probe.entered < 16
    assert {r["status"] for r in rows} == {"done"}
    assert any("stopping after the" in m for m in heard)


def test_a_closed_connection_logs_no_traceback_once_a_sweep_has_a_client():
    """When the scheduler goes, tornado's loop logged the reset connection with its traceback
    on the sweep's stderr before fastinit's own one-line message (a CI run saw it); with a
    client from the CLI, such records are dropped and any other error still shows."""
    import io
    import logging

    from fastinit import cli
    logger = logging.getLogger("tornado.application")
    seen = io.StringIO()
    handler = logging.StreamHandler(seen)
    logger.addHandler(handler)
    before = list(logger.filters)
    try:
        cli.quiet_closed_connections()
        for exc in (ConnectionResetError(104, "Connection reset by peer"), ValueError("kept")):
            try:
                raise exc
            except Exception:
                logger.error("Exception in callback", exc_info=True)
    finally:
        logger.removeHandler(handler)
        for name in ("tornado.application", "tornado.general", "distributed"):
            for f in [f for f in logging.getLogger(name).filters if f not in before]:
                logging.getLogger(name).removeFilter(f)
            for h in logging.getLogger(name).handlers:
                for f in [f for f in h.filters if isinstance(f, cli._ClosedConnections)]:
                    h.removeFilter(f)
    text = seen.getvalue()
    assert "ConnectionResetError" not in text and "ValueError: kept" in text
