#include "worker/dist/environment.h"

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace likeness::dist {
namespace {

struct Source {
  const char* name;
  const char* rank;
  const char* size;
  const char* local_rank;
};

constexpr Source kSources[] = {
    {"explicit", kRankEnv, kWorldSizeEnv, kLocalRankEnv},
    {"openmpi", kOmpiRankEnv, kOmpiSizeEnv, kOmpiLocalRankEnv},
    {"slurm", kSlurmRankEnv, kSlurmSizeEnv, kSlurmLocalRankEnv},
};

absl::StatusOr<int> ParseInt(const char* name, const char* value) {
  int out = 0;
  if (!absl::SimpleAtoi(value, &out) || out < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, "=", value, ": not a non-negative integer"));
  }
  return out;
}

}  // namespace

absl::StatusOr<DistEnvironment> ReadDistEnvironment(
    const std::function<const char*(const char*)>& getenv) {
  for (const Source& source : kSources) {
    const char* rank = getenv(source.rank);
    const char* size = getenv(source.size);
    if (rank == nullptr || size == nullptr) continue;
    DistEnvironment env;
    env.source = source.name;
    absl::StatusOr<int> r = ParseInt(source.rank, rank);
    if (!r.ok()) return r.status();
    absl::StatusOr<int> s = ParseInt(source.size, size);
    if (!s.ok()) return s.status();
    env.rank = *r;
    env.size = *s;
    // Without a local rank (a launcher that does not set it), assume one rank per node.
    if (const char* local = getenv(source.local_rank); local != nullptr) {
      absl::StatusOr<int> l = ParseInt(source.local_rank, local);
      if (!l.ok()) return l.status();
      env.local_rank = *l;
    }
    if (env.size < 1 || env.rank >= env.size) {
      return absl::InvalidArgumentError(absl::StrCat(source.rank, "=", rank, " is not below ",
                                                     source.size, "=", size));
    }
    return env;
  }
  return DistEnvironment{};
}

absl::StatusOr<DistEnvironment> ReadDistEnvironment() {
  return ReadDistEnvironment([](const char* name) { return std::getenv(name); });
}

}  // namespace likeness::dist
