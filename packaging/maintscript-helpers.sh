# Shared maintainer-script helpers. build-debs.sh writes each package's postinst, prerm and
# postrm as: the package's variables (PHAROS_UNITS, PHAROS_USER, PHAROS_CONFIG_DIR,
# PHAROS_STATE_DIR from its package.env), this file (and maintscript-user.sh in the postinst
# of a package that runs as its own user), then the script's own lines.

pharos_systemd_running() { [ -d /run/systemd/system ]; }

pharos_daemon_reload() {
	if pharos_systemd_running; then systemctl --system daemon-reload >/dev/null || true; fi
}

# Owner and mode of a shipped path (the config directory, a conffile holding secrets) as a
# dpkg statoverride, so upgrades keep them; purge removes every override under the config dir.
pharos_statoverride() { # owner group mode path
	if ! dpkg-statoverride --list "$4" >/dev/null 2>&1; then
		dpkg-statoverride --update --add "$1" "$2" "$3" "$4"
	fi
}

pharos_ensure_state_dir() { # owner
	[ -n "$PHAROS_STATE_DIR" ] || return 0
	install -d -m 0755 /var/lib/pharos
	if [ ! -d "$PHAROS_STATE_DIR" ]; then install -d -m 0700 -o "$1" -g "$1" "$PHAROS_STATE_DIR"; fi
}

# postinst configure: track the units for purge, restart running ones on upgrade. Units are
# never enabled or started here: a node, relay or controller needs its certificates first.
pharos_units_configure() {
	pharos_daemon_reload
	for unit in $PHAROS_UNITS; do
		deb-systemd-helper unmask "$unit" >/dev/null || true
		deb-systemd-helper update-state "$unit" >/dev/null || true
	done
	if [ -n "$2" ] && pharos_systemd_running; then
		for unit in $PHAROS_UNITS; do
			case "$unit" in
				*@.service) deb-systemd-invoke try-restart "${unit%@.service}@*.service" >/dev/null || true ;;
				*) deb-systemd-invoke try-restart "$unit" >/dev/null || true ;;
			esac
		done
	fi
}

pharos_units_stop() {
	pharos_systemd_running || return 0
	for unit in $PHAROS_UNITS; do
		case "$unit" in
			*@.service) deb-systemd-invoke stop "${unit%@.service}@*.service" >/dev/null || true ;;
			*) deb-systemd-invoke stop "$unit" >/dev/null || true ;;
		esac
	done
}

# postrm remove: mask so leftover enablement symlinks cannot start a removed daemon;
# postrm purge: forget the units and delete what the daemon and its operator created.
pharos_postrm() {
	case "$1" in
		remove)
			pharos_daemon_reload
			for unit in $PHAROS_UNITS; do deb-systemd-helper mask "$unit" >/dev/null || true; done
			;;
		purge)
			for unit in $PHAROS_UNITS; do
				deb-systemd-helper purge "$unit" >/dev/null || true
				deb-systemd-helper unmask "$unit" >/dev/null || true
			done
			pharos_daemon_reload
			if [ -n "$PHAROS_CONFIG_DIR" ]; then
				dpkg-statoverride --list | while read -r _owner _group _mode path; do
					case "$path" in
						"$PHAROS_CONFIG_DIR"|"$PHAROS_CONFIG_DIR"/*) dpkg-statoverride --remove "$path" >/dev/null || true ;;
					esac
				done
			fi
			# Keys, certificates and state written after installation (conffiles are dpkg's).
			[ -z "$PHAROS_CONFIG_DIR" ] || rm -rf "$PHAROS_CONFIG_DIR"
			[ -z "$PHAROS_STATE_DIR" ] || rm -rf "$PHAROS_STATE_DIR"
			rmdir --ignore-fail-on-non-empty /etc/pharos /var/lib/pharos 2>/dev/null || true
			;;
	esac
}
