#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a share of a time budget (default 60 s in total), starting from
# the committed seed corpus. Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# A crash stops the script with its input in fuzz/artifacts/<target>/; turn each into a unit test.
#
#   scripts/fuzz.sh            # 60 s in total
#   scripts/fuzz.sh 600        # 10 minutes in total
set -euo pipefail

total_seconds="${1:-60}"
cd "$(dirname "$0")/../fuzz"

if ! cargo +nightly fuzz --help >/dev/null 2>&1; then
  echo "fuzz.sh: needs the nightly toolchain and cargo-fuzz: rustup toolchain install nightly && cargo install cargo-fuzz" >&2
  exit 2
fi

mapfile -t targets < <(cargo +nightly fuzz list)
per_target=$(( total_seconds / ${#targets[@]} ))
(( per_target >= 1 )) || per_target=1

cargo +nightly fuzz build -O
for target in "${targets[@]}"; do
  echo "== ${target}: ${per_target} s"
  # The seeds are read from corpus/, what the run finds goes to a scratch folder: the committed seeds stay.
  scratch="$(mktemp -d)"
  log="${scratch}.log"
  status=0
  cargo +nightly fuzz run -O "${target}" "${scratch}" "corpus/${target}" -- \
    -max_total_time="${per_target}" -max_len=65536 -print_final_stats=1 >"${log}" 2>&1 || status=$?
  grep -E "^(Done [0-9]+ runs|stat::peak_rss_mb|SUMMARY|thread .* panicked)" "${log}" || true
  if (( status != 0 )); then
    tail -n 40 "${log}" >&2
    echo "fuzz.sh: ${target} failed; the input is in fuzz/artifacts/${target}/" >&2
    rm -rf "${scratch}" "${log}"
    exit 1
  fi
  rm -rf "${scratch}" "${log}"
done
echo "fuzz.sh: ${#targets[@]} targets, ${per_target} s each, no crash"
