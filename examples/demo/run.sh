#!/bin/sh
# make demo: create the demo sites' data, back them up, run the example
# ops, and show the status.
set -eu
cd "$(dirname "$0")"
VAKAP_DEMO=$(pwd)
export VAKAP_DEMO
vakap=${VAKAP_BIN:-../../build/vakap}

rm -rf data
mkdir -p "data/shop/uploads/2026/11" "data/shop/uploads/cache" "data/blog/posts"
printf 'a photo\n' > "data/shop/uploads/2026/11/photo one.jpg"
printf 'un café\n' > "data/shop/uploads/2026/11/café.txt"
printf 'debug\n' > "data/shop/uploads/debug.log"
printf 'cached\n' > "data/shop/uploads/cache/page.html"
sqlite3 data/shop/shop.db "CREATE TABLE orders(id INTEGER PRIMARY KEY, item TEXT, qty INT);
  INSERT INTO orders(item, qty) VALUES ('tea', 2), ('coffee', 1), ('café au lait', 3);"
printf '# Hello\n' > data/blog/posts/hello.md
(cd data/blog && git init -q && git add -A &&
 git -c user.name=demo -c user.email=demo@example.invalid commit -qm "first post")

# A throwaway key in a keyring of the demo's own, that the backups are
# encrypted to (see vakap.lua).  A real setup keeps the secret key away
# from the backup host: only the public key is needed to back up.
if [ ! -d gnupg ]; then
	mkdir -m 700 gnupg
	gpg --homedir gnupg --batch --quiet --passphrase '' \
		--quick-gen-key 'vakap demo <demo@vakap.invalid>' default default 1y 2>/dev/null
fi
trap 'gpgconf --homedir gnupg --kill all 2>/dev/null || true' EXIT

echo "== vakap list"
$vakap -c vakap.lua list
echo
echo "== vakap backup"
$vakap -c vakap.lua backup
echo
echo "== vakap run disk-usage"
$vakap -c vakap.lua run disk-usage
echo
echo "== vakap run revision blog"
$vakap -c vakap.lua run revision blog
echo
echo "== vakap verify"
$vakap -c vakap.lua verify
echo
echo "== vakap status"
$vakap -c vakap.lua status
echo
echo "== vakap check"
$vakap -c vakap.lua check
echo
echo "Backups are in $(pwd)/backups; restore one with vakap:"
echo "  $vakap -c vakap.lua restore shop db --to copy.sql"
echo "or by hand, with gpg and zstd alone:"
echo "  gpg --homedir gnupg -d backups/shop/db/<STAMP>.sql.zst.gpg | zstd -dc | sqlite3 copy.db"
