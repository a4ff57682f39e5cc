#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# cmabuf: the Rust library's integration tests (userspace/cmabuf/tests/),
# run against the real device. Their libtest output becomes KTAP here.
# Skips (exit 4) when the test binary or the device is missing.

DIR=$(dirname "$(realpath "$0")")
. "$DIR/../kselftest/ktap_helpers.sh"
BIN=${CMABUF_RUST_TESTS:-$DIR/cmabuf_rust_tests}

ktap_print_header
if [ ! -x "$BIN" ]; then
	ktap_skip_all "no $BIN (build userspace/ for this target)"; exit "$KSFT_SKIP"
fi
if [ ! -c "${CMABUF_DEV:-/dev/cmabuf0}" ]; then
	ktap_skip_all "no ${CMABUF_DEV:-/dev/cmabuf0}"; exit "$KSFT_SKIP"
fi

out=$(mktemp)
"$BIN" --ignored --test-threads=1 > "$out" 2>&1
rc=$?
n=$(grep -c '^test .* \.\.\. ' "$out")
if [ "$n" -eq 0 ]; then
	sed 's/^/# /' "$out"
	ktap_exit_fail_msg "the test binary ran no test (exit $rc)"
fi
ktap_set_plan "$n"
grep '^test .* \.\.\. ' "$out" | while read -r _ name _ result; do
	case "$result" in
	ok) ktap_test_pass "$name" ;;
	ignored*) ktap_test_skip "$name" ;;
	*) ktap_test_fail "$name" ;;
	esac
done > "$out.ktap"
cat "$out.ktap"
grep -v '^test .* \.\.\. ' "$out" | sed 's/^/# /'
fails=$(grep -c '^not ok' "$out.ktap")
rm -f "$out" "$out.ktap"
[ "$fails" -eq 0 ] && [ "$rc" -eq 0 ] && exit "$KSFT_PASS"
exit "$KSFT_FAIL"
