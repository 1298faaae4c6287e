#include "transport/health.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "common/error.h"
#include "transport/client.h"
#include "transport/health.grpc.pb.h"
#include "transport/status.h"

namespace specsteer::transport {

HealthAnswer check_health(const HealthProbe& p) {
  if (p.target.empty()) throw Error("cloud health: --cloud HOST:PORT is required");
  if (!(p.timeout_s > 0)) throw Error("cloud health: --timeout must be > 0 seconds");
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (!p.tls_ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = read_text_file(p.tls_ca_file, "--tls-ca");
    creds = grpc::SslCredentials(ssl);
  }
  auto channel = grpc::CreateChannel(p.target, creds);
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::duration_cast<std::chrono::system_clock::duration>(
                            std::chrono::duration<double>(p.timeout_s));
  HealthAnswer a;
  if (!channel->WaitForConnected(deadline)) {
    a.kind = HealthAnswer::Kind::Unreachable;
    a.error = "cannot connect to " + p.target + " within " + std::to_string(p.timeout_s) + " s";
    return a;
  }
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline);
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(p.service);
  grpc::health::v1::HealthCheckResponse res;
  const grpc::Status st = stub->Check(&ctx, req, &res);
  if (!st.ok()) {
    a.kind = HealthAnswer::Kind::RpcFailed;
    a.error = describe(st);
    return a;
  }
  a.status = grpc::health::v1::HealthCheckResponse::ServingStatus_Name(res.status());
  return a;
}

}  // namespace specsteer::transport
