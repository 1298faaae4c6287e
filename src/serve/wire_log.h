#pragma once
// What one generation sent to the cloud and got back, decoded for people:
// the chat page's "what left this device" inspector and GET /v1/wire/{id}.
// Built from the encoded messages that crossed the transport (steer::Trace),
// so it shows exactly what the cloud received: x and the settings as sent,
// every drafted token in order (accepted or rejected), the committed
// recovery/bonus tokens, and what the cloud answered. Nothing else (the
// profile entries, the personalized prompt) ever appears in it.
#include <nlohmann/json.hpp>

#include "steer/generate.h"
#include "tokenizer/tokenizer.h"

namespace specsteer::serve {

// `tok` decodes the ids on the wire (the edge model's tokenizer).
nlohmann::json wire_log_json(const steer::Trace& trace, const Tokenizer& tok);

}  // namespace specsteer::serve
