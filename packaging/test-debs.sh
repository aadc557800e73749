#!/usr/bin/env bash
# make deb-test (root): installs dist/pharos-*.deb on this machine with dpkg -i, checks what
# an operator relies on, reinstalls (upgrade path), removes, purges, and checks that purge
# leaves no file behind. Every check prints one line; the first failure stops the run and
# the packages are purged anyway.
# shellcheck source=test-common.sh
. "$(dirname "$0")/test-common.sh" deb-test "it installs packages with dpkg -i"
packages=(pharos-coxswain pharos-node pharos-relay pharos-caravel)
work=$(mktemp -d)
fail() { printf '  FAIL %s\n' "$*" >&2; exit 1; }
check() { local what=$1; shift; if "$@" >"$work/out" 2>&1; then ok "$what"; else cat "$work/out" >&2; fail "$what"; fi; }
cleanup() {
	local status=$?
	dpkg -P "${packages[@]}" >/dev/null 2>&1 || true
	rm -rf "$work"
	exit $status
}
trap cleanup EXIT

# What the test itself needs, and every package's runtime dependencies (first alternative),
# installed before the "before" snapshot so they are not counted as leftovers.
export DEBIAN_FRONTEND=noninteractive
wanted="openssl systemd adduser util-linux lintian"
for deb in "${debs[@]}"; do
	wanted="$wanted $(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g' | tr '\n' ' ')"
done
missing=""
for p in $wanted; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"; done
if [ -n "$missing" ]; then
	echo "==> installing for the test:$missing"
	apt-get update -qq && apt-get install -y -qq $missing >/dev/null
fi

# Everything dpkg, the maintainer scripts or the programs could leave behind. Left out: logs,
# caches, dpkg's and apt's own databases, and the backups adduser's shadow tools keep of
# /etc/passwd and friends (the system users are kept on purge, as Debian advises).
snapshot() {
	find /etc /usr /var /opt /srv -xdev \( -path /var/log -o -path /var/cache -o -path /var/lib/apt -o -path /var/lib/dpkg \
		-o -path /var/tmp -o -path /var/backups -o -path /var/mail \) -prune -o -print 2>/dev/null \
		| grep -Ev '^/etc/(passwd|group|shadow|gshadow|subuid|subgid)-$' | sort
}
snapshot >"$work/before"

echo "==> lintian"
for deb in "${debs[@]}"; do
	if lintian --fail-on error,warning "$deb" 2>&1 | grep -v 'running with root privileges is not recommended' >"$work/lintian"; \
		[ "${PIPESTATUS[0]}" -eq 0 ]; then
		ok "lintian $(basename "$deb") (no error or warning; $(grep -c '^[IPX]:' "$work/lintian" || true) info notes)"
	else
		cat "$work/lintian" >&2
		fail "lintian $(basename "$deb")"
	fi
done

echo "==> install (dpkg -i)"
check "dpkg -i ${debs[*]##*/}" dpkg -i "${debs[@]}"

deb_of() { local d; for d in "${debs[@]}"; do [ "$(dpkg-deb -f "$d" Package)" = "$1" ] && { echo "$d"; return; }; done; fail "no package $1 in dist/"; }
declare -A binary=([pharos-coxswain]=cox [pharos-node]=pharos-node [pharos-relay]=relay [pharos-caravel]=caravel)
for pkg in "${packages[@]}"; do
	exe=${binary[$pkg]}
	installed=$(dpkg-query -W -f='${Version}' "$pkg")
	reported=$("/usr/bin/$exe" version | awk '{print $2; exit}')
	[ "$installed" = "$reported" ] || fail "$exe version says $reported, the package is $installed"
	ok "$exe version = package version $installed"
	check "$exe --help" "/usr/bin/$exe" --help
	grep -q "SUBCOMMANDS" "$work/out" || fail "$exe --help lists no subcommands"
	# The man page is read from the package: a machine whose dpkg excludes /usr/share/man
	# (Debian's slim images) installs none, and that is the machine's choice, not a fault.
	man="usr/share/man/man1/$exe.1.gz"
	deb=$(deb_of "$pkg") || exit 1
	dpkg-deb --fsys-tarfile "$deb" | tar -xOf - "./$man" >"$work/man.gz" || fail "$pkg holds no $man"
	zcat "$work/man.gz" >"$work/man" || fail "$man in $pkg is not gzip"
	grep -q "^\.Nm $exe" "$work/man" || fail "the man page $man of $pkg does not name $exe"
	if [ -e "/$man" ]; then
		ok "man page /$man"
	elif grep -rqs '^path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg /etc/dpkg/dpkg.cfg.d; then
		ok "man page $man in $pkg (not installed: this machine's dpkg excludes /usr/share/man)"
	else
		fail "dpkg -i installed no /$man"
	fi
	check "bash completion of $exe parses" bash -n "/usr/share/bash-completion/completions/$exe"
	ldd "/usr/bin/$exe" | grep -q 'libswift' && fail "$exe links the Swift runtime dynamically"
	ok "$exe carries the Swift runtime statically"
done
dpkg -S /usr/bin/node 2>/dev/null | grep -q pharos && fail "pharos-node must not own /usr/bin/node (Debian's nodejs does)"
ok "pharos-node leaves /usr/bin/node to nodejs"

