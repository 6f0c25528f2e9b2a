"""Data-parallel training on MPI through mpi4py (optional: ``pip install rnnkit[mpi]`` and an MPI runtime such as
Debian's openmpi-bin).

Every rank holds the whole model and the whole data set; `Sequential.fit(..., distributed=True)` splits each global
batch across the ranks, and after backward averages the gradients with one ``Allreduce`` of one flat buffer per
step (every layer's gradient slab, weighted by the rank's share of the batch, and the rank's loss). Parameters
start identical (broadcast from rank 0) and stay identical (every rank applies the same update). Dropout masks
differ per rank (each rank's layers draw from their seed at a counter offset by rank << 40) and are reproducible.
Ranks on one machine share its CPUs (share_cpus: CPUs / local ranks kernel threads each, unless OMP_NUM_THREADS
is set). Only rank 0 shows the progress bar; `rk.save` / `rk.save_checkpoint` write on rank 0 only while MPI runs more than
one rank (every rank calls them; the others wait for the file). Launch: ``mpiexec -n 4 python train.py``.

mpi4py is imported on first use, so importing rnnkit never starts MPI.
"""
from __future__ import annotations

import importlib
import os

import numpy as np

__all__ = ["rank", "size", "available", "launched", "barrier", "broadcast_parameters", "allreduce_gradients",
           "share_cpus"]

_COMM = None
_SHARED = False
# Environment variables that MPI launchers set in every rank (Open MPI, MPICH/PMI, PMIx, Slurm).
_LAUNCH_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")
RNG_OFFSET = 1 << 40  # dropout counter offset per rank


def launched() -> bool:
    """True when this process was started by an MPI launcher with more than one rank (without importing MPI)."""
    for var in _LAUNCH_VARS:
        try:
            if int(os.environ.get(var, "1")) > 1:
                return True
        except ValueError:
            pass
    return False


def available() -> bool:
    """Whether mpi4py and an MPI runtime can be loaded."""
    try:
        _comm()
        return True
    except RuntimeError:
        return False


def _comm():
    """MPI.COMM_WORLD (initialising MPI on first use); RuntimeError naming the fix when mpi4py is missing."""
    global _COMM
    if _COMM is None:
        try:
            mpi = importlib.import_module("mpi4py.MPI")
        except ImportError as exc:
            raise RuntimeError("distributed: needs mpi4py and an MPI runtime (pip install rnnkit[mpi]; Debian: "
                               f"apt-get install openmpi-bin): {exc}") from None
        _COMM = mpi.COMM_WORLD
    return _COMM


def active() -> bool:
    """MPI has been started by rnnkit and runs more than one rank."""
    return _COMM is not None and _COMM.Get_size() > 1


def rank() -> int:
    """This process's rank in MPI.COMM_WORLD (0 without MPI)."""
    return _comm().Get_rank() if (launched() or _COMM is not None) else 0


def size() -> int:
    """The number of ranks in MPI.COMM_WORLD (1 without MPI)."""
    return _comm().Get_size() if (launched() or _COMM is not None) else 1


def share_cpus() -> int:
    """Give this rank's kernels its share of the node's CPUs (CPUs / ranks on the node, at least 1), so that
    ranks sharing a machine do not oversubscribe it; kept as it is when OMP_NUM_THREADS is set or after the first
    call. Returns the thread count."""
    global _SHARED
    core = importlib.import_module(__package__ + "._backend").core
    if active() and not _SHARED and "OMP_NUM_THREADS" not in os.environ:
        mpi = importlib.import_module("mpi4py.MPI")
        local = _COMM.Split_type(mpi.COMM_TYPE_SHARED).Get_size()
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        core.set_num_threads(max(1, cpus // local))
    _SHARED = True
    return core.get_num_threads()


def barrier() -> None:
    if active():
        _COMM.Barrier()


def broadcast(value):
    """A picklable value from rank 0 to every rank (small control values: seeds, decisions)."""
    return _comm().bcast(value, root=0) if active() else value


def broadcast_parameters(model, root: int = 0) -> None:
    """Every rank gets rank `root`'s parameters (one Bcast of one flat buffer)."""
    if not active():
        return
    params = list(model.parameters().values())
    flat = np.concatenate([p.reshape(-1) for p in params]) if params else np.zeros(0, np.float32)
    _COMM.Bcast(flat, root=root)
    _scatter(flat, params)


def allreduce_gradients(model, weight: float = 1.0, extra=()) -> np.ndarray:
    """grads <- Σ over ranks of weight * grads, with one Allreduce of one flat buffer; `extra` numbers are summed
    in the same call and returned. With weight = this rank's share of the global batch (its rows over all rows),
    the result is the gradient of the global batch's mean loss."""
    grads = list(model.grads.values())
    dtype = grads[0].dtype if grads else np.float64
    flat = np.concatenate([g.reshape(-1) for g in grads] + [np.asarray(extra, dtype).reshape(-1)])
    flat[:flat.size - len(extra)] *= dtype.type(weight)
    if active():
        mpi = importlib.import_module("mpi4py.MPI")
        _COMM.Allreduce(mpi.IN_PLACE, flat, op=mpi.SUM)
    _scatter(flat, grads)
    return flat[flat.size - len(extra):].astype(np.float64)


def allreduce_sum(values) -> np.ndarray:
    """Element-wise sum over ranks of a few float64 numbers."""
    values = np.asarray(values, np.float64).copy()
    if active():
        mpi = importlib.import_module("mpi4py.MPI")
        _COMM.Allreduce(mpi.IN_PLACE, values, op=mpi.SUM)
    return values


def _scatter(flat, arrays) -> None:
    at = 0
    for a in arrays:
        a[...] = flat[at:at + a.size].reshape(a.shape)
        at += a.size
