#pragma once
// The edge's check of every cloud reply against what it asked: the edge
// trusts nothing the cloud sends beyond what the protocol allows, so a buggy
// or hostile cloud can only make the edge fall back, never exhaust its memory
// or make it discard the tokens it already decided.
#include <string>

#include "steer/messages.h"
#include "steer/transport.h"

namespace specsteer::steer {

// The id range the edge expects the cloud to announce in SessionAccept: the
// smaller vocabulary of the two models it named in SessionOpen (0: unknown,
// e.g. an edge that named no LLM).
uint32_t expected_shared_vocab(const SessionOpen& open);

// Throws CloudProtocolError naming the violation when `reply` is not a valid
// answer to `request` in the session `open` asked for:
//   SessionOpen -> SessionAccept with n_vocab == expected_shared_vocab(open)
//                  (or, when the edge named no LLM, the smaller of its model's
//                  and the announced LLM's), the LLM asked for, x lengths > 0
//                  (equal to the ids sent, if sent), EOG ids in range (an
//                  ErrorReply, the cloud refusing the session, passes)
//   DraftBlock  -> Verdict: n_accepted <= drafts, rejected iff n_accepted <
//                  drafts; steer <= top_k entries; target (sd) <= n_vocab
//   StepRequest -> StepReply: steer <= top_k entries; costeer: both
//                  log-probability vectors exactly n_vocab long
//   Close       -> CloseAck
// Every (id, value) list: ids unique and in [0, n_vocab), values finite.
// `accepted_vocab`: SessionAccept.n_vocab once accepted (0 before).
void check_reply(const SessionOpen& open, const Message& request, const Message& reply, uint32_t accepted_vocab = 0);

// A Transport that decodes and checks every reply (check_reply) before the
// edge sees it. After the first violation it is broken: every later exchange
// throws the same CloudProtocolError without contacting the cloud, so the edge
// does not wait on a misbehaving cloud to acknowledge its Close.
class CheckedTransport final : public Transport {
 public:
  CheckedTransport(Transport& cloud, const SessionOpen& open) : cloud_(cloud), open_(open) {}
  std::vector<uint8_t> exchange(std::span<const uint8_t> request) override;
  std::optional<WireBytes> wire_bytes() const override { return cloud_.wire_bytes(); }
  // Never after a protocol violation: a replica that broke the protocol is
  // not retried.
  bool reopen() override { return broken_.empty() && cloud_.reopen(); }

 private:
  Transport& cloud_;
  const SessionOpen& open_;
  uint32_t accepted_vocab_ = 0;  // SessionAccept.n_vocab once seen: replies' ids are bounded by it
  std::string broken_;
};

}  // namespace specsteer::steer
