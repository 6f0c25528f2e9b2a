// Seq2Seq decoding: greedy and batched beam search, every step in C++. See rnnkit/seq2seq.hpp.
//
// Rows: a step runs N rows at once (greedy: the sentences still decoding; beam: every live hypothesis of every
// sentence still decoding), each reading its sentence's encoder outputs (rows[n]). After a step the surviving
// rows are gathered (states, fed-back õ), so finished sentences cost nothing more.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cpu/team.hpp"
#include "nn/seq2seq_impl.hpp"

namespace rnnkit {
inline namespace v0 {

namespace {

// GNMT's length penalty ((5 + n) / 6)^alpha.
double length_penalty(int n, double alpha) {
    return alpha == 0.0 ? 1.0 : std::pow((5.0 + n) / 6.0, alpha);
}

// v = v[from] row-wise, through `scratch` (the two swap, so their memory is reused step after step).
template <class S>
void gather(std::vector<S>& v, const std::vector<int>& from, int width, std::vector<S>& scratch) {
    scratch.resize(from.size() * std::size_t(width));
    for (std::size_t j = 0; j < from.size(); ++j)
        std::memcpy(scratch.data() + j * width, v.data() + std::size_t(from[j]) * width, sizeof(S) * width);
    v.swap(scratch);
}

}  // namespace

template <class S>
Decoded<S> Seq2Seq<S>::decode(const std::int64_t* src, const int* src_lengths, int Sn, int B, int beam_width,
                              bool greedy, int max_length, double alpha, bool keep_attention) {
    const detail::KernelThreads threads;
    Seq2SeqBatch<S> batch;
    batch.B = B;
    batch.Sn = Sn;
    batch.src_tokens = src;
    batch.src_lengths = src_lengths;
    return decode(batch, beam_width, greedy, max_length, alpha, keep_attention);
}

template <class S>
void Seq2Seq<S>::generate(S* out, S* attention, const Seq2SeqBatch<S>& source, int steps) {
    const detail::KernelThreads threads;
    Impl& m = *impl_;
    if (!m.tgt_values())
        throw std::invalid_argument("generate: this model's targets are token ids; use decode (greedy or beam search)");
    if (steps < 0) throw std::invalid_argument("steps: expected a non-negative integer, got " + std::to_string(steps));
    typename Impl::Encoded enc = m.encode(source, false);
    const int B = enc.B, Sn = enc.Sn, H = m.H(), K = m.K(), F = m.F(), V = m.V(), NS = m.NS();
    std::vector<S> h = enc.state0[0], c = NS > 1 ? enc.state0[1] : std::vector<S>(), feed(std::size_t(B) * std::max(F, 1), S(0));
    std::vector<S> prev(std::size_t(B) * V, S(0)), h_next(h.size()), c_next(c.size()), ctx(std::size_t(B) * K),
        att(std::size_t(B) * Sn), o(std::size_t(B) * H), y(std::size_t(B) * V);
    for (int t = 0; t < steps; ++t) {
        m.infer_step(enc, nullptr, B, nullptr, prev.data(), feed.data(), h.data(), NS > 1 ? c.data() : nullptr,
                     h_next.data(), NS > 1 ? c_next.data() : nullptr, m.attention ? ctx.data() : nullptr,
                     m.attention ? att.data() : nullptr, o.data(), y.data());
        for (int b = 0; b < B; ++b) {
            std::memcpy(out + (std::size_t(b) * steps + t) * V, y.data() + std::size_t(b) * V, sizeof(S) * V);
            if (attention)
                for (int s = 0; s < Sn; ++s)
                    attention[(std::size_t(b) * steps + t) * Sn + s] = m.attention ? att[std::size_t(b) * Sn + s] : S(0);
        }
        prev.swap(y);
        h.swap(h_next);
        if (NS > 1) c.swap(c_next);
        if (m.luong() && F) feed = o;
    }
}

template <class S>
Decoded<S> Seq2Seq<S>::decode(const Seq2SeqBatch<S>& source, int beam_width, bool greedy, int max_length,
                              double alpha, bool keep_attention) {
    const detail::KernelThreads threads;
    Impl& m = *impl_;
    if (m.tgt_values())
        throw std::invalid_argument("decode: this model's targets are values; use generate(out, attention, source, steps)");
    if (beam_width < 1) throw std::invalid_argument("beam_width: expected a positive integer, got " + std::to_string(beam_width));
    if (max_length < 0) throw std::invalid_argument("max_length: expected a non-negative integer, got " + std::to_string(max_length));
    if (!(alpha >= 0.0) || !std::isfinite(alpha))
        throw std::invalid_argument("length_penalty: expected a non-negative number, got " + std::to_string(alpha));
    typename Impl::Encoded enc = m.encode(source, false);
    const int B = enc.B, Sn = enc.Sn;
    const int H = m.H(), K = m.K(), F = m.F(), V = m.V(), NS = m.NS();
    const int Kb = greedy ? 1 : beam_width;
    const std::int64_t end = m.config.end_id, pad = m.config.pad_id, start = m.config.start_id;

    // Per step t: the rows' attention weights, and for the rows of step t + 1 their parent row and token.
    std::vector<std::vector<S>> att_steps;
    std::vector<std::vector<int>> parent_steps;
    std::vector<std::vector<std::int64_t>> token_steps;
    struct Finished {
        double score;  // length-penalised
        int step, row;  // the row of step `step` that emitted end (or was cut there)
        bool ended;
    };
    std::vector<std::vector<Finished>> finished(B);
    std::vector<char> done(B, 0);

    // Rows of step 0: one per sentence, from the bridge's states.
    std::vector<int> rows(B);
    for (int b = 0; b < B; ++b) rows[b] = b;
    std::vector<double> score(B, 0.0);
    std::vector<std::int64_t> prev(B, start);
    std::vector<S> h = enc.state0[0], c = NS > 1 ? enc.state0[1] : std::vector<S>(), feed(std::size_t(B) * std::max(F, 1), S(0));
    int N = B;
    std::vector<S> h_next, c_next, ctx, att, o, logp, scratch;  // per-step buffers, sized for the live rows
    for (int t = 0; N > 0; ++t) {
        if (t == max_length) {  // the live hypotheses finish here, cut
            for (int n = 0; n < N; ++n) {
                const int b = rows[n];
                finished[b].push_back({score[n] / length_penalty(t, alpha), t, n, false});
            }
            att_steps.emplace_back();
            break;
        }
        h_next.resize(std::size_t(N) * H);
        c_next.resize(NS > 1 ? std::size_t(N) * H : 0);
        ctx.resize(std::size_t(N) * K);
        att.resize(std::size_t(N) * Sn);
        o.resize(std::size_t(N) * H);
        logp.resize(std::size_t(N) * V);
        m.infer_step(enc, rows.data(), N, prev.data(), nullptr, feed.data(), h.data(), NS > 1 ? c.data() : nullptr, h_next.data(),
                     NS > 1 ? c_next.data() : nullptr, m.attention ? ctx.data() : nullptr, m.attention ? att.data() : nullptr,
                     o.data(), logp.data());
        // Choose: per sentence, the continuations of its rows.
        std::vector<int> from;
        std::vector<std::int64_t> chosen;
        std::vector<double> next_score;
        std::vector<int> next_rows;
        if (greedy) {
            for (int n = 0; n < N; ++n) {
                const S* lp = logp.data() + std::size_t(n) * V;
                std::int64_t best = -1;
                for (int v = 0; v < V; ++v)
                    if (v != pad && v != start && (best < 0 || lp[v] > lp[best])) best = v;
                const double s = score[n] + double(lp[best]);
                if (best == end) {
                    finished[rows[n]].push_back({s / length_penalty(t + 1, alpha), t, n, true});
                } else {
                    from.push_back(n);
                    chosen.push_back(best);
                    next_score.push_back(s);
                    next_rows.push_back(rows[n]);
                }
            }
        } else {
            struct Cand {
                double score;
                int row;
                std::int64_t token;
            };
            auto better = [](const Cand& a, const Cand& b) {  // higher score first; ties: lower row, lower token
                if (a.score != b.score) return a.score > b.score;
                if (a.row != b.row) return a.row < b.row;
                return a.token < b.token;
            };
            std::vector<Cand> cands;
            for (int n0 = 0; n0 < N;) {
                const int b = rows[n0];
                int n1 = n0;
                while (n1 < N && rows[n1] == b) ++n1;  // rows of one sentence are contiguous
                cands.clear();
                for (int n = n0; n < n1; ++n) {
                    const S* lp = logp.data() + std::size_t(n) * V;
                    for (int v = 0; v < V; ++v)
                        if (v != pad && v != start) cands.push_back({score[n] + double(lp[v]), n, v});
                }
                // Only the best 2 Kb candidates can matter: at most Kb ends rank within the top Kb, and Kb live ones
                // come from the first 2 Kb.
                const std::size_t keep = std::min(cands.size(), std::size_t(2) * Kb);
                std::partial_sort(cands.begin(), cands.begin() + keep, cands.end(), better);
                int live = 0;
                for (std::size_t r = 0; r < keep && live < Kb; ++r) {
                    const Cand& cd = cands[r];
                    if (cd.token == end) {
                        if (int(r) < Kb) finished[b].push_back({cd.score / length_penalty(t + 1, alpha), t, cd.row, true});
                    } else {
                        from.push_back(cd.row);
                        chosen.push_back(cd.token);
                        next_score.push_back(cd.score);
                        next_rows.push_back(b);
                        ++live;
                    }
                }
                if (int(finished[b].size()) >= Kb) {  // enough finished: drop the sentence's live rows
                    while (!next_rows.empty() && next_rows.back() == b) {
                        from.pop_back();
                        chosen.pop_back();
                        next_score.pop_back();
                        next_rows.pop_back();
                    }
                }
                n0 = n1;
            }
        }
        att_steps.push_back(keep_attention ? att : std::vector<S>());
        parent_steps.push_back(from);
        token_steps.push_back(chosen);
        // The surviving rows: gather their states (and Luong's fed-back õ).
        N = int(from.size());
        h_next.swap(h);
        gather(h, from, H, scratch);
        if (NS > 1) {
            c_next.swap(c);
            gather(c, from, H, scratch);
        }
        if (m.luong() && F) {
            feed.swap(o);
            gather(feed, from, H, scratch);
        }
        rows = next_rows;
        score = next_score;
        prev = chosen;
    }

    // Best finished hypothesis per sentence, traced back through the steps' parents.
    Decoded<S> out;
    out.tokens.resize(B);
    out.scores.resize(B);
    out.ended.resize(B);
    if (keep_attention) out.attention.resize(B);
    for (int b = 0; b < B; ++b) {
        const Finished* best = nullptr;
        for (const Finished& f : finished[b])
            if (!best || f.score > best->score) best = &f;
        out.scores[b] = best->score;
        out.ended[b] = best->ended;
        std::vector<std::int64_t> toks;
        std::vector<int> att_rows;  // (step, row) of each output step's attention, last first
        std::vector<int> att_step_of;
        if (best->ended) {
            att_step_of.push_back(best->step);
            att_rows.push_back(best->row);
        }
        int row = best->row;
        for (int k = best->step; k >= 1; --k) {  // the row of step k came from parent_steps[k - 1]
            toks.push_back(token_steps[k - 1][row]);
            row = parent_steps[k - 1][row];
            att_step_of.push_back(k - 1);
            att_rows.push_back(row);
        }
        std::reverse(toks.begin(), toks.end());
        out.tokens[b] = toks;
        if (keep_attention && m.attention) {
            std::vector<S>& a = out.attention[b];
            a.resize(att_rows.size() * std::size_t(Sn));
            for (std::size_t i = 0; i < att_rows.size(); ++i) {
                const std::size_t j = att_rows.size() - 1 - i;  // chronological order
                std::memcpy(a.data() + i * Sn, att_steps[att_step_of[j]].data() + std::size_t(att_rows[j]) * Sn,
                            sizeof(S) * Sn);
            }
        }
    }
    return out;
}

#define RNNKIT_SEQ2SEQ_DECODE(S)                                                                                  \
    template Decoded<S> Seq2Seq<S>::decode(const std::int64_t*, const int*, int, int, int, bool, int, double, bool); \
    template Decoded<S> Seq2Seq<S>::decode(const Seq2SeqBatch<S>&, int, bool, int, double, bool);                   \
    template void Seq2Seq<S>::generate(S*, S*, const Seq2SeqBatch<S>&, int);
RNNKIT_SEQ2SEQ_DECODE(float)
RNNKIT_SEQ2SEQ_DECODE(double)
#undef RNNKIT_SEQ2SEQ_DECODE

}  // namespace v0
}  // namespace rnnkit
