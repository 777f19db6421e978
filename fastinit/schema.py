"""The results database's schema: its tables, its version and the way up from every older
version (fastinit.store opens, checks and migrates; this module says what the file holds).

Versions, in ``PRAGMA user_version``:

    0  fastinit 0.1: tables runs and sweeps; a run's id hashed its whole config and a sweep
       kept one spec per name
    2  runs, sweeps, sweep_specs, members: a sweep is its spec (its version and members), run
       ids hash only what differs from the id version's defaults (fastinit.runkeys)
    3  runs.compile_s: the seconds the run's population spent compiling kernels or loading
       them from the cache, kept out of time_s (training time only)

Each migration runs in the caller's transaction. 0 -> 3 rebuilds the tables (ids rewritten to
today's, membership from each run's sweep column); 2 -> 3 adds the column, NULL for the runs
stored before it (their time_s still holds whatever compiling their population did).
"""
from __future__ import annotations

import json
import sqlite3

from .runkeys import run_id
from .sweepspec import spec_hash

SCHEMA_VERSION = 3
SCHEMA = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    sweep TEXT NOT NULL,
    status TEXT NOT NULL,
    scheme TEXT, scheme_params TEXT, seed, depth INTEGER, width INTEGER,
    activation TEXT, lr REAL, dataset TEXT, optimizer TEXT, batch_size INTEGER,
    epochs INTEGER, loss TEXT,
    final_train_loss REAL, final_test_loss REAL, final_train_acc REAL, final_test_acc REAL,
    best_test_acc REAL, diverged INTEGER, diverged_step INTEGER,
    time_s REAL, population_time_s REAL, population_size INTEGER,
    config TEXT NOT NULL, curves TEXT, diagnostics TEXT, layer_sizes TEXT, error TEXT,
    fastinit_version TEXT, machine TEXT, created_at TEXT, compile_s REAL
);
CREATE TABLE sweeps (name TEXT PRIMARY KEY, spec_hash TEXT NOT NULL);
CREATE TABLE sweep_specs (
    name TEXT NOT NULL, spec_hash TEXT NOT NULL, spec TEXT NOT NULL, runs INTEGER,
    created_at TEXT, last_run_at TEXT, PRIMARY KEY (name, spec_hash)
);
CREATE TABLE members (
    sweep TEXT NOT NULL, spec_hash TEXT NOT NULL, run_id TEXT NOT NULL,
    PRIMARY KEY (sweep, spec_hash, run_id)
) WITHOUT ROWID;
"""
TABLES = {"runs", "sweeps", "sweep_specs", "members"}
COLUMNS = ("id", "sweep", "status", "scheme", "scheme_params", "seed", "depth", "width",
           "activation", "lr", "dataset", "optimizer", "batch_size", "epochs", "loss",
           "final_train_loss", "final_test_loss", "final_train_acc", "final_test_acc",
           "best_test_acc", "diverged", "diverged_step", "time_s", "population_time_s",
           "population_size", "config", "curves", "diagnostics", "layer_sizes", "error",
           "fastinit_version", "machine", "created_at", "compile_s")
V1_COLUMNS = {"id", "sweep", "status", "config"}     # what from_v1 needs of fastinit 0.1's runs
INSERT = f"INSERT OR REPLACE INTO runs ({', '.join(COLUMNS)}) VALUES " \
         f"({', '.join('?' * len(COLUMNS))})"


def kind(version: int, tables: set[str], runs_columns=frozenset()) -> str | None:
    """What a file with this user_version, these tables and these columns of its runs table
    is: "empty", "v1" (fastinit 0.1), "v2", "current", or None (not a fastinit database, or
    a newer one)."""
    if version == 0 and not tables:
        return "empty"
    if version == 0 and "runs" in tables and tables <= {"runs", "sweeps"} \
            and V1_COLUMNS <= set(runs_columns):       # not another program's "runs"
        return "v1"
    if version in (2, SCHEMA_VERSION) and TABLES <= tables:
        return "current" if version == SCHEMA_VERSION else f"v{version}"
    return None


def create(con: sqlite3.Connection) -> None:
    """Today's tables in an empty database."""
    for stmt in SCHEMA.split(";")[:-1]:
        con.execute(stmt)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def from_v1(con: sqlite3.Connection) -> None:
    """Version 1 (user_version 0) -> today: new ids, membership from each run's sweep column."""
    con.execute("CREATE TABLE IF NOT EXISTS sweeps (name, spec, created_at)")
    con.execute("ALTER TABLE runs RENAME TO runs_v1")
    con.execute("ALTER TABLE sweeps RENAME TO sweeps_v1")
    create(con)
    cur = con.execute("SELECT * FROM runs_v1 ORDER BY rowid")
    names = [d[0] for d in cur.description]
    for values in cur.fetchall():
        row = {k: None for k in COLUMNS} | dict(zip(names, values))
        row["id"] = run_id(json.loads(row["config"]), revised=False)   # values' old meaning
        con.execute(INSERT, tuple(row[k] for k in COLUMNS))
    for name, body, created in con.execute("SELECT name, spec, created_at FROM "
                                           "sweeps_v1").fetchall():
        h = spec_hash(json.loads(body))
        con.execute("INSERT INTO members SELECT ?, ?, id FROM runs WHERE sweep = ?",
                    (name, h, name))
        n = con.execute("SELECT COUNT(*) FROM members WHERE sweep = ?", (name,))
        con.execute("INSERT INTO sweep_specs VALUES (?, ?, ?, ?, ?, ?)",
                    (name, h, body, n.fetchone()[0], created, created))
        con.execute("INSERT INTO sweeps VALUES (?, ?)", (name, h))
    con.execute("DROP TABLE runs_v1")
    con.execute("DROP TABLE sweeps_v1")


def from_v2(con: sqlite3.Connection) -> None:
    """Version 2 -> 3: the compile_s column (NULL for the runs already stored)."""
    con.execute("ALTER TABLE runs ADD COLUMN compile_s REAL")
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


MIGRATIONS = {"v1": from_v1, "v2": from_v2}
