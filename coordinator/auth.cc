#include "coordinator/auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "coordinator/constants.h"

namespace likeness::coordinator {
namespace {

// 32 random bytes as hex: 256 bits from the kernel's entropy (std::random_device reads
// /dev/urandom with libstdc++).
std::string RandomToken() {
  std::random_device device;
  std::string token;
  constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) {
    const unsigned byte = device() & 0xff;
    token += kHex[byte >> 4];
    token += kHex[byte & 0xf];
  }
  return token;
}

absl::Status CheckLength(const std::string& token, const std::string& source) {
  if (static_cast<int>(token.size()) < kMinTokenLength) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": the token has ", token.size(),
                                                   " characters; use at least ", kMinTokenLength));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> WriteNewToken(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), error);
  const std::string token = RandomToken();
  // O_EXCL with mode 0600: never readable by others, even for an instant.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot create the token file"));
  const std::string line = token + "\n";
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!written || !synced) return absl::UnavailableError(absl::StrCat(path, ": cannot write the token"));
  return token;
}

}  // namespace

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % (b.empty() ? 1 : b.size())];
  return diff == 0 && !b.empty();
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read the token file"));
  std::stringstream text;
  text << in.rdbuf();
  std::string token(absl::StripAsciiWhitespace(text.str()));
  if (token.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": the token file is empty"));
  return token;
}

absl::StatusOr<std::string> ResolveServerToken(const std::string& token_file,
                                               const std::string& state_dir) {
  if (!token_file.empty()) {
    auto token = ReadTokenFile(token_file);
    if (!token.ok()) return token.status();
    if (auto status = CheckLength(*token, token_file); !status.ok()) return status;
    return token;
  }
  if (const char* env = std::getenv(kTokenEnvVar); env != nullptr && *env != '\0') {
    std::string token(absl::StripAsciiWhitespace(env));
    if (auto status = CheckLength(token, kTokenEnvVar); !status.ok()) return status;
    return token;
  }
  const std::string path = (std::filesystem::path(state_dir) / kTokenFileName).string();
  if (std::filesystem::exists(path)) return ReadTokenFile(path);
  return WriteNewToken(path);
}

absl::StatusOr<std::string> ResolveClientToken(const std::string& token_file,
                                               const std::string& default_file) {
  if (!token_file.empty()) return ReadTokenFile(token_file);
  if (const char* env = std::getenv(kTokenEnvVar); env != nullptr && *env != '\0') {
    return std::string(absl::StripAsciiWhitespace(env));
  }
  if (!default_file.empty() && std::filesystem::exists(default_file)) {
    return ReadTokenFile(default_file);
  }
  return std::string();
}

grpc::Status Authenticator::Check(const grpc::ServerContext& context) const {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(kAuthMetadataKey);
  if (it == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        absl::StrCat("no bearer token: pass --token_file or set ", kTokenEnvVar));
  }
  const absl::string_view value(it->second.data(), it->second.size());
  if (!absl::StartsWith(value, kBearerPrefix) ||
      !ConstantTimeEquals(std::string(value.substr(strlen(kBearerPrefix))), token_)) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "the bearer token is not valid");
  }
  return grpc::Status::OK;
}

}  // namespace likeness::coordinator
