"""NumPy reference for the variants of the LSTM family, written from the formulas in rnnkit's docs.

Covers what tests/reference.py (the classic cells) does not: every activation, cell_clip, Greff's gate options
(NIG, NFG, NOG, NIAF, NOAF, CIFG) with and without peepholes, GRU activations, RNN with any nonlinearity, IndRNN,
zoneout at inference (the expectation), lengths with zeros, and bidirectional merge modes. Inference math only
(no dropout); layouts are torch's: weight_ih_l{k}[_reverse] (G*H, I) with the gates that remain in the order
i, f, g, o (LSTM), r, z, n (GRU).
"""
import numpy as np

DEFAULT_PARAMS = {"hard_sigmoid": (1.0 / 6.0, 0.5), "leaky_relu": (0.01,), "elu": (1.0,), "scaled_tanh": (1.0, 1.0)}


def act(spec, x):
    """spec: a name or (name, parameters...)."""
    name, params = (spec, DEFAULT_PARAMS.get(spec, ())) if isinstance(spec, str) else (spec[0], tuple(spec[1:]))
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * x))
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "linear":
        return x
    if name == "softsign":
        return x / (1.0 + np.abs(x))
    if name == "softplus":
        return np.logaddexp(0.0, x)
    if name == "elu":
        return np.where(x > 0, x, params[0] * np.expm1(np.minimum(x, 0.0)))
    if name == "hard_sigmoid":
        return np.clip(params[0] * x + params[1], 0.0, 1.0)
    if name == "leaky_relu":
        return np.where(x > 0, x, params[0] * x)
    if name == "scaled_tanh":
        return params[0] * np.tanh(params[1] * x)
    raise ValueError(name)


def layer_norm(v, eps=1e-5):
    """Each row to zero mean and unit variance."""
    mu = v.mean(axis=-1, keepdims=True)
    return (v - mu) / np.sqrt(v.var(axis=-1, keepdims=True) + eps)


def lstm_gates(o):
    """The gates with rows, in order."""
    out = []
    if o.get("input_gate", True) and not o.get("coupled_input_forget", False):
        out.append("i")
    if o.get("forget_gate", True):
        out.append("f")
    out.append("g")
    if o.get("output_gate", True):
        out.append("o")
    return out


def lstm_step(x, h, c, p, o, a_prev=None):
    """One LSTM step; with full_gate_recurrence a_prev is the previous step's [i, f, o] (B, 3H) and the step
    returns (h, c, a)."""
    H = c.shape[1]  # (h has proj_size features with a projection)
    if o.get("layer_norm"):
        pre = p["weight_ln_ih"] * layer_norm(x @ p["weight_ih"].T) + p["weight_ln_hh"] * layer_norm(h @ p["weight_hh"].T)
    else:
        pre = x @ p["weight_ih"].T + h @ p["weight_hh"].T
    if "bias_ih" in p:
        pre = pre + p["bias_ih"] + p["bias_hh"]
    blocks = {name: pre[:, k * H:(k + 1) * H] for k, name in enumerate(lstm_gates(o))}
    if o.get("full_gate_recurrence"):
        extra = a_prev @ p["weight_gates"].T  # rows i, f, o
        for k, name in enumerate("ifo"):
            blocks[name] = blocks[name] + extra[:, k * H:(k + 1) * H]
    P = p.get("weight_peephole", np.zeros((3, H)))
    cc = o.get("cell_clip") or 0.0
    clip = (lambda v: np.clip(v, -cc, cc)) if cc else (lambda v: v)
    a, ra = o.get("activation", "tanh"), o.get("recurrent_activation", "sigmoid")
    f = act(ra, clip(blocks["f"] + P[1] * c)) if "f" in blocks else 1.0
    if o.get("coupled_input_forget", False):
        i = 1.0 - f
    else:
        i = act(ra, clip(blocks["i"] + P[0] * c)) if "i" in blocks else 1.0
    g = act(a if o.get("input_activation", True) else "linear", clip(blocks["g"]))
    c_new = f * c + i * g
    og = act(ra, clip(blocks["o"] + P[2] * c_new)) if "o" in blocks else 1.0
    c_out = p["weight_ln_c"] * layer_norm(c_new) + p["bias_ln_c"] if o.get("layer_norm") else c_new
    h_new = og * act(a if o.get("output_activation", True) else "linear", c_out)  # c itself is not clipped
    if "weight_hr" in p:  # proj_size: h = m W_hr^T
        h_new = h_new @ p["weight_hr"].T
    if o.get("full_gate_recurrence"):
        return h_new, c_new, np.concatenate([i, f, og], axis=1)
    return h_new, c_new


