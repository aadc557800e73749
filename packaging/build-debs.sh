#!/usr/bin/env bash
# make deb: one Debian package per component in dist/, from the sources CI tests.
#
# Release builds with the Swift standard library linked statically, all in this folder's
# build tree (BoringSSL, swift-nio and gRPC compile once for the four binaries). Each
# package's version is what its binary prints for `version`, so the version lives in one
# place: the component's `*Version.swift`.
#
#   packaging/build-debs.sh [component ...]     (default: coxswain node relay caravel)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
dist="$top/dist"
[ $# -gt 0 ] || set -- coxswain node relay caravel
components=("$@")

need() { command -v "$1" >/dev/null || { echo "build-debs: $1 is missing (apt-get install $2)" >&2; exit 1; }; }
need dpkg-deb dpkg; need dpkg-shlibdeps dpkg-dev; need gzip gzip; need strip binutils

# The build tree: make deb passes the one every package shares (.build-shared); alone, our own.
scratch="${SCRATCH:-$here/.build}"
build() { swift build --scratch-path "$scratch" -c release "$@"; }
start=$(date +%s)
cd "$here"
for c in "${components[@]}"; do
	# shellcheck disable=SC1090
	product=$(. "$here/pharos-$c/package.env"; echo "$PHAROS_PRODUCT")
	echo "==> release build: $product"
	# Full RELRO (lintian: hardening-no-bindnow). The static Foundation's own link warning about
	# mktemp (inside FoundationEssentials, not our code) is filtered.
	build --static-swift-stdlib -Xlinker -z -Xlinker now --product "$product" 2>&1 \
		| grep -E 'error|warning:|Build of' | grep -v "use of \`mktemp' is dangerous" | tail -5
done
# Same flags as the products, so the shared modules (ArgumentParser) are not rebuilt each time.
build --static-swift-stdlib -Xlinker -z -Xlinker now --product generate-manual 2>&1 | tail -1
bin=$(build --show-bin-path)
echo "==> release builds took $(( $(date +%s) - start )) s"

# Reproducible timestamps: the last commit's date (SOURCE_DATE_EPOCH, as Debian's tools use it).
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$top" log -1 --format=%ct 2>/dev/null || date +%s)}"
arch=$(dpkg --print-architecture)
mkdir -p "$dist"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The copyright file: ours, then every library linked into the binaries.
copyright() {
	cat "$here/copyright"
}

build_one() {
	local c=$1 pkg="pharos-$1"
	local PHAROS_PRODUCT PHAROS_BINARY PHAROS_UNITS PHAROS_USER PHAROS_CONFIG_DIR PHAROS_STATE_DIR
	local PHAROS_DEPENDS PHAROS_RECOMMENDS="" PHAROS_SUMMARY PHAROS_DESCRIPTION
	# shellcheck disable=SC1090
	. "$here/$pkg/package.env"
	local root="$work/$pkg"
	rm -rf "$root"
	mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/usr/share/doc/$pkg" \
		"$root/usr/share/man/man1" "$root/usr/share/bash-completion/completions" \
		"$root/usr/share/zsh/vendor-completions" "$root/usr/share/fish/vendor_completions.d"

	# The binary, stripped (Debian policy), under its installed name.
	install -m 0755 "$bin/$PHAROS_PRODUCT" "$root/usr/bin/$PHAROS_BINARY"
	strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/$PHAROS_BINARY"
	local exe="$root/usr/bin/$PHAROS_BINARY"
	local version
	version=$("$exe" version | awk '{print $2; exit}')
	[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || { echo "build-debs: $PHAROS_BINARY version printed \"$version\"" >&2; exit 1; }

	# Man page and shell completions, generated from the binary's own argument parser.
	"$bin/generate-manual" "$exe" --output-directory "$root/usr/share/man/man1" \
		--date "$(date -u -d "@$SOURCE_DATE_EPOCH" +%F)" >/dev/null
	gzip -9n "$root/usr/share/man/man1/"*.1
	# bash-completion sources the file: no hashbang (lintian: bash-completion-with-hashbang).
	"$exe" --generate-completion-script bash | sed '1{/^#!/d}' >"$root/usr/share/bash-completion/completions/$PHAROS_BINARY"
	"$exe" --generate-completion-script zsh >"$root/usr/share/zsh/vendor-completions/_$PHAROS_BINARY"
	"$exe" --generate-completion-script fish >"$root/usr/share/fish/vendor_completions.d/$PHAROS_BINARY.fish"
	chmod 0644 "$root"/usr/share/*/completions/* "$root"/usr/share/zsh/vendor-completions/* \
		"$root"/usr/share/fish/vendor_completions.d/*

	# Units, conffiles (everything under root/etc), docs.
	for unit in $PHAROS_UNITS; do install -m 0644 "$here/$pkg/$unit" "$root/lib/systemd/system/$unit"; done
	if [ -d "$here/$pkg/root" ]; then cp -a "$here/$pkg/root/." "$root/"; fi
	if [ "$c" = coxswain ]; then
		# The controller writes its own default config: the personal preset, state under /var/lib.
		mkdir -p "$root/etc/pharos/coxswain"
		"$exe" init --personal --state-dir /var/lib/pharos/coxswain --print >"$root/etc/pharos/coxswain/cox.yaml"
	fi
	if [ -d "$root/etc" ]; then
		find "$root/etc" -type f -exec chmod 0644 {} +
		(cd "$root" && find etc -type f | sort | sed 's|^|/|') >"$root/DEBIAN/conffiles"
	fi
	copyright >"$root/usr/share/doc/$pkg/copyright"
	{
		printf '%s (%s) unstable; urgency=medium\n\n' "$pkg" "$version"
		printf '  * Built from %s.\n\n' "$(git -C "$top" describe --always --dirty 2>/dev/null || echo 'an unversioned tree')"
		printf ' -- PharosVPN developers <dev@pharosvpn.org>  %s\n' "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
	} | gzip -9n >"$root/usr/share/doc/$pkg/changelog.gz"
	# Lintian overrides, each with the comment that justifies it: the ones every package
	# shares, then the package's own.
	mkdir -p "$root/usr/share/lintian/overrides"
	{ cat "$here/lintian-overrides"; [ ! -f "$here/$pkg/lintian-overrides" ] || cat "$here/$pkg/lintian-overrides"; } \
		>"$root/usr/share/lintian/overrides/$pkg"
	chmod 0644 "$root/usr/share/lintian/overrides/$pkg"

	# Maintainer scripts: the package's variables, the shared helpers, then its own lines.
	local header
	header=$(printf '#!/bin/sh\nset -e\nPHAROS_UNITS="%s"\nPHAROS_USER="%s"\nPHAROS_CONFIG_DIR="%s"\nPHAROS_STATE_DIR="%s"\n' \
		"$PHAROS_UNITS" "$PHAROS_USER" "$PHAROS_CONFIG_DIR" "$PHAROS_STATE_DIR")
	{ echo "$header"; cat "$here/maintscript-helpers.sh"; [ -z "$PHAROS_USER" ] || cat "$here/maintscript-user.sh"
	  cat "$here/$pkg/postinst.in"; } >"$root/DEBIAN/postinst"
	{ echo "$header"; cat "$here/maintscript-helpers.sh"
	  printf 'case "$1" in\n\tremove|deconfigure) pharos_units_stop ;;\nesac\n'; } >"$root/DEBIAN/prerm"
	{ echo "$header"; cat "$here/maintscript-helpers.sh"; printf 'pharos_postrm "$1"\n'; } >"$root/DEBIAN/postrm"
	chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
	for script in postinst prerm postrm; do sh -n "$root/DEBIAN/$script"; done

	# Runtime dependencies from the shared libraries the binary really links.
	local shlibs
	shlibs=$(cd "$work" && mkdir -p debian && printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$pkg" "$pkg" >debian/control \
		&& dpkg-shlibdeps -O "$exe" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
	[ -n "$shlibs" ] || { echo "build-debs: dpkg-shlibdeps found no libraries for $PHAROS_BINARY" >&2; exit 1; }
	local depends="$shlibs"
	[ -z "$PHAROS_DEPENDS" ] || depends="$depends, $PHAROS_DEPENDS"

	{
		echo "Package: $pkg"
		echo "Version: $version"
		echo "Architecture: $arch"
		echo "Maintainer: PharosVPN developers <dev@pharosvpn.org>"
		echo "Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)"
		echo "Depends: $depends"
		[ -z "$PHAROS_RECOMMENDS" ] || echo "Recommends: $PHAROS_RECOMMENDS"
		echo "Section: net"
		echo "Priority: optional"
		echo "Homepage: https://pharosvpn.org"
		echo "Description: $PHAROS_SUMMARY"
		echo "$PHAROS_DESCRIPTION" | sed 's/^/ /'
	} >"$root/DEBIAN/control"

	(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
	chmod 0644 "$root/DEBIAN/md5sums"

	local out="$dist/${pkg}_${version}_${arch}.deb"
	rm -f "$dist/${pkg}_"*.deb
	dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
	echo "==> $(basename "$out"): $(du -h "$out" | cut -f1) (binary $(du -h "$exe" | cut -f1), Depends: $depends)"
}

for c in "${components[@]}"; do build_one "$c"; done
echo "==> make deb took $(( $(date +%s) - start )) s; packages in $dist"
