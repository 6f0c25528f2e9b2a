"""Every public class tells its user everything about its constructor.

For each public class of rnnkit, rnnkit.optim and rnnkit.losses with a constructor: the class docstring (what
`help()` shows first) has an "Args:" section with one entry per constructor argument -- no more, no fewer --
and the entry of an argument with a default states it ("default <value>"); every argument has a type
annotation. Classes without a constructor (the losses) still have a docstring.
"""

import inspect
import re

import pytest

import rnnkit as rk
from rnnkit import losses, optim


def _public_classes():
    seen = {}
    for module, names in ((rk, rk.__all__), (optim, optim.__all__), (losses, losses.__all__)):
        for name in names:
            obj = getattr(module, name)
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                seen[obj.__qualname__] = obj
    return list(seen.values())


PUBLIC = _public_classes()


def args_section(doc: str) -> dict:
    """name -> text of each entry of a Google-style "Args:" section (entries at one indent, continuations deeper)."""
    lines = inspect.cleandoc(doc).splitlines()
    if "Args:" not in lines:
        return {}
    entries, current = {}, None
    for line in lines[lines.index("Args:") + 1:]:
        entry = re.match(r"^    (\w+)(?: \([^)]*\))?: (.*)$", line)
        if entry:
            current = entry.group(1)
            assert current not in entries, f"{current} documented twice"
            entries[current] = entry.group(2)
        elif current and line.startswith("        ") and line.strip():
            entries[current] += " " + line.strip()
        else:
            break
    return entries


def default_texts(value) -> set:
    texts = {repr(value), str(value)}
    if isinstance(value, float):
        texts.add(f"{value:g}")
    return {f"default {t}" for t in texts}


def constructor_parameters(cls) -> list:
    if cls.__init__ is object.__init__:
        return []
    return list(inspect.signature(cls.__init__).parameters.values())[1:]  # without self


def test_the_public_classes_are_found():
    names = {cls.__name__ for cls in PUBLIC}
    assert {"LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell", "Dense", "Embedding", "Dropout", "LastStep",
            "Sequential", "EarlyStopping", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "MSE", "CrossEntropy",
            "BCEWithLogits"} <= names


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda cls: cls.__name__)
def test_constructor_arguments_are_documented_and_annotated(cls):
    doc = cls.__dict__.get("__doc__")
    assert doc and doc.strip(), f"{cls.__name__}: no class docstring"
    params = constructor_parameters(cls)
    if not params:
        return
    entries = args_section(doc)
    if "__init__" in cls.__dict__ and cls.__init__.__doc__:
        entries.update(args_section(cls.__init__.__doc__))
    names = [p.name for p in params]
    assert entries, f"{cls.__name__}: the docstring has no 'Args:' section for {names}"
    assert sorted(entries) == sorted(names), (f"{cls.__name__}: documented {sorted(entries)}, constructor takes "
                                              f"{sorted(names)}")
    for p in params:
        assert p.annotation is not inspect.Parameter.empty, f"{cls.__name__}({p.name}): no type annotation"
        if p.default is not inspect.Parameter.empty:
            assert any(t in entries[p.name] for t in default_texts(p.default)), (
                f"{cls.__name__}({p.name}): the entry does not state 'default {p.default!r}': {entries[p.name]!r}")


def test_args_section_parser():
    doc = """Summary line.

    More text mentioning seed.

    Args:
        a: first, default 1.
        b (int): second, spread
            over two lines.

    Returns: nothing.
    """
    assert args_section(doc) == {"a": "first, default 1.", "b": "second, spread over two lines."}
    assert args_section("No sections.") == {}
    assert "default 1e-08" in default_texts(1e-8) and "default 'float32'" in default_texts("float32")


def test_help_of_lstm_names_the_keras_style_options():
    text = inspect.getdoc(rk.LSTM)
    for name in ("kernel_init", "recurrent_init", "forget_bias", "recurrent_dropout", "l1", "l2", "seed", "dtype",
                 "peephole", "batch_first", "dropout", "bidirectional", "bias"):
        assert re.search(rf"^    {name}: \S", text, re.M), name
    assert "c = f c_prev + i g" in text  # the math stays
