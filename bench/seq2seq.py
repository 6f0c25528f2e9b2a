"""Seq2Seq training step and decoding throughput: rnnkit against the same model written in PyTorch the usual way
(nn.LSTM encoder, an attention decoder stepping nn.LSTMCell in a Python loop, as in the PyTorch seq2seq tutorial).

The torch model is rnnkit's architecture exactly (bidirectional LSTM encoder, bridge, Bahdanau attention with the
context fed into the decoder input, combine layer, output layer), built from rnnkit's parameters, so the run first
checks that both compute the same loss and the same greedy outputs. Then, libraries taking turns, best of N:
  train   one optimisation step (forward, backward, Adam) on a batch of the addition task
  greedy  decoding 1024 held-out questions (batches of 256; torch stops a batch when every row has ended)
  beam    beam search, width 4, batched over sentences and beams (torch: the usual vectorised top-k)
Ratios are rnnkit time / torch time (lower is better). Usage: python bench/seq2seq.py [--threads N] [--repeats R]
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F

import rnnkit as rk
from rnnkit import tasks


class TorchSeq2Seq(torch.nn.Module):
    """rnnkit.Seq2Seq(cell='lstm', attention='bahdanau', bidirectional_encoder=True, input_feeding=True) in torch."""

    def __init__(self, model: rk.Seq2Seq):
        super().__init__()
        P = {k: torch.tensor(v.copy()) for k, v in model.parameters().items()}
        E, H, V = model.embed_size, model.hidden_size, model.tgt_vocab
        self.src_emb = torch.nn.Embedding.from_pretrained(P["src_embedding.weight"], freeze=False)
        self.tgt_emb = torch.nn.Embedding.from_pretrained(P["tgt_embedding.weight"], freeze=False)
        self.encoder = torch.nn.LSTM(E, H, batch_first=True, bidirectional=True)
        self.encoder.load_state_dict({k[8:]: v for k, v in P.items() if k.startswith("encoder.")})
        self.bridge_h, self.bridge_c = torch.nn.Linear(2 * H, H), torch.nn.Linear(2 * H, H)
        self.bridge_h.load_state_dict({"weight": P["bridge_h.weight"], "bias": P["bridge_h.bias"]})
        self.bridge_c.load_state_dict({"weight": P["bridge_c.weight"], "bias": P["bridge_c.bias"]})
        U = P["attention.weight_query"].shape[0]
        self.Wq = torch.nn.Linear(H, U, bias=False)
        self.Wk = torch.nn.Linear(2 * H, U)
        self.v = torch.nn.Linear(U, 1, bias=False)
        self.Wq.weight.data[...] = P["attention.weight_query"]
        self.Wk.weight.data[...], self.Wk.bias.data[...] = P["attention.weight_key"], P["attention.bias"]
        self.v.weight.data[...] = P["attention.weight_score"][None]
        self.decoder = torch.nn.LSTMCell(E + 2 * H, H)
        self.decoder.load_state_dict({k[8:]: v for k, v in P.items() if k.startswith("decoder.")})
        self.combine = torch.nn.Linear(3 * H, H, bias=False)
        self.combine.weight.data[...] = P["combine.weight"]
        self.out = torch.nn.Linear(H, V)
        self.out.load_state_dict({"weight": P["output.weight"], "bias": P["output.bias"]})
        self.start, self.end, self.pad = model.start_id, model.end_id, model.pad_id

    def encode(self, src, lengths):
        x = self.src_emb(src)
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, (hn, cn) = self.encoder(packed)
        keys, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        h = torch.tanh(self.bridge_h(torch.cat([hn[0], hn[1]], 1)))
        c = self.bridge_c(torch.cat([cn[0], cn[1]], 1))
        mask = torch.arange(src.shape[1])[None, :] < lengths[:, None]
        return keys, self.Wk(keys), mask, h, c

    def step(self, token, h, c, keys, proj, mask):
        e = self.v(torch.tanh(self.Wq(h)[:, None, :] + proj)).squeeze(-1).masked_fill(~mask, float("-inf"))
        a = torch.softmax(e, 1)
        ctx = torch.bmm(a[:, None, :], keys).squeeze(1)
        h, c = self.decoder(torch.cat([self.tgt_emb(token), ctx], 1), (h, c))
        o = torch.tanh(self.combine(torch.cat([ctx, h], 1)))
        return self.out(o), h, c

    def loss(self, src, src_len, tgt, tgt_len):
        keys, proj, mask, h, c = self.encode(src, src_len)
        token = torch.full((src.shape[0],), self.start, dtype=torch.long)
        logits = []
        for t in range(tgt.shape[1]):
            z, h, c = self.step(token, h, c, keys, proj, mask)
            logits.append(z)
            token = tgt[:, t]
        logits = torch.stack(logits, 1)
        target = tgt.masked_fill(torch.arange(tgt.shape[1])[None, :] >= tgt_len[:, None], -100)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)

    @torch.no_grad()
    def greedy(self, src, src_len, max_length):
        keys, proj, mask, h, c = self.encode(src, src_len)
        B = src.shape[0]
        token = torch.full((B,), self.start, dtype=torch.long)
        done = torch.zeros(B, dtype=torch.bool)
        out = []
        for _ in range(max_length):
            z, h, c = self.step(token, h, c, keys, proj, mask)
            z[:, [self.pad, self.start]] = float("-inf")
            token = z.argmax(1)
            out.append(token)
            done |= token == self.end
            if done.all():
                break
        out = torch.stack(out, 1).tolist()
        return [row[:row.index(self.end)] if self.end in row else row for row in out]

    @torch.no_grad()
    def beam(self, src, src_len, max_length, K):
        """Vectorised beam search: B*K rows, finished beams extended only by pad at no cost."""
        keys, proj, mask, h, c = self.encode(src, src_len)
        B = src.shape[0]
        rep = lambda t: t.repeat_interleave(K, 0)  # noqa: E731
        keys, proj, mask, h, c = rep(keys), rep(proj), rep(mask), rep(h), rep(c)
        scores = torch.full((B, K), float("-inf"))
        scores[:, 0] = 0
        token = torch.full((B * K,), self.start, dtype=torch.long)
        finished = torch.zeros(B * K, dtype=torch.bool)
        history = torch.zeros(B * K, 0, dtype=torch.long)
        for _ in range(max_length):
            z, h, c = self.step(token, h, c, keys, proj, mask)
            logp = torch.log_softmax(z, 1)
            logp[:, [self.pad, self.start]] = float("-inf")
            V = logp.shape[1]
            logp[finished] = float("-inf")
            logp[finished, self.pad] = 0.0
            cand = (scores.reshape(-1, 1) + logp).reshape(B, K * V)
            scores, idx = cand.topk(K, 1)
            parent = (idx // V + torch.arange(B)[:, None] * K).reshape(-1)
            token = (idx % V).reshape(-1)
            h, c, history = h[parent], c[parent], torch.cat([history[parent], token[:, None]], 1)
            finished = finished[parent] | (token == self.end)
            if finished.all():
                break
        best = history.reshape(B, K, -1)[:, 0].tolist()
        return [row[:row.index(self.end)] if self.end in row else row for row in best]


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=0, help="threads for both (default: all cores)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--out", default=None, help="also write the table to this markdown file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        rk.set_num_threads(args.threads)
    machine = f"{_cpu_name()}, torch threads {torch.get_num_threads()}, rnnkit {rk.build_info()}"
    print(f"machine: {machine}")
    questions, answers, src, tgt = tasks.addition(3000, digits=3, reverse=True, seed=3)
    model = rk.Seq2Seq(tasks.VOCAB_SIZE, tasks.VOCAB_SIZE, 32, args.hidden, seed=0)
    model.fit(src[:1900], tgt[:1900], epochs=3, batch_size=64, verbose=0)  # a model that emits real answers
    tm = TorchSeq2Seq(model)
    sl = (src != 0).sum(1).astype(np.int32)
    tl = (tgt != 0).sum(1).astype(np.int32)

    # The same numbers first.
    b = slice(0, 64)
    S, T = int(sl[b].max()), int(tl[b].max())
    ours = model.train_batch(src[b, :S], tgt[b, :T], sl[b], tl[b], backward=False)[0]
    theirs = tm.loss(torch.tensor(src[b, :S]), torch.tensor(sl[b]), torch.tensor(tgt[b, :T]), torch.tensor(tl[b]))
    assert abs(ours - theirs.item()) < 1e-4 * abs(ours), (ours, theirs.item())
    held = slice(2000, 3024)
    src_h, sl_h = src[held], sl[held]
    max_length = 2 * int(sl_h.max()) + 10
    greedy_ours = model.predict(src_h, max_length=max_length)
    greedy_theirs = []
    for lo in range(0, len(src_h), 256):
        greedy_theirs += tm.greedy(torch.tensor(src_h[lo:lo + 256]), torch.tensor(sl_h[lo:lo + 256]), max_length)
    agree = np.mean([a == b for a, b in zip(greedy_ours, greedy_theirs)])
    print(f"same loss ({ours:.6f} vs {theirs.item():.6f}); greedy outputs agree on {agree:.1%} of sentences")

    # Training steps: batches of 64, Adam in both.
    opt_t = torch.optim.Adam(tm.parameters(), lr=1e-3)
    opt_r = rk.optim.Adam(model, lr=1e-3)
    batches = [slice(lo, lo + 64) for lo in range(0, 640, 64)]

    def train_rk():
        for s in batches:
            S, T = int(sl[s].max()), int(tl[s].max())
            model.train_batch(src[s, :S], tgt[s, :T], sl[s], tl[s])
            opt_r.step()
            model.zero_grad()

    tb = [(torch.tensor(src[s, :int(sl[s].max())]), torch.tensor(sl[s]), torch.tensor(tgt[s, :int(tl[s].max())]),
           torch.tensor(tl[s])) for s in batches]

    def train_torch():
        for x in tb:
            opt_t.zero_grad()
            tm.loss(*x).backward()
            opt_t.step()

    def greedy_rk():
        model.predict(src_h, max_length=max_length)

    def greedy_torch():
        for lo in range(0, len(src_h), 256):
            tm.greedy(torch.tensor(src_h[lo:lo + 256]), torch.tensor(sl_h[lo:lo + 256]), max_length)

    def beam_rk():
        model.predict(src_h, method="beam", beam_width=4, max_length=max_length)

    def beam_torch():
        for lo in range(0, len(src_h), 256):
            tm.beam(torch.tensor(src_h[lo:lo + 256]), torch.tensor(sl_h[lo:lo + 256]), max_length, 4)

    rows = []
    for name, ours_fn, theirs_fn, unit, count in [
            ("train step (B=64, H=%d)" % args.hidden, train_rk, train_torch, "ms/step", len(batches)),
            ("greedy decode, 1024 sentences", greedy_rk, greedy_torch, "sent/s", len(src_h)),
            ("beam decode (width 4), 1024 sentences", beam_rk, beam_torch, "sent/s", len(src_h))]:
        r_times, t_times = [], []
        for _ in range(args.repeats):  # taking turns
            r_times.append(best_of(ours_fn, 1))
            t_times.append(best_of(theirs_fn, 1))
        r, t = min(r_times), min(t_times)
        if unit == "ms/step":
            print(f"{name:40s} rnnkit {1e3 * r / count:8.2f} ms/step   torch {1e3 * t / count:8.2f} ms/step   "
                  f"ratio {r / t:.3f}")
        else:
            print(f"{name:40s} rnnkit {count / r:8.0f} sent/s    torch {count / t:8.0f} sent/s    ratio {r / t:.3f}")
        rows.append((name, r, t, count, unit))
    if args.out:
        lines = [f"# Seq2Seq: rnnkit vs the same model in PyTorch ({time.strftime('%Y-%m-%d')})", "",
                 f"`python bench/seq2seq.py --out {args.out}` on {machine}, torch {torch.__version__}; best of "
                 f"{args.repeats}, libraries taking turns; ratio = rnnkit time / torch time (lower is better).", "",
                 f"Check first: same loss on a batch, greedy outputs agree on {agree:.1%} of sentences.", "",
                 "| case | rnnkit | torch | ratio |", "|---|---|---|---|"]
        for name, r, t, count, unit in rows:
            if unit == "ms/step":
                lines.append(f"| {name} | {1e3 * r / count:.2f} ms/step | {1e3 * t / count:.2f} ms/step | {r / t:.3f} |")
            else:
                lines.append(f"| {name} | {count / r:.0f} sent/s | {count / t:.0f} sent/s | {r / t:.3f} |")
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
    return rows


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
