"""rnnkit: LSTM, GRU and RNN layers whose gate math and backpropagation-through-time run in C++.

Parameter names, shapes and gate orders match torch.nn, so weights move between the two unchanged.
"""
import importlib as _importlib
import os as _os

from . import distributed, losses, optim
from ._backend import core as _core
from . import _checks
from ._checks import positive_int as _positive_int
from .attention import Attention
from .cells import GRUCell, LSTMCell, RNNCell
from .io import ModelFileError, load, load_checkpoint, load_metadata, save, save_checkpoint
from .layers import GRU, LSTM, RNN, IndRNN
from .min_rnn import minGRU, minLSTM
from .model import EarlyStopping, Sequential, clip_grad_norm, clip_grad_value
from .module import Module, layer_class, registry
from .nn import Dense, Dropout, Embedding, LastStep
from .seq2seq import Seq2Seq
from .xlstm_layers import mLSTM, sLSTM

__version__ = _core.__version__

__all__ = ["LSTM", "GRU", "RNN", "IndRNN", "sLSTM", "mLSTM", "minGRU", "minLSTM", "LSTMCell", "GRUCell", "RNNCell", "Dense", "Embedding", "Dropout", "LastStep",
           "Sequential", "Attention", "Seq2Seq", "EarlyStopping", "clip_grad_norm", "clip_grad_value", "losses", "optim", "distributed", "save", "load",
           "load_metadata", "save_checkpoint", "load_checkpoint", "ModelFileError", "set_num_threads", "set_allow_nonfinite", "get_allow_nonfinite",
           "get_num_threads", "scratch_bytes", "release_scratch", "build_info", "cmake_dir", "cell_kinds", "Module",
           "registry", "layer_class", "from_torch", "to_torch", "from_onnx", "from_keras", "to_keras", "__version__"]


def from_torch(module):
    """An rnnkit model from a torch module (nn.LSTM/GRU/RNN/Linear/Embedding, an rnnkit.torch module, or an
    nn.Sequential of those); weights are copied. Needs torch (``pip install rnnkit[torch]``)."""
    return _importlib.import_module(__name__ + ".torch").from_torch(module)


def to_torch(model):
    """A torch.nn module with the same weights as an rnnkit layer or Sequential (see rnnkit.torch.to_torch)."""
    return _importlib.import_module(__name__ + ".torch").to_torch(model)


def from_onnx(path):
    """A session running an ONNX graph of LSTM/GRU/RNN nodes and common glue ops on rnnkit:
    ``session.run(None, {"X": x, "sequence_lens": lengths})``; ``session.model`` is the rnnkit model when rnnkit
    wrote the file. Needs onnx (see rnnkit.onnx_import)."""
    return _importlib.import_module(__name__ + ".onnx_import").from_onnx(path)


def from_keras(model_or_path):
    """An rnnkit Sequential from a Keras 3 model or .keras file (read with h5py, without Keras); see
    rnnkit.keras_io."""
    return _importlib.import_module(__name__ + ".keras_io").from_keras(model_or_path)


def to_keras(model):
    """A keras.Sequential with the weights of an rnnkit model Keras can express; needs Keras 3."""
    return _importlib.import_module(__name__ + ".keras_io").to_keras(model)


def set_num_threads(n: int) -> None:
    """Threads rnnkit's kernels may use, process-wide (OpenMP): calls running at once from several Python threads
    share this budget rather than each starting its own team, so they never oversubscribe the CPUs. Results do not
    depend on it: training from a seed gives the same bits on any thread count."""
    _core.set_num_threads(_positive_int("n", n))


def set_allow_nonfinite(allow: bool) -> None:
    """Whether arrays passed to rnnkit may hold NaN or infinity (default False: a ValueError names the first one;
    True passes them through, and NaN propagates through the math)."""
    if not isinstance(allow, bool):
        raise TypeError(f"allow: expected True or False, got {type(allow).__name__}")
    _checks._ALLOW_NONFINITE[0] = allow


def get_allow_nonfinite() -> bool:
    return _checks._ALLOW_NONFINITE[0]


def get_num_threads() -> int:
    return _core.get_num_threads()


def scratch_bytes() -> int:
    """Bytes of scratch memory rnnkit's kernels keep for the calling thread between calls (packed weights,
    projections, gradient buffers), so that repeated calls take no fresh pages."""
    return _core.scratch_bytes()


def release_scratch() -> None:
    """Give the calling thread's kept scratch memory back; the next call allocates again."""
    _core.release_scratch()


def cell_kinds() -> list:
    """Every cell kind registered in the C++ core, one dict each: name ("lstm", ...), layer_class, summary (the
    math), gates, saved, num_states, recurrence, mid_step_product, cross_unit_reduction, extra_rows, params
    (name, shape in terms of gates*hidden_size / input_size / hidden_size, when present), options, init and the
    backends with drivers for it."""
    return _core.cell_kinds()


def build_info() -> dict:
    """The compiled core in use: its instruction set ('avx512', 'avx2' or 'baseline'), OpenMP, version."""
    return {"isa": _core.isa, "openmp": _core.has_openmp, "module": _core.__name__, "version": _core.__version__}


def cmake_dir() -> str:
    """The prefix to put on CMAKE_PREFIX_PATH so that C++ projects find this installation with
    `find_package(rnnkit CONFIG REQUIRED)` (headers, static library and rnnkit::rnnkit target)."""
    candidates = [_os.path.dirname(_os.path.abspath(__file__))]
    try:  # editable installs keep the compiled files apart from the sources
        candidates.append(_os.path.dirname(_os.path.abspath(_core.__file__)))
    except AttributeError:
        pass
    for prefix in candidates:
        if _os.path.isfile(_os.path.join(prefix, "lib", "cmake", "rnnkit", "rnnkitConfig.cmake")):
            return prefix
    raise RuntimeError("rnnkit: this installation carries no CMake package (lib/cmake/rnnkit); install the wheel "
                       "with `pip install .` rather than an editable install without it")
