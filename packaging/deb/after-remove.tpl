#!/bin/sh
# postrm of the Portcullis .deb. The package's files are already gone here, so
# the firewall clean-up cannot use the helper: it removes Portcullis' own
# chains and table the way docs/firewall.md describes `remove()`: jumps to
# PORTCULLIS* chains, then the chains, for iptables-nft and iptables-legacy (only
# where a legacy filter table exists: listing one would create it), IPv4 and
# IPv6, and the nft table inet portcullis. Nothing else is touched.
set -e

# BEGIN portcullis_cleanup_firewall
portcullis_cleanup_iptables() {
    cmd=$1
    names=$2
    command -v "$cmd" >/dev/null 2>&1 || return 0
    if [ -n "$names" ]; then
        grep -qx filter "$names" 2>/dev/null || return 0
    fi
    rules=$("$cmd" -w -t filter -S 2>/dev/null) || return 0
    set -f
    printf '%s\n' "$rules" | grep -E -- '-j PORTCULLIS[A-Za-z0-9_-]*( |$)' | grep -v '^-A PORTCULLIS' |
        while read -r line; do
            # shellcheck disable=SC2086 # split the rule into words on purpose
            set -- $line
            shift
            "$cmd" -w -t filter -D "$@" || true
        done
    chains=$(printf '%s\n' "$rules" | sed -n 's/^-N \(PORTCULLIS[A-Za-z0-9_-]*\)$/\1/p')
    for chain in $chains; do "$cmd" -w -t filter -F "$chain" || true; done
    for chain in $chains; do "$cmd" -w -t filter -X "$chain" || true; done
    set +f
}
portcullis_cleanup_firewall() {
    portcullis_cleanup_iptables iptables-nft ''
    portcullis_cleanup_iptables ip6tables-nft ''
    portcullis_cleanup_iptables iptables-legacy /proc/net/ip_tables_names
    portcullis_cleanup_iptables ip6tables-legacy /proc/net/ip6_tables_names
    if command -v nft >/dev/null 2>&1 && nft list table inet portcullis >/dev/null 2>&1; then
        nft delete table inet portcullis || true
    fi
}
# END portcullis_cleanup_firewall

case "$1" in
remove | purge)
    # Also on remove: rules left by a crashed helper would, fail-closed, keep
    # blocking new connections after the program that answers them is gone.
    portcullis_cleanup_firewall
    # The command on PATH (its alternative is removed by prerm).
    if [ -L '/usr/bin/${executable}' ] && [ ! -e '/usr/bin/${executable}' ]; then
        rm -f '/usr/bin/${executable}'
    fi
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database -q /usr/share/applications || true
    fi
    ;;
esac

# The service (what debhelper's dh_installsystemd writes).
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = purge ]; then
    # Rules, history and settings.
    rm -rf /var/lib/portcullis
    # The group: purge leaves nothing, and nothing carries its gid any more
    # (/run/portcullis went with the service, /var/lib/portcullis just now).
    # Members lose only this membership.
    if getent group portcullis >/dev/null 2>&1; then
        groupdel portcullis || true
    fi
    if command -v deb-systemd-helper >/dev/null 2>&1; then
        deb-systemd-helper purge 'portcullis-helper.service' >/dev/null || true
        deb-systemd-helper unmask 'portcullis-helper.service' >/dev/null || true
    fi
fi
exit 0
