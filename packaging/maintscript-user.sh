# A system user and group for an unprivileged daemon; kept on purge (files it owned may
# still exist elsewhere, and a reinstall should find the same IDs). Only in the postinst of
# packages that set PHAROS_USER (they depend on adduser).
pharos_ensure_user() {
	if ! getent passwd "$PHAROS_USER" >/dev/null; then
		adduser --system --group --quiet --no-create-home --home /nonexistent \
			--gecos "PharosVPN $PHAROS_USER" "$PHAROS_USER"
	fi
}

