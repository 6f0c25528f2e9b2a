"""Coverage-guided fuzzing (atheris) of the Python loaders of untrusted files: rk.load, rk.load_checkpoint,
rk.load_metadata, rk.from_onnx and rk.from_keras. Every input must load, or be refused with rk.ModelFileError
(a ValueError; the importers' refusals are ModelFileError too); any other exception, a crash or a hang is a
finding. Run: python fuzz/python/fuzz_loaders.py TARGET [libFuzzer flags] [corpus dirs]
(TARGET: load, checkpoint, metadata, onnx, keras, keras-members: one member of a valid .keras zip replaced
by the input, past the zip's CRCs); fuzz/run_python.sh runs them all."""
import io
import os
import sys
import tempfile
import zipfile

import atheris

with atheris.instrument_imports(include=["rnnkit"]):
    import rnnkit as rk
    # (imported lazily by rk.from_onnx / rk.from_keras: import them here so that they are instrumented too)
    import rnnkit.keras_io  # noqa: F401
    import rnnkit.onnx_import  # noqa: F401

TARGETS = {
    "load": (rk.load, ".safetensors"),
    "checkpoint": (rk.load_checkpoint, ".safetensors"),
    "metadata": (rk.load_metadata, ".safetensors"),
    "onnx": (rk.from_onnx, ".onnx"),
    "keras": (rk.from_keras, ".keras"),
    "keras-members": (rk.from_keras, ".keras"),
}
SEED_KERAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus", "python_keras", "lstm.keras")


def keras_members(data: bytes) -> bytes:
    """A valid zip (correct CRCs, so mutations reach the parsers behind it) of the seed .keras file with one member
    replaced by the input: byte 0 picks config.json, model.weights.h5 or metadata.json, the rest is its content."""
    with zipfile.ZipFile(SEED_KERAS) as z:
        members = {name: z.read(name) for name in z.namelist()}
    names = sorted(members)
    if data:
        members[names[data[0] % len(names)]] = data[1:]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, content in members.items():
            z.writestr(name, content)
    return out.getvalue()


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer flags] [corpus dirs]")
    loader, suffix = TARGETS[sys.argv[1]]
    rk.set_num_threads(1)
    # As the C++ harnesses build with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION: accept whatever checksum a file
    # states, so that mutated files reach the parsing and validation behind the CRC instead of stopping there.
    rk.io._checksum = lambda metadata, tensors: metadata.get("rnnkit.crc32")
    folder = "/dev/shm" if os.path.isdir("/dev/shm") else None
    fd, path = tempfile.mkstemp(suffix=suffix, dir=folder)
    os.close(fd)

    prepare = keras_members if sys.argv[1] == "keras-members" else (lambda data: data)

    def one_input(data: bytes) -> None:
        with open(path, "wb") as f:
            f.write(prepare(data))
        try:
            loader(path)
        except rk.ModelFileError:
            pass  # a clean refusal

    try:
        atheris.Setup([sys.argv[0]] + sys.argv[2:], one_input)
        atheris.Fuzz()
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main()
