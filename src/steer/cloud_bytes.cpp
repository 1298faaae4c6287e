// The cloud's byte-level path (cross-tokenizer SpecSteer, byte_level.h):
// verification per unit and recovery over the Specialist's tokens valued by
// the Generalist in byte space.
#include <cmath>
#include <limits>
#include <string>

#include "common/error.h"
#include "common/timer.h"
#include "steer/cloud.h"
#include "steer/formulas.h"
#include "tokenizer/tokenizer.h"

namespace specsteer::steer {

namespace {

double log_softmax_at(std::span<const float> row, int32_t id) {
  return static_cast<double>(row[static_cast<size_t>(id)]) - sampling::log_sum_exp(row);
}

double log_or_ninf(double p) { return p > 0 ? std::log(p) : -std::numeric_limits<double>::infinity(); }

// Decided bytes the Generalist's cache may leave pending before its tokens
// up to a word boundary are committed.
constexpr size_t kMaxPendingBytes = 32;
constexpr size_t kKeepPendingBytes = 16;  // without a space to cut at, this many stay pending

}  // namespace

ByteCovering& Cloud::cover() {
  if (!cover_) {
    const size_t anchor = anchor_;
    cover_ = std::make_unique<ByteCovering>(
        bytes_->llm, bytes_->llm_eog, llm_next_,
        [this, anchor](std::span<const int32_t> path) {
          Stopwatch sw;
          llm_->truncate(anchor);
          const auto row = llm_->eval_last(path);
          std::vector<float> out(row.end() - llm_->n_vocab(), row.end());
          t_llm_ += sw.seconds();
          return out;
        },
        ByteCovering::Options{});
  }
  return *cover_;
}

void Cloud::move_anchor(size_t anchor, std::vector<float> row) {
  llm_->truncate(anchor);
  anchor_ = anchor;
  llm_next_ = std::move(row);
  cover_.reset();
}

std::vector<IdValue> Cloud::byte_steer(std::span<const float> slm_row) {
  ByteCovering& cov = cover();
  const BytePair& bp = *bytes_;
  const std::vector<double> ext =
      cov.extension_probs(pending_, *bp.prefixes, &bp.prefixes_in_llm, &bp.llm_spellings);
  const size_t V = static_cast<size_t>(n_vocab_);
  // Ids the Generalist cannot continue with keep a finite floor (the wire
  // carries finite values only).
  std::vector<float> h(V, -1e30f);
  for (int32_t y : bp.slm.sorted()) {
    if (static_cast<size_t>(y) >= V) continue;
    // P(y's bytes) minus P(a longer Specialist token's start): y is the
    // longest Specialist token the text continues with.
    double p = ext[static_cast<size_t>(bp.slm_self[static_cast<size_t>(y)])];
    for (uint32_t k = bp.ext_begin[static_cast<size_t>(y)]; k < bp.ext_begin[static_cast<size_t>(y) + 1]; ++k)
      p -= ext[static_cast<size_t>(bp.ext_ids[k])];
    if (p > 0) h[static_cast<size_t>(y)] = static_cast<float>(std::log(p) - pending_logp_);
  }
  const double end = cov.end_prob(pending_);
  if (end > 0)
    for (int32_t y : bp.slm_eog)
      if (static_cast<size_t>(y) < V) h[static_cast<size_t>(y)] = static_cast<float>(std::log(end) - pending_logp_);
  llm_->truncate(anchor_);  // the covering's paths are not decided text
  return cloud_steer(h, slm_row.first(V), s_);
}

void Cloud::resume_bytes(std::span<const int32_t> decided) {
  const BytePair& bp = *bytes_;
  std::string text;
  for (int32_t t : decided) {
    if (bp.slm_tok->is_eog(t)) throw Error("cloud: SessionOpen.resume holds an end-of-generation id");
    if (bp.slm.spells(t)) text += bp.slm.bytes(t);
  }
  std::vector<int32_t> L;
  try {
    L = bp.llm.spell(text);
  } catch (const Error& e) {
    throw Error(std::string("cloud: the Generalist cannot spell the resumed text: ") + e.what());
  }
  // As after a long rejected run (verify_bytes): the tokens up to the last
  // one that ends before a space go into the cache, or without spaces those
  // that end kKeepPendingBytes before the end; the rest stays pending.
  size_t cut = 0, j_cut = 0, at = 0;
  for (size_t k = 0; k + 1 < L.size(); ++k) {
    at += bp.llm.bytes(L[k]).size();
    if (text[at] == ' ' || text[at] == '\n') {
      cut = at;
      j_cut = k + 1;
    }
  }
  if (j_cut == 0) {
    at = 0;
    for (size_t k = 0; k + 1 < L.size() && at + bp.llm.bytes(L[k]).size() + kKeepPendingBytes <= text.size(); ++k) {
      at += bp.llm.bytes(L[k]).size();
      cut = at;
      j_cut = k + 1;
    }
  }
  if (j_cut > 0) {
    Stopwatch sw;
    const auto rows = llm_->eval_last(std::span<const int32_t>(L).first(j_cut));
    std::vector<float> row(rows.end() - llm_->n_vocab(), rows.end());
    t_llm_ += sw.seconds();
    move_anchor(llm_->size(), std::move(row));
  }
  pending_ = text.substr(cut);
  pending_logp_ = pending_.empty() ? 0.0 : log_or_ninf(cover().prefix_prob(pending_));
}

Verdict Cloud::verify_bytes(const DraftBlock& b) {
  const BytePair& bp = *bytes_;
  const size_t C = b.committed.size(), n = b.drafts.size();
  for (size_t i = 0; i < C; ++i)
    if (bp.slm_tok->is_eog(b.committed[i]))
      throw Error("cloud: DraftBlock.committed[" + std::to_string(i) + "] ends the generation");
  for (size_t i = 0; i + 1 < n; ++i)
    if (bp.slm_tok->is_eog(b.drafts[i]))
      throw Error("cloud: DraftBlock.drafts[" + std::to_string(i) + "] ends the generation before the last draft");
  const bool eog_last = bp.slm_tok->is_eog(b.drafts.back());
  const size_t n_text = n - (eog_last ? 1 : 0);
  const size_t V = static_cast<size_t>(n_vocab_);

  // SLM-: committed + drafts in one pass, as on the token path.
  const size_t base_s = slm_->size();
  std::vector<int32_t> toks(b.committed);
  toks.insert(toks.end(), b.drafts.begin(), b.drafts.end());
  std::vector<float> rs;
  {
    Stopwatch ss;
    const auto rows = slm_->eval(toks);
    rs.assign(rows.begin(), rows.end());
    t_slm_ += ss.seconds();
  }
  const size_t VS = static_cast<size_t>(slm_->n_vocab());
  const std::vector<float> slm0 = slm_next_;
  auto pred_slm = [&](size_t i) {
    return i == 0 ? std::span<const float>(slm0).first(V) : std::span<const float>(rs).subspan((i - 1) * VS, V);
  };

  // The text after the Generalist's anchor: pending, committed and drafted bytes.
  std::string text = pending_;
  for (int32_t t : b.committed) text += bp.slm.spells(t) ? bp.slm.bytes(t) : std::string();
  const size_t start = text.size();
  std::vector<size_t> ends;
  for (size_t i = 0; i < n_text; ++i) {
    if (bp.slm.spells(b.drafts[i])) text += bp.slm.bytes(b.drafts[i]);
    ends.push_back(text.size());
  }
  const size_t anchor0 = anchor_;
  const std::vector<float> next0 = llm_next_;
  // The first unit is conditioned on the decided bytes the cache lacks.
  const double log_decided =
      start == pending_.size() ? pending_logp_ : log_or_ninf(cover().prefix_prob(std::string_view(text).substr(0, start)));

  // The Generalist's tokens of the text, evaluated from the anchor in one pass.
  std::vector<int32_t> L;
  try {
    L = bp.llm.spell(text);
  } catch (const Error& e) {
    throw Error(std::string("cloud: the Generalist cannot spell the drafted text: ") + e.what());
  }
  const size_t M = L.size();
  std::vector<size_t> lends;
  size_t at = 0;
  for (int32_t t : L) lends.push_back(at += bp.llm.bytes(t).size());
  const size_t VL = static_cast<size_t>(llm_->n_vocab());
  std::vector<float> rl;
  {
    Stopwatch sw;
    llm_->truncate(anchor0);
    if (M) {
      const auto rows = llm_->eval(L);
      rl.assign(rows.begin(), rows.end());
    }
    t_llm_ += sw.seconds();
  }
  auto pred_llm = [&](size_t j) {
    return j == 0 ? std::span<const float>(next0) : std::span<const float>(rl).subspan((j - 1) * VL, VL);
  };
  auto row_copy = [](std::span<const float> r) { return std::vector<float>(r.begin(), r.end()); };

  // Eq. 7 per unit, in order, until the first rejection.
  const std::vector<Unit> units = n_text ? align_units(ends, lends, start) : std::vector<Unit>{};
  size_t accepted = 0, prev_d = 0, prev_l = 0;
  tested_.clear();
  for (size_t m = 0; m < units.size(); ++m) {
    const Unit& u = units[m];
    double lL = m == 0 ? -log_decided : 0.0;
    for (size_t j = prev_l; j < u.llm_end; ++j) {
      if (j + 1 == M) {
        // A later draft may extend the last token: P(the text continues with
        // its bytes), from its start, which becomes the anchor (held back).
        move_anchor(anchor0 + j, row_copy(pred_llm(j)));
        pending_ = bp.llm.bytes(L[j]);
        pending_logp_ = log_or_ninf(cover().prefix_prob(pending_));
        lL += pending_logp_;
      } else {
        lL += restricted_log_prob(pred_llm(j), bp.llm, bp.llm_eog, L[j]);
      }
    }
    double lS = 0;
    for (size_t t = prev_d; t < u.drafts_end; ++t) lS += log_softmax_at(pred_slm(C + t), b.drafts[t]);
    tested_.push_back({u.drafts_end, lL, lS});
    // One draw per unit, keyed by the position of its first draft.
    if (!accept(rng_.uniform_at(generated_ + C + prev_d), unit_accept_prob(lL, lS, s_.lambda))) break;
    ++accepted;
    prev_d = u.drafts_end;
    prev_l = u.llm_end;
  }

  Verdict v;
  const bool text_all = accepted == units.size();
  const size_t acc_drafts = text_all ? n_text : accepted ? units[accepted - 1].drafts_end : 0;
  // The Generalist's state after the decided text (unless every unit passed:
  // the last one already held back its last token).
  if (!text_all && accepted > 0) {
    const size_t j = units[accepted - 1].llm_end - 1;  // ends at the last accepted unit's boundary: held back
    move_anchor(anchor0 + j, row_copy(pred_llm(j)));
    pending_ = bp.llm.bytes(L[j]);
    pending_logp_ = log_or_ninf(cover().prefix_prob(pending_));
  } else if (!text_all || units.empty() || M == 0) {
    // No unit passed: the decided bytes stay pending, whole — the LLM's
    // tokens of them were spelled with the rejected drafts after them and
    // may split a word the recovery continues otherwise. Only when pending
    // grows long (blocks rejected at their first unit, again and again) do
    // its tokens up to the last one that ends before a space go into the
    // cache (a space begins a new pre-tokenizer chunk, which no merge
    // crosses) or, in text without spaces (CJK, or a peer that sends none),
    // those that end kKeepPendingBytes before the decided end: pending, and
    // the covering passes over it, stay bounded.
    size_t cut = 0, j_cut = 0;
    if (start > kMaxPendingBytes) {
      for (size_t k = 0; k + 1 < M && lends[k] < start; ++k)
        if (text[lends[k]] == ' ' || text[lends[k]] == '\n') {
          cut = lends[k];
          j_cut = k + 1;
        }
      if (j_cut == 0)
        for (size_t k = 0; k + 1 < M && lends[k] + kKeepPendingBytes <= start; ++k) {
          cut = lends[k];
          j_cut = k + 1;
        }
    }
    if (j_cut == 0) {
      move_anchor(anchor0, next0);
      pending_ = text.substr(0, start);
      pending_logp_ = log_decided;
    } else {
      move_anchor(anchor0 + j_cut, row_copy(pred_llm(j_cut)));
      pending_ = text.substr(cut, start - cut);
      pending_logp_ = log_or_ninf(cover().prefix_prob(pending_));
    }
  }
  bool eog_ok = false;
  if (text_all && eog_last) {
    // Eq. 7 on the end of generation: P_LLM(end | the decided text).
    const double lL = log_or_ninf(cover().end_prob(pending_)) - pending_logp_;
    const double lS = log_softmax_at(pred_slm(C + n_text), b.drafts.back());
    tested_.push_back({n, lL, lS});
    eog_ok = accept(rng_.uniform_at(generated_ + C + n_text), unit_accept_prob(lL, lS, s_.lambda));
  }
  const bool rejected = !text_all || (eog_last && !eog_ok);
  v.n_accepted = static_cast<uint32_t>(rejected ? acc_drafts : n);
  v.rejected = rejected;
  if (rejected) {
    const size_t i = C + acc_drafts;
    std::vector<float> row = row_copy(pred_slm(i));
    slm_->truncate(base_s + i);
    v.steer = byte_steer(row);
    slm_next_ = std::move(row);
    generated_ += i;
    return v;
  }
  slm_next_.assign(rs.end() - static_cast<std::ptrdiff_t>(VS), rs.end() - static_cast<std::ptrdiff_t>(VS - V));
  generated_ += toks.size();
  llm_->truncate(anchor_);
  if (s_.bonus && !eog_last) v.steer = byte_steer(slm_next_);
  return v;
}

}  // namespace specsteer::steer
