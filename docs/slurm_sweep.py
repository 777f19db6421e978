"""A fastinit sweep on a SLURM cluster through dask-jobqueue: the recipe the README describes.

    pip install 'fastinit[cluster]'           # on the login node, in a shared environment
    export NUMBA_CACHE_DIR=$HOME/.cache/fastinit-numba     # on a shared filesystem
    srun -N1 -c32 fastinit warmup             # compile once, on a compute node's CPU
    python docs/slurm_sweep.py sweep.toml --db runs.db --nodes 8 --cores 32 --memory 64GB

One SLURM job per node, one Dask worker process per job with one thread slot: a worker runs one
population at a time on every core it was given (fastinit threads = cores), which is how the
kernels scale best. The driver (this script, on the login node) keeps two populations per
worker in flight and is the only process that writes the database; stopping it (Ctrl-C) saves
every finished population, and running it again skips them. Kernels load from NUMBA_CACHE_DIR
on the shared filesystem, so each is compiled once per cluster (per CPU model), not per node.
"""
import argparse
import os

from dask_jobqueue import SLURMCluster
from distributed import Client

from fastinit.sweep import run_sweep


def slurm_cluster(cores: int, memory: str, cache_dir: str, queue: str | None = None,
                  account: str | None = None, walltime: str = "04:00:00") -> SLURMCluster:
    """A SLURMCluster whose every job is one node: one worker process, one thread slot,
    ``cores`` CPUs booked for it, the Numba cache shared."""
    return SLURMCluster(
        cores=1, processes=1,             # one worker process per job, one population at a time
        job_cpu=cores,                    # ... on all of the node's cores (--cpus-per-task)
        memory=memory, queue=queue, account=account, walltime=walltime,
        job_extra_directives=["--nodes=1"],
        job_script_prologue=[f"export NUMBA_CACHE_DIR={cache_dir}"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Run a fastinit sweep on SLURM nodes.")
    p.add_argument("spec")
    p.add_argument("--db", default="runs.db")
    p.add_argument("--nodes", type=int, default=4, help="SLURM jobs, one node each")
    p.add_argument("--cores", type=int, default=32, help="cores of one node")
    p.add_argument("--memory", default="32GB", help="memory of one job")
    p.add_argument("--queue", default=None)
    p.add_argument("--account", default=None)
    p.add_argument("--walltime", default="04:00:00")
    args = p.parse_args(argv)
    cache = os.environ.get("NUMBA_CACHE_DIR") or os.path.expanduser("~/.cache/fastinit-numba")
    with slurm_cluster(args.cores, args.memory, cache, args.queue, args.account,
                       args.walltime) as cluster, Client(cluster) as client:
        cluster.scale(jobs=args.nodes)
        res = run_sweep(args.spec, args.db, executor=client.get_executor(), progress=True,
                        log=print)
    print(f"{res.ran} runs in {res.seconds:.0f} s, {res.failed} failed; results in {args.db}")
    return 1 if res.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
