#pragma once
// steer message structs <-> the protobuf messages of specsteer.proto. The
// proto mirrors messages.h field for field, so conversion is lossless; every
// message received from the network is also passed through steer's
// validating decoder (validate_uplink / validate_downlink), so a networked
// peer is held to exactly the rules of the in-process codec.
#include <cstddef>

#include "steer/messages.h"
#include "transport/specsteer.pb.h"

namespace specsteer::transport {

// The gRPC length prefix of every message (1 compressed flag + 4 length bytes).
inline constexpr size_t kGrpcFrameBytes = 5;

// Edge side: SessionOpen, DraftBlock, StepRequest or Close. Throws Error otherwise.
v1::EdgeMessage to_proto_uplink(const steer::Message& m);
// Cloud side: SessionAccept, Verdict, StepReply or CloseAck. Throws Error otherwise.
v1::CloudMessage to_proto_downlink(const steer::Message& m);

// Throw Error (naming the field) when the message is empty, out of range or
// malformed by steer's codec rules; `limits` bounds ids and list lengths.
steer::Message from_proto(const v1::EdgeMessage& m, const steer::DecodeLimits& limits);
steer::Message from_proto(const v1::CloudMessage& m, const steer::DecodeLimits& limits);

}  // namespace specsteer::transport
