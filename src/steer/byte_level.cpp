#include "steer/byte_level.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "common/error.h"
#include "tokenizer/tokenizer.h"

namespace specsteer::steer {

namespace {
std::vector<int32_t> eog_ids(const Tokenizer& t) {
  std::vector<int32_t> out;
  for (int32_t id = 0; id < t.n_vocab(); ++id)
    if (t.is_eog(id)) out.push_back(id);
  return out;
}

// The vocabulary's spelling of s; empty when some byte has no token.
std::vector<int32_t> spelling_or_empty(const ByteVocab& vocab, std::string_view s) {
  try {
    return vocab.spell(s);
  } catch (const Error&) {
    return {};
  }
}

// The softmax normalizer over the tokens that can continue text (spelling
// tokens, then the EOG ids): the largest logit, the sum of exp(logit - max)
// over the spelling tokens and over the EOG ids. Non-finite when no such
// logit is finite.
struct RestrictedSum {
  double max = -std::numeric_limits<double>::infinity();
  double text = 0, eog = 0;
  double total() const { return text + eog; }
};
RestrictedSum restricted_sum(std::span<const float> logits, const ByteVocab& vocab, std::span<const int32_t> eog) {
  const size_t n = std::min(logits.size(), static_cast<size_t>(vocab.n_vocab()));
  auto logit = [&](int32_t t) { return static_cast<double>(logits[static_cast<size_t>(t)]); };
  auto usable = [&](int32_t t) { return t >= 0 && static_cast<size_t>(t) < n; };
  RestrictedSum r;
  for (int32_t t : vocab.sorted())
    if (usable(t)) r.max = std::max(r.max, logit(t));
  for (int32_t t : eog)
    if (usable(t)) r.max = std::max(r.max, logit(t));
  for (int32_t t : vocab.sorted())
    if (usable(t)) r.text += std::exp(logit(t) - r.max);
  for (int32_t t : eog)
    if (usable(t)) r.eog += std::exp(logit(t) - r.max);
  return r;
}
}  // namespace

BytePair::BytePair(std::shared_ptr<const Tokenizer> lt, std::shared_ptr<const Tokenizer> st)
    : llm_tok(std::move(lt)), slm_tok(std::move(st)), llm(*llm_tok), slm(*slm_tok), llm_eog(eog_ids(*llm_tok)),
      slm_eog(eog_ids(*slm_tok)) {
  // The valued strings: each token's bytes and its one-byte extensions that
  // begin longer tokens (the longest-match split of the valuation).
  std::vector<std::string> strings;
  std::unordered_map<std::string, int32_t> index;
  auto id_of = [&](const std::string& str) {
    auto [it, fresh] = index.emplace(str, static_cast<int32_t>(strings.size()));
    if (fresh) strings.push_back(str);
    return it->second;
  };
  const size_t V = static_cast<size_t>(slm.n_vocab());
  slm_self.assign(V, -1);
  std::vector<std::vector<int32_t>> ext(V);
  for (int32_t y : slm.sorted()) {
    const std::string& b = slm.bytes(y);
    slm_self[static_cast<size_t>(y)] = id_of(b);
    const auto [lo, hi] = slm.with_prefix(b);
    int last = -1;
    for (size_t k = lo + slm.exact_count(b); k < hi; ++k) {
      const int next = static_cast<unsigned char>(slm.sorted_bytes(k)[b.size()]);
      if (next == last) continue;  // sorted: equal next bytes are adjacent
      last = next;
      ext[static_cast<size_t>(y)].push_back(id_of(b + static_cast<char>(next)));
    }
  }
  ext_begin.assign(V + 1, 0);
  for (size_t y = 0; y < V; ++y) {
    ext_begin[y + 1] = ext_begin[y] + static_cast<uint32_t>(ext[y].size());
    ext_ids.insert(ext_ids.end(), ext[y].begin(), ext[y].end());
  }
  prefixes_in_llm.reserve(strings.size());
  for (const std::string& str : strings) {
    const auto [lo, hi] = llm.with_prefix(str);
    prefixes_in_llm.push_back({static_cast<uint32_t>(lo), static_cast<uint32_t>(hi)});
  }
  // The Specialist's tokens (not the one-byte extensions, whose last byte
  // would mostly be split off) as the LLM spells them.
  for (int32_t y : slm.sorted()) {
    const std::vector<int32_t> spelled = spelling_or_empty(llm, slm.bytes(y));  // empty: no path to keep
    for (size_t j = 1; j < spelled.size(); ++j)
      llm_spellings.insert(path_key(std::span<const int32_t>(spelled).first(j)));
  }
  prefixes = std::make_unique<const ByteVocab>(std::move(strings));
}

std::string path_key(std::span<const int32_t> path) {
  std::string key(path.size() * sizeof(int32_t), '\0');
  if (!path.empty()) std::memcpy(key.data(), path.data(), key.size());
  return key;
}

double restricted_log_prob(std::span<const float> logits, const ByteVocab& vocab, std::span<const int32_t> eog,
                           int32_t id) {
  const size_t n = std::min(logits.size(), static_cast<size_t>(vocab.n_vocab()));
  if (id < 0 || static_cast<size_t>(id) >= n ||
      (!vocab.spells(id) && std::find(eog.begin(), eog.end(), id) == eog.end()))
    return -std::numeric_limits<double>::infinity();
  const RestrictedSum r = restricted_sum(logits, vocab, eog);
  return static_cast<double>(logits[static_cast<size_t>(id)]) - r.max - std::log(r.total());
}

TokenDist::TokenDist(std::span<const float> logits, const ByteVocab& vocab, std::span<const int32_t> eog_ids) {
  const size_t n = std::min(logits.size(), static_cast<size_t>(vocab.n_vocab()));
  auto usable = [&](int32_t id) { return id >= 0 && static_cast<size_t>(id) < n; };
  const RestrictedSum r = restricted_sum(logits, vocab, eog_ids);
  if (!std::isfinite(r.max)) throw Error("byte level: a logits row has no finite value over the tokens that spell text");
  const double sum = r.total();
  prob.assign(n, 0.0);
  for (int32_t id : vocab.sorted())
    if (usable(id)) prob[static_cast<size_t>(id)] = std::exp(static_cast<double>(logits[static_cast<size_t>(id)]) - r.max) / sum;
  eog = r.eog / sum;
  cum.assign(vocab.sorted().size() + 1, 0.0);
  for (size_t i = 0; i < vocab.sorted().size(); ++i) {
    const int32_t id = vocab.sorted()[i];
    cum[i + 1] = cum[i] + (usable(id) ? prob[static_cast<size_t>(id)] : 0.0);
  }
}

double TokenDist::log_prob(int32_t id) const {
  const double p = id >= 0 && static_cast<size_t>(id) < prob.size() ? prob[static_cast<size_t>(id)] : 0.0;
  return p > 0 ? std::log(p) : -std::numeric_limits<double>::infinity();
}

double TokenDist::starting_with(const ByteVocab& vocab, std::string_view prefix) const {
  const auto [lo, hi] = vocab.with_prefix(prefix);
  return std::max(0.0, cum[hi] - cum[lo]);
}

ByteCovering::ByteCovering(const ByteVocab& vocab, std::vector<int32_t> eog, std::span<const float> root_logits,
                           RowFn row, Options opts)
    : vocab_(vocab), eog_(std::move(eog)), row_(std::move(row)), opts_(opts) {
  root_.dist = TokenDist(root_logits, vocab_, eog_);
}

std::vector<int32_t> ByteCovering::forced_path(std::string_view s) const {
  std::vector<int32_t> path = spelling_or_empty(vocab_, s);  // empty: no path to keep
  if (!path.empty()) path.pop_back();
  return path;
}

void ByteCovering::visit_spelled_prefixes(const Node& n, std::string_view rest, size_t max_len,
                                          const std::vector<int32_t>& keep,
                                          const std::function<void(const Node&)>& visit) {
  for (size_t l = 1; l <= max_len; ++l) {
    const auto [lo, hi] = vocab_.with_prefix(rest.substr(0, l));
    if (lo == hi) break;  // no longer token starts with it either
    for (size_t k = lo; k < hi && vocab_.sorted_bytes(k).size() == l; ++k) {
      const int32_t t = vocab_.sorted()[k];
      if (const Node* c = child(n, t, on_path(n, keep, t))) visit(*c);
    }
  }
}

bool ByteCovering::on_path(const Node& n, const std::vector<int32_t>& path, int32_t token) {
  const size_t d = n.path.size();
  return d < path.size() && path[d] == token && std::equal(n.path.begin(), n.path.end(), path.begin());
}

const ByteCovering::Node* ByteCovering::child(const Node& parent, int32_t token, bool forced) {
  const double w = parent.weight * parent.dist.prob[static_cast<size_t>(token)];
  if (!(w > 0) || (!forced && w < opts_.prune)) return nullptr;
  std::vector<int32_t> path = parent.path;
  path.push_back(token);
  if (auto it = nodes_.find(path); it != nodes_.end()) return it->second.get();
  if (!forced && evaluated_ >= opts_.max_nodes) return nullptr;
  auto n = std::make_unique<Node>();
  n->dist = TokenDist(row_(path), vocab_, eog_);
  ++evaluated_;
  n->bytes = parent.bytes + vocab_.bytes(token);
  n->weight = w;
  n->path = path;
  return nodes_.emplace(std::move(path), std::move(n)).first->second.get();
}

double ByteCovering::prefix_prob(std::string_view s) {
  if (s.empty()) return 1.0;
  double total = 0;
  const std::vector<int32_t> keep = forced_path(s);
  std::function<void(const Node&)> visit = [&](const Node& n) {
    const std::string_view rest = s.substr(n.bytes.size());
    total += n.weight * mass(n, rest);
    visit_spelled_prefixes(n, rest, rest.size() - 1, keep, visit);  // the paths that go on
  };
  visit(root_);
  return total;
}

double ByteCovering::end_prob(std::string_view s) {
  double total = 0;
  const std::vector<int32_t> keep = spelling_or_empty(vocab_, s);  // the whole spelling: its node ends at s
  std::function<void(const Node&)> visit = [&](const Node& n) {
    const std::string_view rest = s.substr(n.bytes.size());
    if (rest.empty()) {
      total += n.weight * n.dist.eog;
      return;
    }
    visit_spelled_prefixes(n, rest, rest.size(), keep, visit);
  };
  visit(root_);
  return total;
}

std::vector<double> ByteCovering::extension_probs(std::string_view p, const ByteVocab& targets,
                                                  const std::vector<std::pair<uint32_t, uint32_t>>* ranges,
                                                  const SpellingPrefixes* canonical) {
  std::vector<double> out(static_cast<size_t>(targets.n_vocab()), 0.0);
  // True when some target is longer than q and starts with it.
  auto extends_target = [&](std::string_view q) {
    const auto [lo, hi] = targets.with_prefix(q);
    return hi - lo > targets.exact_count(q);
  };
  std::string buf;
  const std::vector<int32_t> keep = forced_path(p);
  std::function<void(const Node&)> visit = [&](const Node& n) {
    const bool inside_p = n.bytes.size() < p.size();
    const std::string_view rest_p = inside_p ? p.substr(n.bytes.size()) : std::string_view();
    const std::string_view q = inside_p ? std::string_view() : std::string_view(n.bytes).substr(p.size());
    if (inside_p) {
      const auto [rlo, rhi] = vocab_.with_prefix(rest_p);
      if (rhi - rlo < targets.sorted().size() / 8) {
        // Few tokens start with the rest of p: each adds its probability to
        // the targets that spell a prefix of what follows.
        for (size_t k = rlo; k < rhi; ++k) {
          const int32_t t = vocab_.sorted()[k];
          const double pt = n.dist.prob[static_cast<size_t>(t)];
          if (!(pt > 0)) continue;
          const std::string_view r = std::string_view(vocab_.bytes(t)).substr(rest_p.size());
          for (size_t l = 1; l <= r.size(); ++l) {
            const auto [lo, hi] = targets.with_prefix(r.substr(0, l));
            if (lo == hi) break;
            for (size_t j = lo; j < hi && targets.sorted_bytes(j).size() == l; ++j)
              out[static_cast<size_t>(targets.sorted()[j])] += n.weight * pt;
          }
        }
      } else {
        for (int32_t y : targets.sorted()) {
          buf.assign(rest_p);
          buf += targets.bytes(y);
          out[static_cast<size_t>(y)] += n.weight * mass(n, buf);
        }
      }
    } else if (q.empty() && ranges) {
      for (int32_t y : targets.sorted()) {
        const auto [lo, hi] = (*ranges)[static_cast<size_t>(y)];
        out[static_cast<size_t>(y)] += n.weight * std::max(0.0, n.dist.cum[hi] - n.dist.cum[lo]);
      }
    } else {
      const auto [lo, hi] = targets.with_prefix(q);
      for (size_t k = lo + targets.exact_count(q); k < hi; ++k) {
        const int32_t y = targets.sorted()[k];
        out[static_cast<size_t>(y)] += n.weight * mass(n, std::string_view(targets.bytes(y)).substr(q.size()));
      }
    }
    // Heavy tokens whose bytes keep the path a proper prefix of some p + target.
    // Past a token boundary at the end of p, with `canonical`: only along a
    // target's own spelling (`after_p`: the path's tokens past that boundary).
    size_t k = 0, at = 0;
    while (k < n.path.size() && at < p.size()) at += vocab_.bytes(n.path[k++]).size();
    const bool restrict = canonical && !inside_p && at == p.size();
    std::string after_p = restrict ? path_key(std::span<const int32_t>(n.path).subspan(k)) : std::string();
    const size_t key_len = after_p.size();
    std::vector<std::pair<double, int32_t>> next;
    const double floor = n.weight > 0 ? opts_.prune / n.weight : 0;
    for (int32_t t : vocab_.sorted()) {
      const double pt = n.dist.prob[static_cast<size_t>(t)];
      if (!(pt > 0) || (pt < floor && !on_path(n, keep, t))) continue;
      const std::string& tb = vocab_.bytes(t);
      bool ok;
      if (inside_p) {
        ok = tb.size() <= rest_p.size() ? rest_p.starts_with(tb)
                                        : std::string_view(tb).starts_with(rest_p) &&
                                              extends_target(std::string_view(tb).substr(rest_p.size()));
      } else {
        buf.assign(q);
        buf += tb;
        ok = extends_target(buf);
        if (ok && restrict) {
          after_p.resize(key_len);
          after_p += path_key(std::span<const int32_t>(&t, 1));
          ok = canonical->count(after_p) > 0;
        }
      }
      if (ok) next.push_back({pt, t});
    }
    std::sort(next.begin(), next.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& [pt, t] : next)
      if (const Node* c = child(n, t, on_path(n, keep, t))) visit(*c);
  };
  visit(root_);
  return out;
}

std::array<double, 257> ByteCovering::next_byte(std::string_view s) {
  std::array<double, 257> out{};
  std::string buf(s);
  buf.push_back('\0');
  double sum = 0;
  for (int b = 0; b < 256; ++b) {
    buf.back() = static_cast<char>(b);
    sum += out[static_cast<size_t>(b)] = prefix_prob(buf);
  }
  sum += out[256] = end_prob(s);
  if (sum > 0)
    for (double& v : out) v /= sum;
  return out;
}

std::vector<Unit> align_units(std::span<const size_t> draft_ends, std::span<const size_t> llm_ends, size_t start) {
  std::vector<Unit> units;
  size_t j = 0;
  for (size_t i = 0; i < draft_ends.size(); ++i) {
    const size_t c = draft_ends[i];
    if (c <= start) continue;  // no bytes yet: joins the first unit
    while (j < llm_ends.size() && llm_ends[j] < c) ++j;
    if (j == llm_ends.size() || llm_ends[j] != c) continue;
    // Drafts without bytes right after the boundary stay in this unit.
    while (i + 1 < draft_ends.size() && draft_ends[i + 1] == c) ++i;
    units.push_back({i + 1, j + 1, c});
  }
  // Drafts past the last common boundary (the texts differ, or no draft has
  // bytes): one last unit takes them with every remaining Generalist token.
  if (units.empty() || units.back().drafts_end < draft_ends.size())
    units.push_back({draft_ends.size(), llm_ends.size(),
                     std::max(draft_ends.empty() ? start : draft_ends.back(), llm_ends.empty() ? start : llm_ends.back())});
  return units;
}

}  // namespace specsteer::steer
