#pragma once
// gRPC status codes by name, for error messages on both sides.
#include <grpcpp/support/status.h>

#include <string>

namespace specsteer::transport {

const char* code_name(grpc::StatusCode c);
// "UNAVAILABLE: failed to connect to all addresses"
std::string describe(const grpc::Status& s);

}  // namespace specsteer::transport
