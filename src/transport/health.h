#pragma once
// The client side of gRPC's standard health-checking protocol
// (grpc.health.v1.Health/Check), as grpc_health_probe and Kubernetes' gRPC
// probes use it: `specsteer cloud health` and the cluster tests.
#include <string>

namespace specsteer::transport {

struct HealthProbe {
  std::string target;       // HOST:PORT
  std::string service;      // "" = the server as a whole; "specsteer.v1.Cloud" = the cloud service
  std::string tls_ca_file;  // PEM roots (TLS); empty = plaintext
  double timeout_s = 5;
};

struct HealthAnswer {
  enum class Kind { Answered, Unreachable, RpcFailed } kind = Kind::Answered;
  std::string status;  // "SERVING", "NOT_SERVING", "UNKNOWN", "SERVICE_UNKNOWN" (Answered)
  std::string error;   // why, otherwise
};

HealthAnswer check_health(const HealthProbe& probe);

}  // namespace specsteer::transport
