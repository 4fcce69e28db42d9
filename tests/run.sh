#!/bin/sh
# Every test suite: the function-length check, C unit tests under ASan/UBSan and under valgrind, the
# busted specs of the Lua side, and the end-to-end tests of the binary.
#   tests/run.sh [style|unit|valgrind|spec|e2e]...   (default: all of them)
# Ends with "N passed, N failed", counting suites; exit 1 if any failed.
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
failures=

suite() {
	name=$1
	shift
	echo "=== $name"
	start=$(date +%s)
	if "$@"; then
		passed=$((passed + 1))
		echo "=== $name: ok ($(($(date +%s) - start))s)"
	else
		failed=$((failed + 1))
		failures="$failures
  $name"
		echo "=== $name: FAILED"
	fi
}

[ $# -eq 0 ] && set -- style unit valgrind spec e2e
for what in "$@"; do
	case $what in
	unit)
		for t in build/asan/test_*; do
			[ -x "$t" ] && suite "unit $(basename "$t") (ASan/UBSan)" \
				env ASAN_OPTIONS=detect_leaks=1 "$t"
		done ;;
	valgrind)
		for t in build/plain/test_*; do
			[ -x "$t" ] && suite "unit $(basename "$t") (valgrind)" \
				valgrind -q --error-exitcode=1 --leak-check=full \
				--child-silent-after-fork=yes \
				--errors-for-leak-kinds=definite,indirect "$t"
		done ;;
	style)
		suite "no function over 60 lines" python3 tools/longfuncs.py ;;
	spec)
		suite "busted specs" lua5.4 /usr/bin/busted ;;
	e2e)
		for t in tests/e2e/test_*.sh; do
			suite "e2e $(basename "$t" .sh)" bash "$t"
		done ;;
	*)
		echo "tests/run.sh: unknown suite '$what'" >&2
		exit 2 ;;
	esac
done

[ -n "$failures" ] && echo "failed suites:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
