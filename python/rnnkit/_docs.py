"""The constructor arguments the recurrent layers and cells share, described once; each class's docstring is
its own summary plus these entries (with the class's own wording where it differs), so help() on any of them
lists every argument."""
from __future__ import annotations

import textwrap

ARGS = {
    "input_size": "features per step of x (I).",
    "hidden_size": "features of the hidden state h (H).",
    "num_layers": "stacked layers (L), default 1; layer k > 0 reads layer k - 1's outputs.",
    "bias": "whether the layer has the biases bias_ih_l{k} and bias_hh_l{k}, default True.",
    "batch_first": "x and y are (B, T, ·) instead of (T, B, ·), default False; states stay (L*D, B, H).",
    "dropout": "probability of zeroing each output of a layer before the next layer reads it (inverted dropout, "
               "training only, none after the last layer, as torch), default 0.0.",
    "bidirectional": "add a reverse-time direction (D = 2) whose outputs are concatenated, default False.",
    "seed": "non-negative integer below 2**64 that fixes the initial weights and the dropout masks; default None "
            "draws fresh OS entropy.",
    "dtype": "'float32' or 'float64' (or np.float32 / np.float64) for parameters, inputs and outputs, default "
             "'float32'.",
    "recurrent_dropout": "probability of zeroing each unit of h_prev where it enters the recurrence, one mask per "
                         "sequence kept over all steps (Gal & Ghahramani 2016, Keras's recurrent_dropout), training "
                         "only; default 0.0.",
    "l1": "coefficient of the L1 penalty l1 Σ|w| on the weights (not biases) that regularize() and fit add, "
          "default 0.0.",
    "l2": "coefficient of the L2 penalty l2 Σ w² on the weights (not biases), default 0.0.",
    "kernel_init": "initialisation of weight_ih: 'uniform' (torch's U(-1/sqrt(H), 1/sqrt(H))) or 'glorot_uniform' "
                   "(U(±sqrt(6 / (fan_in + fan_out))), Keras's default), default 'uniform'.",
    "recurrent_init": "initialisation of weight_hh: 'uniform' (as torch) or 'orthogonal' (an orthogonal (H, H) "
                      "block per gate, Keras's default), default 'uniform'.",
    "backend": "where the sequence loops run: 'cpu' (a team of threads that own hidden units, packed weights) or "
               "'reference' (plain single-threaded loops written from the formulas: slow, the oracle the fast path "
               "is tested against), default 'cpu'.",
}

ARGS.update({
    "activation": "the candidate's and the cell output's activation act, default 'tanh': 'tanh', 'sigmoid', 'relu', "
                  "'linear', 'softsign', 'softplus', 'elu', 'hard_sigmoid' (Keras 3: relu6(x + 3) / 6), "
                  "'leaky_relu', 'scaled_tanh', or a tuple with parameters: ('hard_sigmoid', alpha, beta) (ONNX: "
                  "clip(alpha x + beta, 0, 1)), ('leaky_relu', alpha), ('elu', alpha), ('scaled_tanh', alpha, beta) "
                  "(alpha tanh(beta x)).",
    "recurrent_activation": "the gates' activation σ, default 'sigmoid'; the same choices as activation.",
    "cell_clip": "default None (no clipping); a positive c clips the inputs of the gate and candidate activations "
                 "to [-c, c] (ONNX's clip as onnxruntime applies it; the cell state is not clipped); no gradient "
                 "passes where it clips.",
    "zoneout": "probability that a unit of h keeps its previous value at a training step (Krueger et al. 2017; "
               "inference uses the expectation), default 0.0.",
    "zoneout_cell": "the same for the cell state c, default 0.0.",
    "full_gate_recurrence": "Greff's FGR (see above): the gates also see the previous step's gate activations, "
                            "default False.",
    "layer_norm": "layer-normalise the input and recurrent products (see above), default False.",
    "proj_size": "features of h after a learned projection (see above; torch's proj_size), below hidden_size; "
                 "default 0 (no projection).",
    "merge_mode": "how a bidirectional layer's last-layer outputs combine (Keras's Bidirectional): 'concat' (D*H "
                  "features), 'sum', 'mul', 'ave' (H features), or None (y is a tuple (y_forward, y_backward) and "
                  "backward takes a tuple dy); inner layers always concatenate, as torch; default 'concat'.",
    "input_gate": "keep the input gate i, default True; False is Greff's NIG (i = 1, no i rows).",
    "forget_gate": "keep the forget gate f, default True; False is Greff's NFG (f = 1, no f rows).",
    "output_gate": "keep the output gate o, default True; False is Greff's NOG (o = 1, no o rows).",
    "input_activation": "apply activation to the candidate g, default True; False is Greff's NIAF (g linear).",
    "output_activation": "apply activation to the cell state before the output gate, default True; False is "
                         "Greff's NOAF (h = o c).",
    "coupled_input_forget": "couple the input gate to the forget gate, i = 1 - f (Greff's CIFG), default False; "
                            "the layer then has no input-gate rows. ONNX's input_forget (onnxruntime: f = 1 - i) is "
                            "the same model with the coupled gate's weights negated (sigmoid gates).",
})

LSTM_OPTIONS = ("activation", "recurrent_activation", "cell_clip", "proj_size", "layer_norm", "zoneout", "zoneout_cell", "merge_mode",
                "input_gate", "forget_gate", "output_gate", "input_activation", "output_activation",
                "coupled_input_forget", "full_gate_recurrence")
GRU_OPTIONS = ("activation", "recurrent_activation", "layer_norm", "zoneout", "merge_mode")

# The arguments of every recurrent layer, in constructor order (a class adds its own where its signature has them).
LAYER_ARGS = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional", "seed",
              "dtype", "recurrent_dropout", "l1", "l2", "kernel_init", "recurrent_init", "backend")

# A single-step cell's wording where it differs from a layer's.
CELL_ARGS = {
    "input_size": "features of x (I).",
    "bias": "whether the cell has the biases bias_ih and bias_hh, default True.",
    "seed": "non-negative integer below 2**64 that fixes the initial weights (torch's U(-1/sqrt(H), 1/sqrt(H))); "
            "default None draws fresh OS entropy.",
    "backend": "where the step runs: 'cpu' or 'reference' (plain loops written from the formulas, for checking), "
               "default 'cpu'.",
}
CELL_NAMES = ("input_size", "hidden_size", "bias", "seed", "dtype", "backend")


def document(summary: str, names, **own) -> str:
    """summary, then an "Args:" section with an entry per name: own[name] if given, else ARGS[name]."""
    lines = [textwrap.dedent(summary).strip("\n"), "", "Args:"]
    for name in names:
        lines += textwrap.wrap(f"{name}: {own.get(name, ARGS.get(name))}", width=116, initial_indent="    ", break_on_hyphens=False,
                               subsequent_indent="        ")
    return "\n".join(lines) + "\n"


def insert_after(names, anchor: str, *added) -> tuple:
    """names with `added` placed right after `anchor` (a class's own arguments in its constructor order)."""
    names = list(names)
    at = names.index(anchor) + 1
    return tuple(names[:at] + list(added) + names[at:])
