#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a share of a time budget (default 60 s in total), starting from
# the committed seed corpus. Needs the nightly toolchain and cargo-fuzz: when either is missing this script
# installs it (`rustup toolchain install nightly --profile minimal`, `cargo install cargo-fuzz --locked`),
# and exits with status 3 and the reason when that fails, so callers (scripts/test.sh) can tell "could not
# fuzz" from "a target crashed" (status 1).
#
# Builds are `-O --sanitizer none`: the code is safe Rust, where AddressSanitizer finds little that a panic
# does not, and it runs about 5× faster (more inputs per second, a shorter build in CI).
# A crash stops the script with its input in fuzz/artifacts/<target>/; turn each into a unit test.
# The seeds in fuzz/corpus/<target>/ are partly hand-made, partly what real clients send (the Python and
# Rust SDKs, the browser recorder), captured by fuzz/seeds/capture.sh.
#
#   scripts/fuzz.sh            # 60 s in total
#   scripts/fuzz.sh 600        # 10 minutes in total
set -euo pipefail

flags=(-O --sanitizer none)
total_seconds="${1:-60}"
cd "$(dirname "$0")/../fuzz"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing the nightly toolchain (rustup toolchain install nightly --profile minimal)"
  if ! rustup toolchain install nightly --profile minimal; then
    echo "fuzz.sh: no nightly toolchain and it could not be installed: fuzzing skipped" >&2
    exit 3
  fi
fi
if ! cargo +nightly fuzz --help >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  if ! cargo install cargo-fuzz --locked; then
    echo "fuzz.sh: no cargo-fuzz and it could not be installed: fuzzing skipped" >&2
    exit 3
  fi
fi

mapfile -t targets < <(cargo +nightly fuzz list)
per_target=$(( total_seconds / ${#targets[@]} ))
(( per_target >= 1 )) || per_target=1

build_start=$SECONDS
cargo +nightly fuzz build "${flags[@]}"
echo "fuzz.sh: built ${#targets[@]} targets in $(( SECONDS - build_start )) s"
for target in "${targets[@]}"; do
  echo "== ${target}: ${per_target} s"
  # The seeds are read from corpus/, what the run finds goes to a scratch folder: the committed seeds stay.
  scratch="$(mktemp -d)"
  log="${scratch}.log"
  status=0
  cargo +nightly fuzz run "${flags[@]}" "${target}" "${scratch}" "corpus/${target}" -- \
    -max_total_time="${per_target}" -max_len=65536 -print_final_stats=1 >"${log}" 2>&1 || status=$?
  grep -E "^(Done [0-9]+ runs|stat::peak_rss_mb|SUMMARY|thread .* panicked)" "${log}" || true
  if (( status != 0 )); then
    tail -n 40 "${log}" >&2
    echo "fuzz.sh: ${target} failed; the input is in fuzz/artifacts/${target}/" >&2
    rm -rf "${scratch}" "${log}"
    exit 1
  fi
  runs="$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "${log}")"
  echo "fuzz.sh: ${target} ok, ${runs:-?} runs"
  rm -rf "${scratch}" "${log}"
done
echo "fuzz.sh: ${#targets[@]} targets, ${per_target} s each, no crash"
