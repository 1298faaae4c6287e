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
// smaller vocabulary of the two models it named in SessionOpen (0: unknown).
uint32_t expected_shared_vocab(const SessionOpen& open);

// Throws CloudProtocolError naming the violation when `reply` is not a valid
// answer to `request` in the session `open` asked for:
//   SessionOpen -> SessionAccept with n_vocab == expected_shared_vocab(open)
//                  (an ErrorReply, the cloud refusing the session, passes)
//   DraftBlock  -> Verdict: n_accepted <= drafts, rejected iff n_accepted <
//                  drafts; steer <= top_k entries; target (sd) <= n_vocab
//   StepRequest -> StepReply: steer <= top_k entries; costeer: both
//                  log-probability vectors exactly n_vocab long
//   Close       -> CloseAck
// Every (id, value) list: ids unique and in [0, n_vocab), values finite.
void check_reply(const SessionOpen& open, const Message& request, const Message& reply);

// A Transport that decodes and checks every reply (check_reply) before the
// edge sees it. After the first violation it is broken: every later exchange
// throws the same CloudProtocolError without contacting the cloud, so the edge
// does not wait on a misbehaving cloud to acknowledge its Close.
class CheckedTransport final : public Transport {
 public:
  CheckedTransport(Transport& cloud, const SessionOpen& open) : cloud_(cloud), open_(open) {}
  std::vector<uint8_t> exchange(std::span<const uint8_t> request) override;
  std::optional<WireBytes> wire_bytes() const override { return cloud_.wire_bytes(); }

 private:
  Transport& cloud_;
  const SessionOpen& open_;
  bool accepted_ = false;  // SessionAccept seen: replies' ids are bounded by the vocabulary
  std::string broken_;
};

}  // namespace specsteer::steer
