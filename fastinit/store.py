"""The results store: one SQLite file (stdlib, WAL mode), runs keyed by their id, sweeps and
their members; only the driver writes.

Schema version ``SCHEMA_VERSION`` (in ``PRAGMA user_version``), four tables:

    runs         one row per run, keyed by ``id`` (``runkeys.run_id``): the sweep
                 that last wrote it, status ("done", "diverged", "failed"), the main config keys
                 as columns, final and best metrics, curves / diagnostics / config as JSON,
                 times (``time_s``: the run's share of its population's training, diagnostics
                 and evaluation; ``compile_s``: the seconds its population spent compiling or
                 loading kernels, kept out of ``time_s``), fastinit version and machine. ``seed`` has no type affinity: a seed below 2**63
                 is an INTEGER, a larger one (SQLite integers are 64-bit signed) its decimal
                 TEXT; ``rows()`` gives ints back, and the config JSON holds every seed exactly.
                 ``final_*`` are the last evaluation of the run's weights (its curves' last
                 values; NaN and infinities stored as NULL). A diverged run (status
                 "diverged", ``diverged`` 1, ``diverged_step``) stopped before its bad step
                 and keeps the finite weights it had then, so its ``final_*_acc`` is their
                 real accuracy (often near chance) and its ``final_*_loss`` is usually NULL
                 (those weights overflow the loss). They are stored as measured: an average
                 over trained runs leaves out status "diverged" (``WHERE status = 'done'``),
                 as fastinit report's table and depth figures and fastinit bench do, counting
                 them apart.
    sweeps       name -> spec_hash of its current version (the spec it was last run with)
    sweep_specs  (name, spec_hash) -> the spec, its number of runs, first and last run
    members      (sweep, spec_hash, run_id): exactly the runs of each sweep version

A sweep is its spec: ``rows(name)`` is the current version's runs, whatever else the file holds.
An older schema (fastinit.schema: its versions and migrations) is migrated when the file is
first opened for writing, in one transaction; read-only, a version 1 file is migrated in memory
and a version 2 file read as it is. Each population is written in one transaction, each run in a savepoint:
a killed sweep leaves whole populations, and a run whose row cannot be stored is recorded as
failed with the reason instead of losing its population.

    store = Store("runs.db"); rows = store.rows("init-vs-depth"); store.export_csv("runs.csv")
"""
from __future__ import annotations

import csv
import json
import math
import os
import platform
import sqlite3
import time
import urllib.parse
from contextlib import contextmanager
from typing import Iterable

import numba

from . import __version__, jsonable
from ._validate import check_path, did_you_mean
from . import schema
from .schema import COLUMNS, INSERT as _INSERT, SCHEMA_VERSION, TABLES  # noqa: F401

_CLS = "fastinit.store.Store"
_FINISHED = "('done', 'diverged')"
# a row that cannot be stored is replaced by this one: nothing but the id, status and reason
_BARE = ("id", "sweep", "status", "config", "error", "fastinit_version", "machine",
         "created_at")
# what one bad row can raise; anything else (disk full, I/O) is the database's, not the row's
_ROW_ERRORS = (OverflowError, ValueError, TypeError, KeyError, IndexError,
               sqlite3.InterfaceError, sqlite3.IntegrityError, sqlite3.DataError)


class StoreError(ValueError):
    """A results database that cannot be opened, read or written: "path: cause"."""


