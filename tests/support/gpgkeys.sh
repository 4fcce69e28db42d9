#!/bin/sh
# Make a throwaway GnuPG home with the keys the tests need, and write their
# fingerprints as shell assignments (and JSON) beside it.
#   tests/support/gpgkeys.sh DIR   -> DIR/gnupg, DIR/keys.sh, DIR/keys.json,
#                                     DIR/passphrase (the signer's)
# alice, bob: encryption keys without passphrase; carol: public key only
# (her secret key deleted); soon: expires in 10 days; expired: expired in
# 2020; revoked: revoked; signer: signing key with a passphrase.
# Stop its agent with: gpgconf --homedir DIR/gnupg --kill all
set -eu
dir=$1
G=$dir/gnupg
mkdir -p "$dir"
mkdir -m 700 "$G"
printf 's3cret passphrase\n' > "$dir/passphrase"
chmod 600 "$dir/passphrase"

gen() { # gen UID [ALGO USAGE EXPIRE [extra gpg options]]
	uid=$1
	shift
	algo=${1:-future-default} usage=${2:-default} expire=${3:-never}
	[ $# -ge 3 ] && shift 3
	gpg --homedir "$G" --batch --quiet --pinentry-mode loopback --passphrase '' "$@" \
		--quick-gen-key "$uid" "$algo" "$usage" "$expire" 2>/dev/null
}
fpr() {
	gpg --homedir "$G" --with-colons --list-keys "$1" | awk -F: '$1 == "fpr" { print $10; exit }'
}

gen "Alice <alice@test.invalid>"
gen "Bob <bob@test.invalid>"
gen "Carol <carol@test.invalid>"
gen "Soon <soon@test.invalid>" future-default default 10d
gen "Expired <expired@test.invalid>" future-default default 1d --faked-system-time 20200101T000000!
gen "Revoked <revoked@test.invalid>"
gpg --homedir "$G" --batch --quiet --pinentry-mode loopback --passphrase 's3cret passphrase' \
	--quick-gen-key "Signer <signer@test.invalid>" ed25519 sign never 2>/dev/null

carol=$(fpr carol@test.invalid)
gpg --homedir "$G" --batch --yes --delete-secret-keys "$carol" 2>/dev/null
revoked=$(fpr revoked@test.invalid)
sed 's/^:-----/-----/' "$G/openpgp-revocs.d/$revoked.rev" |
	gpg --homedir "$G" --batch --quiet --import 2>/dev/null

: > "$dir/keys.sh"
printf '{' > "$dir/keys.json"
sep=
for who in alice bob carol soon expired revoked signer; do
	f=$(fpr "$who@test.invalid")
	[ -n "$f" ] || { echo "gpgkeys: no key for $who" >&2; exit 1; }
	echo "$who=$f" >> "$dir/keys.sh"
	printf '%s"%s": "%s"' "$sep" "$who" "$f" >> "$dir/keys.json"
	sep=', '
done
echo '}' >> "$dir/keys.json"
# the agent caches nothing for the tests that need it empty
gpgconf --homedir "$G" --kill all