def gru_step(x, h, p, o):
    H = h.shape[1]
    a, ra = o.get("activation", "tanh"), o.get("recurrent_activation", "sigmoid")
    if o.get("layer_norm"):  # normalised products, biases after; linear_before_reset
        ax = p["weight_ln_ih"] * layer_norm(x @ p["weight_ih"].T) + (p["bias_ih"] if "bias_ih" in p else 0.0)
        ar = p["weight_ln_hh"] * layer_norm(h @ p["weight_hh"].T) + (p["bias_hh"] if "bias_hh" in p else 0.0)
        r = act(ra, ax[:, :H] + ar[:, :H])
        z = act(ra, ax[:, H:2 * H] + ar[:, H:2 * H])
        n = act(a, ax[:, 2 * H:] + r * ar[:, 2 * H:])
        return (1.0 - z) * n + z * h
    gi = x @ p["weight_ih"].T + (p["bias_ih"] if "bias_ih" in p else 0.0)
    bh = p["bias_hh"] if "bias_hh" in p else np.zeros(3 * H)
    R = p["weight_hh"]
    r = act(ra, gi[:, :H] + h @ R[:H].T + bh[:H])
    z = act(ra, gi[:, H:2 * H] + h @ R[H:2 * H].T + bh[H:2 * H])
    if o.get("linear_before_reset", True):
        n = act(a, gi[:, 2 * H:] + r * (h @ R[2 * H:].T + bh[2 * H:]))
    else:
        n = act(a, gi[:, 2 * H:] + (r * h) @ R[2 * H:].T + bh[2 * H:])
    return (1.0 - z) * n + z * h


def rnn_step(x, h, p, o):
    pre = x @ p["weight_ih"].T + h @ p["weight_hh"].T
    if "bias_ih" in p:
        pre = pre + p["bias_ih"] + p["bias_hh"]
    return act(o.get("nonlinearity", "tanh"), pre)


def indrnn_step(x, h, p, o):
    u = p["weight_hh"]
    c = o.get("recurrent_clip") or 0.0
    if c:
        u = np.clip(u, -c, c)
    pre = x @ p["weight_ih"].T + u * h
    if "bias_ih" in p:
        pre = pre + p["bias_ih"] + p["bias_hh"]
    return act(o.get("nonlinearity", "relu"), pre)


def step(kind, x, h, c, p, o):
    """One step with zoneout's inference expectation; returns (h, c). With full_gate_recurrence c is the pair
    (c, a) and so is the c returned."""
    if kind == "lstm" and o.get("full_gate_recurrence"):
        h_new, c_new, a_new = lstm_step(x, h, c[0], p, o, c[1])
        return h_new, (c_new, a_new)
    if kind == "lstm":
        h_new, c_new = lstm_step(x, h, c, p, o)
    elif kind == "gru":
        h_new, c_new = gru_step(x, h, p, o), None
    elif kind == "rnn":
        h_new, c_new = rnn_step(x, h, p, o), None
    else:
        h_new, c_new = indrnn_step(x, h, p, o), None
    zh, zc = o.get("zoneout", 0.0), o.get("zoneout_cell", 0.0)
    h_new = zh * h + (1.0 - zh) * h_new
    if c_new is not None:
        c_new = zc * c + (1.0 - zc) * c_new
    return h_new, c_new


def layer_forward(kind, x, params, options, *, num_layers=1, bidirectional=False, lengths=None, h0=None, c0=None,
                  a0=None):
    """x (T, B, I) -> y (T, B, D*H) concatenated (merge() combines), h_n, c_n (L*D, B, H); packed semantics:
    steps at t >= lengths[b] keep the state and output 0 (a length of 0: zeros and the initial state)."""
    T, B, _ = x.shape
    D = 2 if bidirectional else 1
    H = params["weight_ih_l0"].shape[0] // {"lstm": len(lstm_gates(options)), "gru": 3}.get(kind, 1)
    P = params["weight_hr_l0"].shape[0] if "weight_hr_l0" in params else H  # features of h
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    h_n, c_n = np.zeros((num_layers * D, B, P)), np.zeros((num_layers * D, B, H))
    fgr = options.get("full_gate_recurrence", False)
    a_n = np.zeros((num_layers * D, B, 3 * H))
    inp = x
    for layer in range(num_layers):
        outs = []
        for d in range(D):
            k = layer * D + d
            suffix = f"_l{layer}" + ("_reverse" if d else "")
            p = {name[:-len(suffix)]: v for name, v in params.items() if name.endswith(suffix)}
            h = np.zeros((B, P)) if h0 is None else h0[k].copy()
            c = np.zeros((B, H)) if c0 is None else c0[k].copy()
            a = np.zeros((B, 3 * H)) if a0 is None else a0[k].copy()
            y = np.zeros((T, B, P))
            for t in (range(T - 1, -1, -1) if d else range(T)):
                valid = (t < lengths)[:, None]
                if fgr:
                    hn, (cn, an) = step(kind, inp[t], h, (c, a), p, options)
                    a = np.where(valid, an, a)
                else:
                    hn, cn = step(kind, inp[t], h, c, p, options)
                h = np.where(valid, hn, h)
                if cn is not None:
                    c = np.where(valid, cn, c)
                y[t] = np.where(valid, hn, 0.0)
            outs.append(y)
            h_n[k], c_n[k], a_n[k] = h, c, a
        inp = np.concatenate(outs, axis=2)
    if fgr:
        return inp, h_n, (c_n, a_n)
    return inp, h_n, c_n


def merge(y, H, mode):
    if mode == "concat":
        return y
    fwd, bwd = y[..., :H], y[..., H:]
    return {"sum": lambda: fwd + bwd, "mul": lambda: fwd * bwd, "ave": lambda: 0.5 * (fwd + bwd),
            None: lambda: (fwd, bwd)}[mode]()
