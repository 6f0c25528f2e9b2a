"""Generated sequence-to-sequence tasks (the data ships as a generator, not a file).

addition: the Keras example "Sequence to sequence learning for performing addition": questions "a+b" with a, b
of up to `digits` digits, answers the sum; optionally the question reversed (as the Keras example does).
Tokens: 0 pad, 1 start, 2 end, then the characters of VOCAB ("0".."9", "+").
"""
from __future__ import annotations

import numpy as np

from ._checks import positive_int, seed_value

__all__ = ["CHARS", "PAD", "START", "END", "encode", "decode", "addition"]

PAD, START, END = 0, 1, 2
CHARS = "0123456789+"
_ID = {c: i + 3 for i, c in enumerate(CHARS)}
VOCAB_SIZE = 3 + len(CHARS)


def encode(texts, end: bool) -> np.ndarray:
    """(B, longest (+1)) int64 ids of the texts, padded with PAD; end=True appends END to each."""
    rows = [[_ID[c] for c in t] + ([END] if end else []) for t in texts]
    out = np.full((len(rows), max(len(r) for r in rows)), PAD, np.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def decode(tokens) -> str:
    """The text of a token list (stops at END; PAD and START skipped)."""
    chars = []
    for t in tokens:
        t = int(t)
        if t == END:
            break
        if t >= 3:
            chars.append(CHARS[t - 3])
    return "".join(chars)


def addition(n: int, digits: int = 3, reverse: bool = False, seed=0):
    """n distinct questions: (questions, answers) as strings, and (src, tgt) token arrays for Seq2Seq
    (tgt ends with END). Numbers are drawn like the Keras example: each of 1..digits digits equally likely."""
    n, digits = positive_int("n", n), positive_int("digits", digits)
    rng = np.random.default_rng(seed_value(seed))
    capacity = (10 ** digits) ** 2
    if n > capacity // 2:
        raise ValueError(f"n: at most {capacity // 2} distinct questions with {digits} digits, got {n}")
    seen, questions, answers = set(), [], []

    def number():
        width = int(rng.integers(1, digits + 1))
        return int(rng.integers(0 if width == 1 else 10 ** (width - 1), 10 ** width))

    while len(questions) < n:
        a, b = number(), number()
        key = (min(a, b), max(a, b))
        if key in seen:
            continue
        seen.add(key)
        q = f"{a}+{b}"
        questions.append(q[::-1] if reverse else q)
        answers.append(str(a + b))
    return questions, answers, encode(questions, end=False), encode(answers, end=True)
