# Shared by the end-to-end tests: a temporary directory, the binary under
# test (the ASan/UBSan build), and TAP-like reporting ending in
# "N passed, N failed".
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VAKAP=${VAKAP:-$ROOT/build/vakap-asan}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=99}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LC_ALL=C.UTF-8
unset VAKAP_CONFIG VAKAP_NOW VAKAP_LUA_DIR
T=$(mktemp -d /tmp/vakap-e2e.XXXXXX)
trap 'rm -rf "$T"' EXIT
PASS=0
FAIL=0

ok() { PASS=$((PASS + 1)); echo "ok - $1"; }
not_ok() {
	FAIL=$((FAIL + 1))
	echo "not ok - $1"
	[ -n "${2:-}" ] && printf '%s\n' "$2" | head -40 | sed 's/^/#   /'
	return 0
}
# check NAME COMMAND...: passes when the command succeeds
check() {
	name=$1
	shift
	if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "$out"; fi
}
# expect_code NAME CODE: the last `run` ended with CODE
expect_code() {
	if [ "$RC" = "$2" ]; then ok "$1"; else not_ok "$1" "exit $RC, wanted $2
$OUT
$ERR"; fi
}
# contains NAME TEXT HAYSTACK
contains() {
	case $3 in
	*"$2"*) ok "$1" ;;
	*) not_ok "$1" "'$2' not in:
$3" ;;
	esac
}
lacks() {
	case $3 in
	*"$2"*) not_ok "$1" "'$2' unexpectedly in:
$3" ;;
	*) ok "$1" ;;
	esac
}
# run ARGS...: vakap in $T/cfg; sets OUT, ERR, RC.  Sanitizer reports
# (exit 99, "ERROR: AddressSanitizer", "runtime error:") fail the test.
run() {
	run_in "$T/cfg" "$@"
}
# run_in DIR ARGS...: the same, in DIR
run_in() {
	RC=0
	run_dir=$1
	shift
	(cd "$run_dir" && "$VAKAP" "$@") >"$T/out" 2>"$T/err" || RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
	case $ERR in
	*AddressSanitizer* | *LeakSanitizer* | *"runtime error:"*) not_ok "sanitizer clean: vakap $*" "$ERR" ;;
	esac
}
# json_get FILE_OR_- EXPR: evaluate a Python expression on the parsed JSON `d`
json_get() {
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1]) if sys.argv[1]!="-" else sys.stdin); print(eval(sys.argv[2]))' "$@"
}
# test_keys: the throwaway keyring of tests/support/gpgkeys.sh in $T/k,
# its fingerprints ($alice, $bob, $signer, ...) set, G its home, and its
# agent stopped when the test ends (with the temporary directory); a
# keyring that cannot be made ends the test.
test_keys() {
	if ! sh "$ROOT/tests/support/gpgkeys.sh" "$T/k" >/dev/null 2>&1; then
		not_ok "make the test keys"
		finish
		exit 1
	fi
	. "$T/k/keys.sh"
	G=$T/k/gnupg
	trap 'gpgconf --homedir "$G" --kill all 2>/dev/null; rm -rf "$T"' EXIT
}
finish() {
	echo "$PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
}
mkdir -p "$T/cfg/sites.d" "$T/cfg/ops.d"
