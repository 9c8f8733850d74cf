#!/bin/sh
# postinst of the Portcullis .deb (electron-builder `deb.afterInstall`; the
# ${executable} and ${sanitizedProductName} macros are filled in by
# electron-builder, or by scripts/stage-linux.sh for the test package).
# Starts nothing unless systemd is the running init: on a machine (or a
# container, or a build chroot) without it, installing changes no firewall rule.
set -e

# --- electron-builder's defaults: the command on PATH, the Chromium sandbox.
if type update-alternatives >/dev/null 2>&1; then
    if [ -L '/usr/bin/${executable}' ] && [ -e '/usr/bin/${executable}' ] && [ "$(readlink '/usr/bin/${executable}')" != '/etc/alternatives/${executable}' ]; then
        rm -f '/usr/bin/${executable}'
    fi
    update-alternatives --install '/usr/bin/${executable}' '${executable}' '/opt/${sanitizedProductName}/${executable}' 100 || ln -sf '/opt/${sanitizedProductName}/${executable}' '/usr/bin/${executable}'
else
    ln -sf '/opt/${sanitizedProductName}/${executable}' '/usr/bin/${executable}'
fi
if [ -f '/opt/${sanitizedProductName}/chrome-sandbox' ]; then
    # SUID sandbox only where unprivileged user namespaces do not work.
    if [ -L /proc/self/ns/user ] && unshare --user true 2>/dev/null; then
        chmod 0755 '/opt/${sanitizedProductName}/chrome-sandbox' || true
    else
        chmod 4755 '/opt/${sanitizedProductName}/chrome-sandbox' || true
    fi
fi
if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q /usr/share/applications || true
fi

# --- Portcullis: the group whose members use the system helper.
if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers /usr/lib/sysusers.d/portcullis.conf
elif ! getent group portcullis >/dev/null; then
    addgroup --system portcullis
fi

# --- The helper service (what debhelper's dh_installsystemd writes).
case "$1" in
configure | abort-upgrade | abort-deconfigure | abort-remove)
    # Symlinks only; works without a running systemd. Removes masks left by remove.
    deb-systemd-helper unmask 'portcullis-helper.service' >/dev/null || true
    if deb-systemd-helper --quiet was-enabled 'portcullis-helper.service'; then
        deb-systemd-helper enable 'portcullis-helper.service' >/dev/null || true
    else
        deb-systemd-helper update-state 'portcullis-helper.service' >/dev/null || true
    fi
    # Started only when systemd runs the machine (sd_booted: /run/systemd/system).
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
        deb-systemd-invoke restart 'portcullis-helper.service' >/dev/null || true
    fi
    ;;
esac
exit 0
