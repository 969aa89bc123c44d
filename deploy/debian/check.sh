#!/usr/bin/env bash
# Checks a built .deb: control fields, conffiles, contents, maintainer scripts, and that the
# extracted binary runs, its config loads and its unit keeps its hardening.
set -euo pipefail
deb="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fail() { echo "deb-check: $*" >&2; exit 1; }

info="$(dpkg-deb --info "$deb")"
for field in "Package: mpic-node" "Section: net" "Depends: adduser" ; do
    grep -q "$field" <<<"$info" || fail "control lacks '$field'"
done
for script in postinst prerm postrm conffiles; do
    grep -qE "^\s+[0-9]+ bytes,.* $script" <<<"$info" || fail "no $script in the control archive"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx "/etc/mpic-node/mpic-node.toml" \
    || fail "/etc/mpic-node/mpic-node.toml is not a conffile (an upgrade could overwrite an edited config)"

contents="$(dpkg-deb --contents "$deb")"
for path in ./usr/bin/mpic-node ./lib/systemd/system/mpic-node.service \
    ./usr/lib/sysusers.d/mpic-node.conf ./etc/mpic-node/mpic-node.toml \
    ./usr/share/mpic-node/prometheus/alerts.yml ./usr/share/mpic-node/grafana/mpic-node.json; do
    grep -q " $path\$" <<<"$contents" || fail "$path missing from the package"
done

dpkg-deb -x "$deb" "$work/root"
"$work/root/usr/bin/mpic-node" --version >/dev/null || fail "the packaged binary does not run"
# The packaged example config must load and validate (its key files do not exist here, so
# only the doctor's config row is asked for; --offline sends no traffic).
doctor="$("$work/root/usr/bin/mpic-node" doctor --offline --json --config "$work/root/etc/mpic-node/mpic-node.toml" 2>/dev/null || true)"
python3 -c 'import json,sys; rows=json.loads(sys.argv[1])["rows"]; sys.exit(0 if any(r["check"]=="config" and r["status"]=="pass" for r in rows) else 1)' "$doctor" \
    || fail "the packaged config does not load: $doctor"
if command -v systemd-analyze >/dev/null 2>&1; then
    systemd-analyze security --offline=yes --threshold=20 \
        "$work/root/lib/systemd/system/mpic-node.service" >/dev/null \
        || fail "the packaged unit's exposure is above 2.0"
fi
echo "deb-check: $deb ok ($(du -h "$deb" | cut -f1))"
