#!/bin/bash
# Sites on a host reached over SSH: a real sshd on 127.0.0.1 (as root),
# HOME a temporary directory with its own ~/.ssh.  Host keys are refused
# until recorded, a changed or revoked one always, and an RSA key signed
# only with SHA-1; key files and ssh-agent log in; backups are checked
# with zstd, tar and cmp alone; a failing remote command fails its site
# only; a dropped connection, a server that stops answering or an
# interruption leaves no manifest, and an interruption stops the remote
# command.
. "$(dirname "$0")/lib.sh"

SSHD=$ROOT/tests/support/sshd.sh
S=$T/sshd
RSA=$T/sshd-rsa
AGENT_PID=
cleanup() {
	sh "$SSHD" stop "$S"
	sh "$SSHD" stop "$RSA"
	[ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
if ! port=$(sh "$SSHD" start "$S" 2>&1); then
	not_ok "sshd starts" "$port"
	finish
	exit 1
fi
fp() { ssh-keygen -lf "$1" | awk '{ print $2 }'; }
hostfp=$(fp "$S/hostkey.pub")

export HOME=$T/home
unset SSH_AUTH_SOCK SSH_AGENT_PID
mkdir -p -m 700 "$HOME/.ssh"
ssh-keygen -q -t ed25519 -N '' -C plain -f "$HOME/.ssh/id_ed25519"
ssh-keygen -q -t ed25519 -N 'secret words' -C encrypted -f "$HOME/.ssh/enc_key"
cat "$HOME/.ssh/id_ed25519.pub" "$HOME/.ssh/enc_key.pub" >> "$S/authorized_keys"
cat > "$HOME/.ssh/config" <<EOF
# the sites' hosts, by alias
Host web
  HostName 127.0.0.1
  Port $port
  User root
Host enc
  HostName 127.0.0.1
  Port $port
  User root
  IdentityFile ~/.ssh/enc_key
EOF
KH=$HOME/.ssh/known_hosts
NAP=31.$$ # the remote sleep an interruption must stop: this run's own

W=$T/www/acme
mkdir -p "$W/a/b" "$W/with space" "$W/cache/deep" "$T/restored"
printf 'deep\n' > "$W/a/b/deep.txt"
printf "it's quoted\n" > "$W/with space/it's here.txt"
printf 'log\n' > "$W/a/trace.log"
printf 'cached\n' > "$W/cache/deep/page.html"
head -c 2000000 /dev/urandom > "$W/a/random.bin"
printf 'line1\nline2\n' > "$T/dump.sql"

cat > "$T/cfg/vakap.lua" <<'LUA'
storage = dir "backups"
LUA
cat > "$T/cfg/sites.d/remote.lua" <<LUA
site "acme" {
  host = "web",
  files { path = "$W", exclude = { "*.log", "cache/" } },
  command { name = "db", run = { "cat", "$T/dump.sql" }, ext = "sql" },
}
site "direct" {
  host = "root@127.0.0.1:$port",
  command { run = { "printf", "%s", "direct over ssh" }, ext = "txt" },
}
site "broken" {
  host = "web",
  command { run = { "sh", "-c", "head -c 100000 /dev/zero; echo 'dump failed: disk on fire' >&2; exit 7" } },
}
site "gone" {
  host = "web",
  files { path = "$T/no/such/dir" },
  command { run = { "no-such-command-here" } },
}
site "enc" {
  host = "enc",
  command { run = { "echo", "via the agent" }, ext = "txt" },
}
site "slow" {
  host = "web",
  command { run = { "sh", "-c", "head -c 3000000 /dev/urandom; exec sleep 5" } },
}
site "slower" {
  host = "web",
  command { run = { "sh", "-c", "head -c 3000000 /dev/urandom; exec sleep $NAP" } },
}
site "ticking" {
  host = "web",
  command { run = { "timeout", "60", "sh", "-c", "while :; do echo tick; sleep 0.1; done" } },
}
site "roundtrip" {
  host = "web",
  vars = { src = "$W/a", dst = "$T/restored/a", out = "$T/restored/partial", marker = "$T/restored/marker" },
}
LUA
cat > "$T/cfg/ops.d/roundtrip.lua" <<'LUA'
op "roundtrip" {
  description = "tar a directory on the host and extract it elsewhere there; feed a failing stream",
  run = function(site)
    local s = assert(site:tar(site.vars.src))
    local ok, err = site:extract(s, site.vars.dst)
    s:close()
    if not ok then return nil, err end
    local bad = assert(site:spawn({ "sh", "-c", "head -c 500000 /dev/zero; sleep 1; exit 3" }))
    local n, ferr = site:feed({ "sh", "-c", 'cat > "$1"; echo done > "$2"', "sh", site.vars.out, site.vars.marker }, bad)
    bad:close()
    return { fed = n, feed_error = ferr, stat = site:stat(site.vars.src) }
  end,
}
LUA
B=$T/cfg/backups

# ---- an unknown host key is refused, with its fingerprint
run backup acme
expect_code "an unknown host key fails the site" 1
contains "the refusal shows the key's fingerprint" "$hostfp" "$OUT"
contains "the refusal says the key is not known" "is not known" "$OUT"
contains "the refusal says how to record it" "vakap hostkeys --accept-new" "$OUT"
check "nothing is stored for the refused site" test -z "$(find "$B/acme" -name '*.json' -not -path '*/_ops/*' 2>/dev/null)"

run hostkeys acme direct
expect_code "hostkeys exits 1 while a key is unknown" 1
contains "hostkeys shows the fingerprint" "$hostfp" "$OUT"
contains "hostkeys says it is unknown" "unknown" "$OUT"
check "hostkeys alone records nothing" test ! -e "$KH"

run hostkeys --accept-new acme direct
expect_code "hostkeys --accept-new records the new key" 0
contains "it says where" "recorded in $KH" "$OUT"
check "known_hosts has the [host]:port entry" grep -q "^\[127.0.0.1\]:$port ssh-ed25519 " "$KH"
check "OpenSSH accepts what was recorded" \
	ssh -F /dev/null -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$KH" -o BatchMode=yes \
	-i "$HOME/.ssh/id_ed25519" -p "$port" root@127.0.0.1 true
run --json hostkeys
expect_code "hostkeys exits 0 when every key is known" 0
printf '%s' "$OUT" > "$T/hk.json"
check "hostkeys --json says known" test "$(json_get "$T/hk.json" 'd["hosts"][0]["state"]')" = known

# ---- backups over SSH, checked with zstd, tar and cmp alone
run backup acme direct broken
expect_code "a backup with a failing site exits 1" 1
contains "the failure names the command, its status and the host" "sh exited with status 7 on web" "$OUT"
contains "the failure shows the remote stderr" "disk on fire" "$OUT"
contains "only that site failed" "1 failed (broken)" "$OUT"
check "the failed component has no manifest and no data" test -z "$(ls -A "$B/broken/command" 2>/dev/null)"

tarobj=$(ls "$B"/acme/files/*.tar.zst 2>/dev/null | head -1)
check "the files component is stored as .tar.zst" test -f "$tarobj"
check "its manifest exists" test -f "${tarobj%.tar.zst}.json"
zstd -qdc "$tarobj" > "$T/files.tar"
names=$(tar -tf "$T/files.tar")
contains "the tar has the nested file" "a/b/deep.txt" "$names"
contains "the tar has the name with a space and a quote" "with space/it's here.txt" "$names"
lacks "*.log is excluded" "trace.log" "$names"
lacks "cache/ is excluded with its contents" "page.html" "$names"
mkdir "$T/x"
tar -xf "$T/files.tar" -C "$T/x"
check "the extracted tree equals the source" diff -r -x '*.log' -x cache "$W" "$T/x"
check "the random file is byte for byte" cmp "$W/a/random.bin" "$T/x/a/random.bin"
sqlobj=$(ls "$B"/acme/db/*.sql.zst 2>/dev/null | head -1)
zstd -qdc "$sqlobj" > "$T/db.out" 2>/dev/null
check "the remote command's output is stored byte for byte" cmp "$T/dump.sql" "$T/db.out"
check "its exit status is in the manifest" \
	test "$(json_get "${sqlobj%.sql.zst}.json" 'd["source"]["exit_status"]')" = 0
check "user@host:port works as a host" test "$(zstd -qdc "$B"/direct/command/*.txt.zst)" = "direct over ssh"

# hashed known_hosts entries are read too
ssh-keygen -q -H -f "$KH" >/dev/null 2>&1
rm -f "$KH.old"
check "known_hosts is now hashed" grep -q '^|1|' "$KH"
run backup direct
expect_code "a hashed known_hosts entry is accepted" 0

# ---- check over SSH
run check acme gone
expect_code "check exits 1 when a component's path is missing" 1
contains "check passes a remote directory" "ok" "$(printf '%s\n' "$OUT" | grep '^acme  *files')"
contains "check finds a remote command" "ok" "$(printf '%s\n' "$OUT" | grep '^acme  *db')"
contains "check names a missing remote directory" "cannot stat $T/no/such/dir on web" "$OUT"
contains "check names a missing remote command" "no-such-command-here: command not found in PATH on web" "$OUT"

# ---- keys: an encrypted key file needs the agent
run backup enc
expect_code "an encrypted key without an agent fails" 1
contains "the failure says the key is encrypted and what to do" \
	"enc_key is encrypted: vakap uses an encrypted key only through ssh-agent (ssh-add $HOME/.ssh/enc_key)" "$OUT"
contains "the failure says there is no agent" "no ssh-agent" "$OUT"

eval "$(ssh-agent -s -a "$T/agent.sock")" > /dev/null
AGENT_PID=$SSH_AGENT_PID
printf '#!/bin/sh\necho "secret words"\n' > "$T/askpass"
chmod +x "$T/askpass"
check "ssh-add takes the encrypted key" env SSH_ASKPASS="$T/askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=: \
	ssh-add -q "$HOME/.ssh/enc_key"
run backup enc
expect_code "the encrypted key works through the agent" 0
check "what it stored is the command's output" test "$(zstd -qdc "$B"/enc/command/*.txt.zst)" = "via the agent"
kill "$AGENT_PID"
AGENT_PID=
unset SSH_AUTH_SOCK SSH_AGENT_PID

# ---- tar, extract and feed on the host
run --json run roundtrip roundtrip
expect_code "tar and extract over SSH" 0
printf '%s' "$OUT" > "$T/rt.json"
check "the extracted copy equals the source" diff -r -x '*.log' "$W/a" "$T/restored/a"
check "stat over SSH sees a directory" test "$(json_get "$T/rt.json" 'd["sites"][0]["result"]["stat"]["type"]')" = directory
contains "a failing input stream fails the feed with its error" "exited with status 3 on web" \
	"$(json_get "$T/rt.json" 'd["sites"][0]["result"]["feed_error"]')"
check "the fed command was stopped before it saw an end of input" test ! -e "$T/restored/marker"

# ---- the connection drops mid-stream
(cd "$T/cfg" && exec "$VAKAP" backup slow > "$T/out" 2> "$T/err") &
pid=$!
for _ in $(seq 1 100); do
	[ -n "$(find "$B/slow" -name '.tmp-*' 2>/dev/null)" ] && break
	sleep 0.1
done
check "the slow backup is in flight" test -n "$(find "$B/slow" -name '.tmp-*' 2>/dev/null)"
sh "$SSHD" drop "$S"
RC=0
timeout 20 tail --pid=$pid -f /dev/null || RC=timeout
wait $pid || RC=$?
check "the site fails when its connection drops" test "$RC" = 1
contains "the failure says the connection was lost" "connection lost" "$(cat "$T/out")"
check "no manifest and no data for the dropped backup" test -z "$(find "$B/slow" -type f -not -path '*/_ops/*' 2>/dev/null)"

# ---- an interruption stops the remote command
(cd "$T/cfg" && exec "$VAKAP" backup slower > "$T/out" 2> "$T/err") &
pid=$!
for _ in $(seq 1 100); do
	[ -n "$(find "$B/slower" -name '.tmp-*' 2>/dev/null)" ] && [ -n "$(pgrep -f "sleep $NAP")" ] && break
	sleep 0.1
done
kill -TERM $pid
RC=0
timeout 20 tail --pid=$pid -f /dev/null || RC=timeout
wait $pid || RC=$?
check "an interrupted SSH backup exits 130" test "$RC" = 130
check "no manifest for the interrupted backup" test -z "$(find "$B/slower" -type f -not -path '*/_ops/*' 2>/dev/null)"
sleep 0.3
check "the remote command was stopped" test -z "$(pgrep -f "sleep $NAP")"

# ---- a server that stops answering (its sshd stopped: the kernel still
# acknowledges) is dropped after three keepalives without an answer
cp "$T/cfg/vakap.lua" "$T/vakap.lua.saved"
printf 'ssh = { keepalive = 1 }\n' >> "$T/cfg/vakap.lua"
(cd "$T/cfg" && exec "$VAKAP" backup ticking > "$T/out" 2> "$T/err") &
pid=$!
for _ in $(seq 1 100); do
	[ -n "$(find "$B/ticking" -name '.tmp-*' 2>/dev/null)" ] && break
	sleep 0.1
done
check "the ticking backup is in flight" test -n "$(find "$B/ticking" -name '.tmp-*' 2>/dev/null)"
check "sshd serves it" test -n "$(sh "$SSHD" sessions "$S")"
sh "$SSHD" freeze "$S"
start=$(date +%s%N)
if timeout 15 tail --pid=$pid -f /dev/null; then
	RC=0
	wait $pid || RC=$?
else
	RC=timeout
	kill -KILL $pid
	wait $pid
fi
ms=$((($(date +%s%N) - start) / 1000000))
echo "# vakap ended ${ms} ms after sshd was stopped"
sh "$SSHD" thaw "$S"
check "the site fails when its server stops answering" test "$RC" = 1
check "within 15 s (keepalive = 1)" test "$ms" -lt 15000
contains "the failure says the server did not answer, for how long, and that the connection was dropped" \
	"timeout on web: no answer from the SSH server for 3 s (3 keepalives); connection dropped" "$(cat "$T/out")"
check "no manifest and no data for the backup of the frozen server" \
	test -z "$(find "$B/ticking" -type f -not -path '*/_ops/*' 2>/dev/null)"
cp "$T/vakap.lua.saved" "$T/cfg/vakap.lua"

# ---- a changed host key is refused, and never replaced
cp "$KH" "$T/kh.before"
sh "$SSHD" stop "$S"
rm -f "$S/hostkey" "$S/hostkey.pub"
if ! out=$(sh "$SSHD" start "$S" 2>&1); then not_ok "sshd restarts with another key" "$out"; fi
newfp=$(fp "$S/hostkey.pub")
check "the new host key differs" test "$newfp" != "$hostfp"
run backup direct
expect_code "a changed host key fails the site" 1
contains "the refusal says the key changed" "HAS CHANGED" "$OUT"
contains "the refusal shows the new fingerprint" "$newfp" "$OUT"
contains "the refusal shows the known fingerprint" "$hostfp" "$OUT"
run hostkeys --accept-new direct
expect_code "hostkeys --accept-new refuses a changed key" 1
contains "the error names the host" "root@127.0.0.1:$port" "$OUT"
contains "the error shows the new fingerprint" "$newfp" "$OUT"
contains "the error shows the known fingerprint" "$hostfp" "$OUT"
check "known_hosts is unchanged" cmp "$KH" "$T/kh.before"

# ---- a revoked host key is refused even where known_hosts also has it,
# and never recorded
cp "$KH" "$T/kh.saved"
newkey=$(cut -d' ' -f1,2 "$S/hostkey.pub")
printf '[127.0.0.1]:%s %s\n@revoked * %s\n' "$port" "$newkey" "$newkey" > "$KH"
manifests() { find "$B/direct" -name '*.json' -not -path '*/_ops/*' | wc -l; }
stored=$(manifests)
run backup direct
expect_code "a revoked host key fails the site" 1
contains "the refusal says the key is revoked, and where" "IS REVOKED: root@127.0.0.1:$port offers ssh-ed25519 $newfp, which $KH marks @revoked" "$OUT"
check "nothing is stored for the revoked host" test "$(manifests)" = "$stored"
printf '@revoked * %s\n' "$newkey" > "$KH"
cp "$KH" "$T/kh.before"
run hostkeys --accept-new direct
expect_code "hostkeys --accept-new refuses a revoked key" 1
contains "the error says the key is revoked, with its fingerprint" "IS REVOKED: root@127.0.0.1:$port offers ssh-ed25519 $newfp" "$OUT"
check "known_hosts is unchanged" cmp "$KH" "$T/kh.before"
cp "$T/kh.saved" "$KH"

# ---- an RSA host key: taken with SHA-2 signatures, refused with SHA-1 only
if ! rsaport=$(SSHD_KEYTYPE=rsa sh "$SSHD" start "$RSA" 2>&1); then not_ok "sshd starts with an RSA key" "$rsaport"; fi
cp "$HOME/.ssh/id_ed25519.pub" "$RSA/authorized_keys"
cat > "$T/cfg/sites.d/rsa.lua" <<LUA
site "rsa" {
  host = "root@127.0.0.1:$rsaport",
  command { run = { "echo", "over rsa-sha2" }, ext = "txt" },
}
LUA
rsassh() {
	ssh -F /dev/null -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$KH" -o BatchMode=yes \
		-i "$HOME/.ssh/id_ed25519" -p "$rsaport" "$@" root@127.0.0.1 true
}
fails() { ! "$@" 2>/dev/null; }
run hostkeys --accept-new rsa
expect_code "hostkeys --accept-new records an RSA key" 0
check "known_hosts has it as ssh-rsa" grep -q "^\[127.0.0.1\]:$rsaport ssh-rsa " "$KH"
check "OpenSSH takes it with rsa-sha2-512" rsassh -o HostKeyAlgorithms=rsa-sha2-512
run backup rsa
expect_code "a backup over an RSA host key signed with SHA-2 works" 0
check "what it stored is the command's output" test "$(zstd -qdc "$B"/rsa/command/*.txt.zst)" = "over rsa-sha2"
sh "$SSHD" stop "$RSA"
if ! out=$(SSHD_OPTIONS='HostKeyAlgorithms ssh-rsa' sh "$SSHD" start "$RSA" 2>&1); then
	not_ok "sshd restarts offering ssh-rsa (SHA-1) only" "$out"
fi
check "OpenSSH connects with ssh-rsa" rsassh -o HostKeyAlgorithms=ssh-rsa
check "OpenSSH finds no rsa-sha2-512 there" fails rsassh -o HostKeyAlgorithms=rsa-sha2-512
run backup rsa
expect_code "an RSA host key signed with SHA-1 only fails the site" 1
contains "the refusal names the algorithm and why" \
	"the server signs with its host key only as ssh-rsa; ssh-rsa is RSA with SHA-1 signatures, which vakap refuses" "$OUT"
contains "it says what vakap takes" "rsa-sha2-512 or rsa-sha2-256" "$OUT"
sh "$SSHD" stop "$RSA"

# A tree that changes while it is read fails its component, over SSH (the
# host's GNU tar says so in its exit status) as locally: a file grows all
# the time the backup reads it.  No manifest is written for either.
mkdir -p "$T/growing"
head -c 20000000 /dev/urandom > "$T/growing/big.bin"
(end=$((SECONDS + 60)); while [ $SECONDS -lt $end ]; do printf x >> "$T/growing/big.bin"; sleep 0.005; done) &
GROW=$!
cat > "$T/cfg/sites.d/remote.lua" <<LUA
site "growing-remote" { host = "web", files { path = "$T/growing" } }
site "growing-local" { host = "local", files { path = "$T/growing" } }
LUA
ssh-keygen -R "[127.0.0.1]:$port" -f "$KH" >/dev/null 2>&1
run hostkeys --accept-new growing-remote
run backup growing-remote growing-local
kill "$GROW" 2>/dev/null
wait "$GROW" 2>/dev/null
expect_code "a tree changing while it is read fails" 1
contains "over SSH, saying what GNU tar found" "file changed as we read it" "$(printf '%s\n' "$OUT" | grep '^growing-remote')"
contains "locally, saying what changed" "big.bin: file changed" "$(printf '%s\n' "$OUT" | grep '^growing-local')"
check "and no manifest is written" test -z "$(find "$T/cfg/backups/growing-remote" "$T/cfg/backups/growing-local" -name '*.json' -not -path '*/_ops/*' 2>/dev/null)"

# Restore into a directory on the host where links were planted: one in
# place of a directory the backup holds is replaced, not written through;
# the target itself a link is refused.  Nothing lands outside.
mkdir -p "$T/sym/src/a/b" "$T/sym/outside" "$T/sym/dst"
printf 'restored\n' > "$T/sym/src/a/b/file.txt"
cat > "$T/cfg/sites.d/remote.lua" <<LUA
site "symlinked" { host = "web", files { name = "www", path = "$T/sym/src" } }
LUA
run backup symlinked
expect_code "a backup to restore" 0
ln -s "$T/sym/outside" "$T/sym/dst/a"
run restore symlinked www --into-host --target "$T/sym/dst"
expect_code "restore over SSH into a directory with a planted link succeeds" 0
check "nothing is written through the link" test -z "$(ls -A "$T/sym/outside")"
check "the restored tree is in place" test "$(cat "$T/sym/dst/a/b/file.txt")" = restored
ln -s "$T/sym/outside" "$T/sym/linked"
run restore symlinked www --into-host --target "$T/sym/linked"
expect_code "restore into a target that is itself a link is refused" 1
contains "saying so" "is a symbolic link: refusing to restore through it" "$OUT"
check "and nothing is written through it" test -z "$(ls -A "$T/sym/outside")"

finish
