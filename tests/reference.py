"""Plain NumPy reference implementation of the rnnkit forward pass.

Written directly from the formulas of the rnnkit contract (and torch.nn's
documentation for the standard cells), deliberately simple and unoptimised so
that it can be read and checked by eye.  It supports every cell kind

* ``"lstm"`` (optionally with Gers & Schmidhuber peephole connections),
* ``"gru"`` with ``linear_before_reset`` True (torch) or False (Cho et al.),
* ``"rnn"`` with ``tanh`` or ``relu``,

and, for whole layers, stacked layers, bidirectional layers, ``batch_first``
and per-sequence ``lengths`` with packed-sequence semantics.  Dropout is not
modelled (the reference is the inference / ``dropout=0`` model).

Parameters are looked up by torch.nn names (``weight_ih_l0``,
``bias_hh_l1_reverse``, ``weight_peephole_l0`` ...); cells use the unsuffixed
names (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``,
``weight_peephole``).
"""

import numpy as np

NUM_GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def sigmoid(a):
    # tanh form: exact same function, but never overflows (no RuntimeWarning).
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def cell_step(kind, x, h, c, p, *, peephole=False, linear_before_reset=True,
              nonlinearity="tanh", trace=None):
    """One time step of a cell.

    x: (B, I), h and c: (B, H) (c is ignored unless kind == "lstm").
    p: dict with weight_ih, weight_hh and optionally bias_ih, bias_hh,
    weight_peephole.  Returns (h_new, c_new) (c_new is None except for LSTM).
    If ``trace`` is a list, the pre-activations of piecewise-linear units
    (RNN relu) are appended to it, so callers can check they avoid the kink.
    """
    H = h.shape[-1]
    w_ih, w_hh = p["weight_ih"], p["weight_hh"]
    b_ih = p.get("bias_ih", np.zeros(w_ih.shape[0]))
    b_hh = p.get("bias_hh", np.zeros(w_hh.shape[0]))
    gx = x @ w_ih.T + b_ih

    if kind == "lstm":
        gates = gx + h @ w_hh.T + b_hh
        a_i, a_f, a_g, a_o = (gates[:, k * H:(k + 1) * H] for k in range(4))
        if peephole:
            pw = p["weight_peephole"]  # rows i, f, o
            a_i = a_i + pw[0] * c
            a_f = a_f + pw[1] * c
        i, f, g = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g)
        c_new = f * c + i * g
        if peephole:
            a_o = a_o + pw[2] * c_new
        o = sigmoid(a_o)
        return o * np.tanh(c_new), c_new

    if kind == "gru":
        x_r, x_z, x_n = (gx[:, k * H:(k + 1) * H] for k in range(3))
        w_hr, w_hz, w_hn = (w_hh[k * H:(k + 1) * H] for k in range(3))
        b_hr, b_hz, b_hn = (b_hh[k * H:(k + 1) * H] for k in range(3))
        r = sigmoid(x_r + h @ w_hr.T + b_hr)
        z = sigmoid(x_z + h @ w_hz.T + b_hz)
        if linear_before_reset:  # torch.nn.GRU
            n = np.tanh(x_n + r * (h @ w_hn.T + b_hn))
        else:  # Cho et al. 2014 / ONNX linear_before_reset=0
            n = np.tanh(x_n + (r * h) @ w_hn.T + b_hn)
        return (1.0 - z) * n + z * h, None

    if kind == "rnn":
        a = gx + h @ w_hh.T + b_hh
        if nonlinearity == "tanh":
            return np.tanh(a), None
        if nonlinearity == "relu":
            if trace is not None:
                trace.append(a)
            return np.maximum(a, 0.0), None
        raise ValueError(nonlinearity)

    raise ValueError(kind)


def _layer_params(params, layer, reverse):
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    out = {}
    for base in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_peephole"):
        if base + suffix in params:
            out[base] = np.asarray(params[base + suffix], dtype=np.float64)
    return out


def _run_direction(kind, x, h0, c0, p, lengths, reverse, opts, trace):
    """x: (T, B, I).  Packed-sequence semantics via a validity mask."""
    T, B = x.shape[:2]
    h, c = h0.copy(), None if c0 is None else c0.copy()
    ys = np.zeros((T, B, h0.shape[-1]))
    steps = range(T - 1, -1, -1) if reverse else range(T)
    for t in steps:
        valid = (t < lengths)[:, None]  # (B, 1)
        h_new, c_new = cell_step(kind, x[t], h, c if c is not None else h, p,
                                 trace=trace, **opts)
        # Padded steps leave the state untouched: the forward direction keeps
        # the state of the last valid step, the reverse direction starts at
        # the last valid step (state stays at h0 before it).
        h = np.where(valid, h_new, h)
        if c is not None:
            c = np.where(valid, c_new, c)
        ys[t] = np.where(valid, h, 0.0)
    return ys, h, c


def rnn_forward(kind, x, state, params, *, num_layers=1, bidirectional=False,
                batch_first=False, lengths=None, peephole=False,
                linear_before_reset=True, nonlinearity="tanh", trace=None):
    """Forward pass of a full (possibly stacked / bidirectional) layer.

    Returns (y, (h_n, c_n)) for LSTM and (y, h_n) otherwise, in float64,
    with the same layouts as torch.nn / rnnkit.
    """
    x = np.asarray(x, dtype=np.float64)
    if batch_first:
        x = x.transpose(1, 0, 2)
    T, B, _ = x.shape
    D = 2 if bidirectional else 1
    H = np.asarray(params["weight_hh_l0"]).shape[1]
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)

    if kind == "lstm":
        h0, c0 = (None, None) if state is None else state
    else:
        h0, c0 = state, None
    h0 = np.zeros((num_layers * D, B, H)) if h0 is None else np.asarray(h0, np.float64)
    if kind == "lstm":
        c0 = np.zeros((num_layers * D, B, H)) if c0 is None else np.asarray(c0, np.float64)

    opts = {}
    if kind == "lstm":
        opts["peephole"] = peephole
    elif kind == "gru":
        opts["linear_before_reset"] = linear_before_reset
    else:
        opts["nonlinearity"] = nonlinearity

    h_n = np.zeros((num_layers * D, B, H))
    c_n = np.zeros((num_layers * D, B, H)) if kind == "lstm" else None
    inp = x
    for layer in range(num_layers):
        outs = []
        for d in range(D):
            k = layer * D + d
            p = _layer_params(params, layer, reverse=(d == 1))
            ys, h, c = _run_direction(kind, inp, h0[k], None if c0 is None else c0[k],
                                      p, lengths, d == 1, opts, trace)
            outs.append(ys)
            h_n[k] = h
            if c_n is not None:
                c_n[k] = c
        inp = np.concatenate(outs, axis=2)

    y = inp.transpose(1, 0, 2) if batch_first else inp
    return (y, (h_n, c_n)) if kind == "lstm" else (y, h_n)


def cell_forward(kind, x, state, params, **opts):
    """Single step of a cell; state as for rnnkit cells (tuple for LSTM)."""
    x = np.asarray(x, dtype=np.float64)
    H = np.asarray(params["weight_hh"]).shape[1]
    B = x.shape[0]
    if kind == "lstm":
        h, c = (None, None) if state is None else state
    else:
        h, c = state, None
    h = np.zeros((B, H)) if h is None else np.asarray(h, np.float64)
    c = np.zeros((B, H)) if c is None else np.asarray(c, np.float64)
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    h_new, c_new = cell_step(kind, x, h, c, p, **opts)
    return (h_new, c_new) if kind == "lstm" else h_new
