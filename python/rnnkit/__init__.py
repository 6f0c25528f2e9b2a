"""rnnkit: LSTM, GRU and RNN layers whose gate math and backpropagation-through-time run in C++.

Parameter names, shapes and gate orders match torch.nn, so weights move between the two unchanged.
"""
from . import _core, losses, optim
from .cells import GRUCell, LSTMCell, RNNCell
from .io import ModelFileError, load, load_checkpoint, load_metadata, save, save_checkpoint
from .layers import GRU, LSTM, RNN
from .model import EarlyStopping, Sequential, clip_grad_norm, clip_grad_value
from .nn import Dense, Dropout, Embedding, LastStep

__version__ = _core.__version__

__all__ = ["LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell", "Dense", "Embedding", "Dropout", "LastStep",
           "Sequential", "EarlyStopping", "clip_grad_norm", "clip_grad_value", "losses", "optim", "save", "load",
           "load_metadata", "save_checkpoint", "load_checkpoint", "ModelFileError", "set_num_threads",
           "get_num_threads", "__version__"]


def set_num_threads(n: int) -> None:
    """Threads used by rnnkit's kernels in the calling thread (OpenMP)."""
    from ._checks import positive_int
    _core.set_num_threads(positive_int("n", n))


def get_num_threads() -> int:
    return _core.get_num_threads()
