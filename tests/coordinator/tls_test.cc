// TLS and mutual TLS between the coordinator and its clients, with a throwaway CA made by the
// openssl command line (skipped, not failed, where openssl is absent).
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "coordinator/client.h"
#include "coordinator/server.h"
#include "gtest/gtest.h"

namespace likeness::coordinator {
namespace {

namespace fs = std::filesystem;

constexpr char kToken[] = "tls-test-token-0123456789abcdef";

// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
constexpr char kMakeCertificates[] = R"sh(
set -e
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=likeness-test-ca
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 1 -extfile san.ext
openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=likeness-worker
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 1
)sh";

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v openssl > /dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl";
    dir_ = fs::temp_directory_path() / ("likeness_tls_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string command = "cd '" + dir_.string() + "' && sh -c '" + kMakeCertificates +
                                "' > openssl.log 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0) << "openssl failed; see " << dir_ / "openssl.log";
    CoordinatorOptions options;
    options.journal_path = (dir_ / "journal.db").string();
    options.expire_leases_in_background = false;
    auto coordinator = Coordinator::Open(&clock_, options);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = std::move(*coordinator);
  }
  void TearDown() override {
    server_.reset();
    coordinator_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  void StartServer(bool mutual) {
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.token = kToken;
    options.tls_cert_file = (dir_ / "server.pem").string();
    options.tls_key_file = (dir_ / "server.key").string();
    if (mutual) options.tls_client_ca_file = (dir_ / "ca.pem").string();
    auto server = CoordinatorServer::Start(coordinator_.get(), options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  grpc::StatusCode Health(ClientOptions client) {
    client.address = "127.0.0.1:" + std::to_string(server_->port());
    auto channel = MakeChannel(client);
    EXPECT_TRUE(channel.ok()) << channel.status();
    auto stub = v1::Coordinator::NewStub(*channel);
    v1::HealthResponse response;
    return stub->Health(MakeContext(kToken, std::chrono::milliseconds(5000)).get(), {}, &response)
        .error_code();
  }

  fs::path dir_;
  SystemClock clock_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<CoordinatorServer> server_;
};

TEST_F(TlsTest, TlsClientsTrustingTheCaConnectAndPlaintextOnesDoNot) {
  StartServer(/*mutual=*/false);
  ClientOptions tls;
  tls.tls_ca_file = (dir_ / "ca.pem").string();
  EXPECT_EQ(Health(tls), grpc::StatusCode::OK);
  EXPECT_NE(Health(ClientOptions()), grpc::StatusCode::OK);
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificateFromTheCa) {
  StartServer(/*mutual=*/true);
  ClientOptions without_cert;
  without_cert.tls_ca_file = (dir_ / "ca.pem").string();
  EXPECT_NE(Health(without_cert), grpc::StatusCode::OK);
  ClientOptions with_cert = without_cert;
  with_cert.tls_cert_file = (dir_ / "client.pem").string();
  with_cert.tls_key_file = (dir_ / "client.key").string();
  EXPECT_EQ(Health(with_cert), grpc::StatusCode::OK);
}

}  // namespace
}  // namespace likeness::coordinator