echo "==> the operator's first steps, from the installed files"
check "pharos-node gen-csr" sh -c 'pharos-node gen-csr --config-dir /etc/pharos/node >'"$work/node.csr"
check "openssl verifies the node CSR" openssl req -in "$work/node.csr" -noout -verify
[ "$(stat -c '%a %U' /etc/pharos/node/node.key)" = "600 root" ] || fail "node.key is $(stat -c '%a %U' /etc/pharos/node/node.key)"
ok "node.key is 0600 root"
pharos-node gen-csr --config-dir /etc/pharos/node >"$work/node2.csr"
[ "$(openssl req -in "$work/node.csr" -noout -pubkey)" = "$(openssl req -in "$work/node2.csr" -noout -pubkey)" ] \
	|| fail "a second gen-csr changed the node key"
ok "gen-csr is idempotent (same key)"
check "relay gen-csr (as root)" sh -c 'relay gen-csr --config-dir /etc/pharos/relay >'"$work/relay.csr"
check "openssl verifies the relay CSR" openssl req -in "$work/relay.csr" -noout -verify
[ "$(stat -c '%a %U' /etc/pharos/relay/relay.key)" = "600 pharos-relay" ] \
	|| fail "relay.key is $(stat -c '%a %U' /etc/pharos/relay/relay.key); the relay runs as pharos-relay"
ok "relay.key is 0600 pharos-relay (readable by the daemon, nobody else)"
# No --config: outside a directory with a cox.yaml, cox uses the packaged /etc/pharos/coxswain/cox.yaml.
cd /
check "cox users add (as root)" cox users add Alice --email alice@example.com
owners=$(stat -c '%U' /var/lib/pharos/coxswain/* | sort -u | tr '\n' ' ')
[ "$owners" = "pharos-coxswain " ] || fail "state files owned by: $owners (cox run as root must write as pharos-coxswain)"
ok "state files belong to pharos-coxswain after cox ran as root"
check "cox users list as pharos-coxswain" runuser -u pharos-coxswain -- cox users list
grep -q alice@example.com "$work/out" || fail "cox users list does not show alice"
check "cox audit names the operator" cox audit --action user
grep -q "root (cli)" "$work/out" || fail "the audit row of user.add does not name root as actor"
check "cox audit verify" cox audit verify
check "caravel list (empty store)" caravel list
cd "$top"
[ "$(stat -c %a /var/lib/pharos/caravel)" = 700 ] || fail "/var/lib/pharos/caravel is $(stat -c %a /var/lib/pharos/caravel)"
ok "/var/lib/pharos/caravel is 0700"
[ "$(stat -c '%a %U' /var/lib/pharos/relay)" = "700 pharos-relay" ] \
	|| fail "/var/lib/pharos/relay is $(stat -c '%a %U' /var/lib/pharos/relay); the relay stores its renewed leaf there as pharos-relay"
ok "/var/lib/pharos/relay is 0700 pharos-relay (where the relay keeps its renewed leaf)"

echo "==> systemd units"
units=(/lib/systemd/system/pharos-coxswain.service /lib/systemd/system/pharos-node.service /lib/systemd/system/pharos-relay.service)
ln -s /lib/systemd/system/pharos-caravel@.service "$work/pharos-caravel@demo.service"
# Documentation=man:… is checked with man(1) where the pages are installed; a machine whose
# dpkg excludes /usr/share/man has none to find (the pages' presence is checked in the packages above).
man_check=yes; man_note=""
if [ ! -e /usr/share/man/man1/cox.1.gz ]; then man_check=no; man_note=" (man pages not installed here: Documentation= not looked up)"; fi
for unit in "${units[@]}" "$work/pharos-caravel@demo.service"; do
	if SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man="$man_check" "$unit" >"$work/verify" 2>&1 && [ ! -s "$work/verify" ]; then
		ok "systemd-analyze verify $(basename "$unit")$man_note"
	else
		cat "$work/verify" >&2
		fail "systemd-analyze verify $(basename "$unit")"
	fi
done
for unit in "${units[@]}" "$work/pharos-caravel@demo.service"; do
	score=$(systemd-analyze security --offline=yes "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) \(.*\)/\1 \2/p')
	ok "exposure of $(basename "$unit"): ${score:-unknown}"
done

echo "==> reinstall (the upgrade path keeps keys and state)"
key_before=$(sha256sum /etc/pharos/node/node.key)
check "dpkg -i again" dpkg -i "${debs[@]}"
[ "$(sha256sum /etc/pharos/node/node.key)" = "$key_before" ] || fail "reinstall replaced node.key"
check "cox still knows alice" runuser -u pharos-coxswain -- cox users list
grep -q alice@example.com "$work/out" || fail "reinstall lost the controller's state"
ok "state and keys survive a reinstall"

echo "==> remove, then purge"
check "dpkg -r" dpkg -r "${packages[@]}"
for exe in cox pharos-node relay caravel; do [ ! -e "/usr/bin/$exe" ] || fail "/usr/bin/$exe is left after remove"; done
[ -f /etc/pharos/node/node.yaml ] && [ -f /etc/pharos/node/node.key ] && [ -f /var/lib/pharos/coxswain/app.db ] \
	|| fail "remove (not purge) must keep conffiles, keys and state"
ok "remove keeps conffiles, keys and state"
check "dpkg -P" dpkg -P "${packages[@]}"
[ ! -e /etc/pharos ] && [ ! -e /var/lib/pharos ] || fail "purge left $(ls -d /etc/pharos /var/lib/pharos 2>/dev/null)"
ok "purge removes /etc/pharos and /var/lib/pharos"
snapshot >"$work/after"
if diff "$work/before" "$work/after" >"$work/diff"; then
	ok "no file left behind: $(wc -l <"$work/before") paths compared"
else
	cat "$work/diff" >&2
	fail "the file list differs after purge"
fi
echo "==> deb-test: $checks checks passed"
