// Status propagation macros. abseil 20220623 (Debian 12) has neither ABSL_RETURN_IF_ERROR nor
// ABSL_ASSIGN_OR_RETURN, so the project defines its own, once, here.
#ifndef LIKENESS_COMMON_STATUS_MACROS_H_
#define LIKENESS_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define LIKENESS_STATUS_CONCAT_INNER_(a, b) a##b
#define LIKENESS_STATUS_CONCAT_(a, b) LIKENESS_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` (an absl::Status) is not OK.
#define LIKENESS_RETURN_IF_ERROR(expr)                  \
  do {                                                  \
    ::absl::Status likeness_status_ = (expr);           \
    if (!likeness_status_.ok()) return likeness_status_; \
  } while (false)

// `lhs` = value of `rexpr` (an absl::StatusOr<T>), or returns its status from the enclosing
// function. `lhs` may be a declaration: LIKENESS_ASSIGN_OR_RETURN(auto file, Open(path));
#define LIKENESS_ASSIGN_OR_RETURN(lhs, rexpr) \
  LIKENESS_ASSIGN_OR_RETURN_IMPL_(LIKENESS_STATUS_CONCAT_(likeness_statusor_, __LINE__), lhs, rexpr)

#define LIKENESS_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();   \
  lhs = std::move(statusor).value()

#endif  // LIKENESS_COMMON_STATUS_MACROS_H_
