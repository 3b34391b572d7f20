# Shared by the launch/ scripts: where things are, and how to say what we do.
# Sourced, not run.
LIKENESS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIKENESS_BUILD_DIR=${LIKENESS_BUILD_DIR:-$LIKENESS_ROOT/build}

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# run_timed LABEL CMD...: runs CMD, then prints and records how long it took, so the README's
# measured times can be re-measured on any machine (build/timings.txt).
run_timed() {
  local label=$1; shift
  local start end
  start=$(date +%s)
  "$@"
  end=$(date +%s)
  say "$label took $((end - start)) s"
  mkdir -p "$LIKENESS_BUILD_DIR"
  echo "$label $((end - start))" >> "$LIKENESS_BUILD_DIR/timings.txt"
}
