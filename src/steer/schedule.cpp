#include "steer/schedule.h"

#include "steer/settings.h"

namespace specsteer::steer {

namespace {
uint64_t rows_of(const std::vector<EvalSpan>& spans) {
  uint64_t n = 0;
  for (const EvalSpan& s : spans) n += s.rows;
  return n;
}
}  // namespace

uint64_t Schedule::positions_edge() const {
  uint64_t n = edge_prompt + rows_of(fallback);
  for (const Round& r : rounds) n += rows_of(r.edge) + rows_of(r.edge_ahead);
  return n;
}

uint64_t Schedule::positions_llm() const {
  uint64_t n = llm_prompt;
  for (const Round& r : rounds) n += rows_of(r.llm);
  return n;
}

uint64_t Schedule::positions_slm() const {
  uint64_t n = slm_prompt;
  for (const Round& r : rounds) n += rows_of(r.slm);
  return n;
}

uint64_t Schedule::exchanges() const {
  return uses_cloud(parse_method(method)) ? rounds.size() : 0;
}

}  // namespace specsteer::steer