def machine() -> str:
    """The machine a run was stored on, as lscpu names its CPU: model, architecture, cores,
    Python and Numba versions, host name."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu} ({platform.machine()}), {os.cpu_count()} cores, Python " \
           f"{platform.python_version()}, Numba {numba.__version__}, host {platform.node()}"


def _digest(ids) -> tuple[int, int]:
    """(how many, their sum as hexadecimal numbers mod 2**128): a set of distinct ids, in any
    order, without holding them (a million ids: a fraction of a second)."""
    n = total = 0
    for i in ids:
        n += 1
        total += int(i, 16)
    return n, total % (1 << 128)


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def _seed(v):
    return str(v) if isinstance(v, int) and v >= 2**63 else v


class Store:
    """A results database. Opening creates it (or migrates an older one); ``readonly`` opens
    it read-only (``PRAGMA query_only``, or ``file:...?mode=ro`` where it may not be written),
    migrating an older one in memory."""

    def __init__(self, path, readonly: bool = False):
        self.path = check_path(path, "path", _CLS)
        self.readonly = readonly
        self.con = self._connect()
        try:
            self._prepare()
        except BaseException:
            self.con.close()
            raise

    def fail(self, cause: str):
        """Raise StoreError("path: cause")."""
        raise StoreError(f"{self.path}: {cause}")

    def _connect(self, immutable: bool = False) -> sqlite3.Connection:
        p = self.path
        if os.path.isdir(p):
            self.fail("is a directory, not a results database.")
        parent = os.path.dirname(os.path.abspath(p))
        if not os.path.isdir(parent):
            self.fail(f"cannot create the database: no such directory {parent}.")
        if self.readonly and not os.path.exists(p):
            self.fail("no such database.")
        try:
            if self.readonly:
                uri = f"file:{urllib.parse.quote(os.path.abspath(p))}?mode="
                if not immutable and os.access(p, os.W_OK) and os.access(parent, os.W_OK):
                    # every write refused (query_only): a mode=ro connection to a WAL file
                    # leaves -wal and -shm files beside it that it cannot remove
                    con = sqlite3.connect(uri + "rw", uri=True, timeout=60, isolation_level=None)
                    con.execute("PRAGMA query_only = 1")
                    return con
                return sqlite3.connect(uri + "ro" + ("&immutable=1" if immutable else ""),
                                       uri=True, timeout=60, isolation_level=None)
            return sqlite3.connect(p, timeout=60, isolation_level=None)
        except sqlite3.Error as e:
            self.fail(f"cannot open the database: {e}{self._why()}.")

    def _why(self) -> str:
        parent = os.path.dirname(os.path.abspath(self.path))
        if not self.readonly and not os.access(parent, os.W_OK):
            return f" (the directory {parent} is not writable)"
        return ""

    def _inspect(self):
        version = self.con.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in self.con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = {r[1] for r in self.con.execute("PRAGMA table_info(runs)")}
        return version, tables, columns

    def _prepare(self):
        try:
            try:
                version, tables, columns = self._inspect()
            except sqlite3.OperationalError:
                if not self.readonly:
                    raise
                # a WAL database in a directory we cannot write (no -shm file to share):
                # read it as an immutable file
                self.con.close()
                self.con = self._connect(immutable=True)
                version, tables, columns = self._inspect()
        except sqlite3.DatabaseError as e:
            if "not a database" in str(e) or "malformed" in str(e):
                self.fail(f"not a SQLite database, or a damaged one ({e}).")
            self.fail(f"cannot open the database: {e}{self._why()}.")
        if version > SCHEMA_VERSION:
            self.fail(f"written by a newer fastinit (schema version {version}; this one "
                       f"reads up to {SCHEMA_VERSION}). Upgrade fastinit.")
        kind = schema.kind(version, tables, columns)
        if kind is None:
            self.fail(f"not a fastinit results database (it holds the tables "
                       f"{', '.join(sorted(tables)) or 'none'}); refusing to use it. Give "
                       f"another database file.")
        if self.readonly:
            if kind == "empty":
                self.fail("holds no fastinit runs.")
            if kind == "v1":  # migrate a copy in memory; the file stays as it is
                mem = sqlite3.connect(":memory:", isolation_level=None)
                self.con.backup(mem)
                self.con.close()
                self.con = mem
                with self._tx():
                    schema.from_v1(mem)
            return            # a version 2 file reads as it is (rows() give compile_s None)
        with self._writing("open"):
            self.con.execute("PRAGMA journal_mode=WAL")
            self.con.execute("PRAGMA synchronous=NORMAL")
            if kind != "current":
                with self._tx():
                    (schema.create if kind == "empty" else schema.MIGRATIONS[kind])(self.con)

    @contextmanager
    def _tx(self):
        self.con.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.con.execute("COMMIT")
        except BaseException:
            if self.con.in_transaction:
                try:
                    self.con.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise

    @contextmanager
    def _writing(self, what: str):
        """Database-wide write errors as one StoreError saying what is saved."""
        try:
            yield
        except sqlite3.OperationalError as e:
            if "full" in str(e):
                self.fail(f"cannot {what}: {e}. The {self._saved()} runs committed before "
                           f"are saved; free some space and run the same command again to "
                           f"resume.")
            self.fail(f"cannot {what}: {e}{self._why()}.")

    def _saved(self) -> int:
        try:
            return self.con.execute("SELECT COUNT(*) FROM runs WHERE status IN "
                                    + _FINISHED).fetchone()[0]
        except sqlite3.Error:
            return 0

    def close(self):
        self.con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- writing (the driver only) ------------------------------------------------------------
    def record_sweep(self, name: str, version: str, body: dict, run_ids, runs: int
                     ) -> str | None:
        """Make ``version`` (a spec hash) the current spec of sweep ``name`` with these runs
        (``runs`` of them) as its members; returns the previous version when the spec changed,
        else None. ``run_ids``: a function returning the ids (a sweep's are a lazy expansion
        of its grid), called again only to rewrite the membership when it differs: the same
        spec can name other runs (a fastinit whose run ids changed)."""
        with self._writing("record the sweep"), self._tx():
            c = self.con
            prev = c.execute("SELECT spec_hash FROM sweeps WHERE name = ?", (name,)).fetchone()
            c.execute("INSERT INTO sweep_specs VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name, "
                      "spec_hash) DO UPDATE SET last_run_at = excluded.last_run_at, "
                      "runs = excluded.runs", (name, version, json.dumps(body, sort_keys=True),
                                               runs, _now(), _now()))
            c.execute("INSERT OR REPLACE INTO sweeps VALUES (?, ?)", (name, version))
            have = c.execute("SELECT run_id FROM members WHERE sweep = ? AND spec_hash = ?",
                             (name, version))
            if _digest(r[0] for r in have) != _digest(run_ids()):
                c.execute("DELETE FROM members WHERE sweep = ? AND spec_hash = ?",
                          (name, version))
                c.executemany("INSERT OR IGNORE INTO members VALUES (?, ?, ?)",
                              ((name, version, i) for i in run_ids()))
        return prev[0] if prev and prev[0] != version else None

    def _row(self, rid: str, sweep: str, cfg: dict, status: str, **extra) -> tuple:
        row = {c: None for c in COLUMNS}
        row.update(id=rid, sweep=sweep, status=status, scheme=cfg["scheme"][0],
                   scheme_params=json.dumps(cfg["scheme"][1], sort_keys=True),
                   seed=_seed(cfg["seed"]), depth=cfg["depth"], width=cfg["width"],
                   activation=cfg["activation"], lr=cfg["lr"], dataset=cfg["dataset"],
                   optimizer=cfg["optimizer"], batch_size=cfg["batch_size"],
                   epochs=cfg["epochs"], config=json.dumps(cfg, sort_keys=True),
                   fastinit_version=__version__, machine=machine(), created_at=_now())
        row.update(extra)
        return tuple(row[c] for c in COLUMNS)

    def _result_row(self, r: dict, sweep: str) -> tuple:
        cur = r["curves"]
        test_acc = [v for v in cur["test_acc"] if v is not None and math.isfinite(v)]
        return self._row(
            r["id"], sweep, r["config"], "diverged" if r["diverged"] else "done",
            loss=r["loss"], final_train_loss=jsonable.clean(cur["train_loss"][-1]),
            final_test_loss=jsonable.clean(cur["test_loss"][-1]),
            final_train_acc=jsonable.clean(cur["train_acc"][-1]),
            final_test_acc=jsonable.clean(cur["test_acc"][-1]),
            best_test_acc=max(test_acc) if test_acc else None,
            diverged=int(r["diverged"]), diverged_step=r["diverged_step"], time_s=r["time"],
            population_time_s=r["population_time"], population_size=r["population_size"],
            compile_s=r.get("compile_time"),
            curves=jsonable.dumps(cur, sort_keys=True),
            diagnostics=jsonable.dumps(r["diagnostics"], sort_keys=True),
            layer_sizes=json.dumps(r["layer_sizes"]))

    def _put(self, rid: str, sweep: str, cfg: dict, make) -> str | None:
        """Insert make()'s row in a savepoint; if the row cannot be stored, a bare failed row
        with the reason instead (returned)."""
        self.con.execute("SAVEPOINT run")
        try:
            self.con.execute(_INSERT, make())
        except _ROW_ERRORS as e:
            self.con.execute("ROLLBACK TO run")
            error = f"result not stored: {type(e).__name__}: {e}"
            self.con.execute(f"INSERT OR REPLACE INTO runs ({', '.join(_BARE)}) VALUES "
                             f"({', '.join('?' * len(_BARE))})",
                             (rid, sweep, "failed", json.dumps(cfg, sort_keys=True, default=str),
                              error, __version__, machine(), _now()))
            return error
        finally:
            self.con.execute("RELEASE run")
        return None

    def add_results(self, results: Iterable[dict], sweep: str) -> list[tuple[str, str]]:
        """Store one population's results in one transaction, each run in a savepoint; returns
        (id, reason) for each run recorded as failed because its row could not be stored."""
        bad = []
        with self._writing("save results"), self._tx():
            for r in results:
                error = self._put(r["id"], sweep, r["config"], lambda: self._result_row(r, sweep))
                if error:
                    bad.append((r["id"], error))
        return bad

    def add_failed(self, runs, error: str, sweep: str) -> None:
        """Record runs (with .id and .config) whose population raised; a re-run retries them."""
        with self._writing("save results"), self._tx():
            for r in runs:
                self._put(r.id, sweep, r.config,
                          lambda: self._row(r.id, sweep, r.config, "failed", error=error))

    # -- reading ----------------------------------------------------------------------------
    def finished_ids(self) -> set[str]:
        """Runs that need no re-run: done or diverged (failed ones are retried)."""
        return {r[0] for r in self.con.execute(
            "SELECT id FROM runs WHERE status IN " + _FINISHED)}

    def finished_count(self, sweep: str, undiagnosed: bool = False) -> int:
        """Finished runs of the current version of ``sweep``; ``undiagnosed``: only those
        stored without diagnostics (run with diagnose = false; a re-run skips them too)."""
        return self.con.execute(
            "SELECT COUNT(*) FROM members m JOIN sweeps s ON s.name = m.sweep AND s.spec_hash "
            "= m.spec_hash JOIN runs r ON r.id = m.run_id WHERE m.sweep = ? AND r.status IN "
            + _FINISHED + (" AND coalesce(r.diagnostics, 'null') = 'null'" if undiagnosed
                           else ""), (sweep,)).fetchone()[0]

    def sweeps(self) -> list[dict]:
        """Each sweep's current version: name, spec_hash, runs (in its spec), stored (of them
        in the database), last_run_at."""
        cur = self.con.execute(
            "SELECT s.name, s.spec_hash, v.runs, (SELECT COUNT(*) FROM members m JOIN runs r "
            "ON r.id = m.run_id WHERE m.sweep = s.name AND m.spec_hash = s.spec_hash), "
            "v.last_run_at FROM sweeps s JOIN sweep_specs v ON v.name = s.name AND "
            "v.spec_hash = s.spec_hash ORDER BY v.last_run_at, s.name")
        return [dict(zip(("name", "spec_hash", "runs", "stored", "last_run_at"), r))
                for r in cur]

    def rows(self, sweep: str | None = None) -> list[dict]:
        """Runs as dicts, JSON columns decoded: the current spec's runs of ``sweep``, or every
        run in the database. A ``sweep`` the database does not hold is a StoreError."""
        named = sweep is not None                 # "" names no sweep; it is not every run
        current = named and self.con.execute("SELECT spec_hash FROM sweeps WHERE name = ?",
                                             (sweep,)).fetchone()
        if current:
            cur = self.con.execute("SELECT r.* FROM runs r JOIN members m ON m.run_id = r.id "
                                   "WHERE m.sweep = ? AND m.spec_hash = ? ORDER BY r.rowid",
                                   (sweep, current[0]))
        else:
            q = "SELECT * FROM runs" + (" WHERE sweep = ?" if named else "") + " ORDER BY rowid"
            cur = self.con.execute(q, (sweep,) if named else ())
        names = [d[0] for d in cur.description]
        out = []
        for values in cur:
            row = dict.fromkeys(COLUMNS) | dict(zip(names, values))   # v2: no compile_s
            for k in ("config", "curves", "diagnostics", "layer_sizes", "scheme_params"):
                if row.get(k):
                    row[k] = json.loads(row[k])
            if isinstance(row["seed"], str):
                row["seed"] = int(row["seed"])
            out.append(row)
        if named and not current and not out:     # a typo would export an empty table
            names = [s["name"] for s in self.sweeps()]
            self.fail(f"no sweep {sweep!r}.{did_you_mean(sweep, names)} It holds: "
                      f"{', '.join(names) or 'none'}.")
        return out

    def count(self) -> int:
        return self.con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def export_csv(self, path, sweep: str | None = None) -> None:
        """The flat columns (no curves or diagnostics) of ``rows(sweep)`` as CSV (UTF-8)."""
        flat = [c for c in COLUMNS if c not in ("curves", "diagnostics", "config")]
        # checked: open(3, "w") would write into file descriptor 3, whatever it is, and close it
        path = check_path(path, "path", f"{_CLS}.export_csv")
        rows = self.rows(sweep)                 # before the file: an unknown sweep leaves it
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(flat)
            for row in rows:
                w.writerow([json.dumps(row[c]) if isinstance(row[c], (dict, list)) else row[c]
                            for c in flat])

    def export_json(self, path, sweep: str | None = None) -> None:
        """``rows(sweep)`` with curves and diagnostics as a JSON list."""
        path = check_path(path, "path", f"{_CLS}.export_json")
        rows = self.rows(sweep)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(rows, f)
