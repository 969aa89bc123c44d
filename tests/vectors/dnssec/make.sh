#!/bin/sh
# Regenerates the DNSSEC test vectors: zones signed by ldns-signzone (a real signer), written
# one record per line by ldns-read-zone, plus the trust anchor for `test.`.
#   apt-get install ldnsutils && sh tests/vectors/dnssec/make.sh
# Signatures are valid from 2026-01-01 to 2036-01-01, except expired.test (2025-01-01 to
# 2025-02-01). The fixture loads these files; the node validates with `anchor.test.ds`.
set -eu
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
INCEPTION=20260101000000
EXPIRATION=20360101000000
SOA='@ 3600 IN SOA ns.test. hostmaster.test. 1 7200 3600 1209600 300'

keys() { # zone algorithm -> prints "ksk zsk" basenames (in $work)
    (cd "$work" &&
        ksk=$(ldns-keygen -a "$2" -k "$1") &&
        zsk=$(ldns-keygen -a "$2" "$1") &&
        echo "$ksk $zsk")
}

sign() { # zone file-stem algorithm [extra signzone flags...] -> $work/<stem>.signed, DS in $work/<stem>.ds
    zone=$1 stem=$2 alg=$3
    shift 3
    set -- $(keys "$zone" "$alg") "$@"
    ksk=$1 zsk=$2
    shift 2
    (cd "$work" && ldns-signzone -i "${SIGN_INCEPTION:-$INCEPTION}" -e "${SIGN_EXPIRATION:-$EXPIRATION}" "$@" \
        -f "$stem.signed" "$stem.zone" "$zsk" "$ksk")
    cat "$work/$ksk.ds" >"$work/$stem.ds"
}

# Children first: the parent needs their DS.
cat >"$work/child.zone" <<ZONE
\$ORIGIN child.test.
$SOA
@ IN NS ns.test.
www IN TXT "secure-child"
www IN CAA 0 issue "ca.example"
host IN A 192.0.2.10
ZONE
sign child.test. child ECDSAP256SHA256

cat >"$work/ed.zone" <<ZONE
\$ORIGIN ed.test.
$SOA
@ IN NS ns.test.
www IN TXT "ed25519"
ZONE
sign ed.test. ed ED25519

cat >"$work/rsa.zone" <<ZONE
\$ORIGIN rsa.test.
$SOA
@ IN NS ns.test.
www IN TXT "rsasha256"
ZONE
sign rsa.test. rsa RSASHA256

cat >"$work/rsa512.zone" <<ZONE
\$ORIGIN rsa512.test.
$SOA
@ IN NS ns.test.
www IN TXT "rsasha512"
ZONE
sign rsa512.test. rsa512 RSASHA512

cat >"$work/p384.zone" <<ZONE
\$ORIGIN p384.test.
$SOA
@ IN NS ns.test.
www IN TXT "ecdsap384"
ZONE
sign p384.test. p384 ECDSAP384SHA384

cat >"$work/nsec3.zone" <<ZONE
\$ORIGIN nsec3.test.
$SOA
@ IN NS ns.test.
www IN TXT "nsec3"
www IN A 192.0.2.20
ZONE
sign nsec3.test. nsec3 ECDSAP256SHA256 -n -t 0

cat >"$work/optout.zone" <<ZONE
\$ORIGIN optout.test.
$SOA
@ IN NS ns.test.
www IN TXT "optout"
insecure IN NS ns.test.
ZONE
sign optout.test. optout ECDSAP256SHA256 -n -p -t 0

cat >"$work/expired.zone" <<ZONE
\$ORIGIN expired.test.
$SOA
@ IN NS ns.test.
www IN TXT "expired"
ZONE
SIGN_INCEPTION=20250101000000 SIGN_EXPIRATION=20250201000000 sign expired.test. expired ECDSAP256SHA256

cat >"$work/wrongds.zone" <<ZONE
\$ORIGIN wrongds.test.
$SOA
@ IN NS ns.test.
www IN TXT "wrong-ds"
ZONE
sign wrongds.test. wrongds ECDSAP256SHA256

# The parent, with DS for the signed children (wrongds gets the DS of another key) and
# unsigned delegations for unsigned.test and insecure.optout.test's parent chain.
{
    echo "\$ORIGIN test."
    echo "$SOA"
    echo "@ IN NS ns.test."
    echo "ns IN A 127.0.0.1"
    echo "www IN TXT \"secure-parent\""
    echo "caa IN CAA 0 issue \"ca.example\""
    echo "nocaa IN A 192.0.2.1"
    echo "alias IN CNAME www.unsigned.test."
    echo "into IN CNAME www.child.test."
    for child in child ed rsa rsa512 p384 nsec3 optout expired wrongds unsigned unsupported; do
        echo "$child IN NS ns.test."
    done
    # unsupported.test: a DS with algorithm 6 (DSA-NSEC3-SHA1), which the node does not
    # implement, so the zone is insecure (RFC 4035 §5.2), not bogus.
    echo "unsupported IN DS 12345 6 2 0000000000000000000000000000000000000000000000000000000000000000"
    for child in child ed rsa rsa512 p384 nsec3 optout expired; do
        sed 's/;.*//' "$work/$child.ds"
    done
    # wrongds: a DS for the child's name, made from ed.test.'s key digest (so it matches no key).
    awk '{ $1 = "wrongds.test."; print }' "$work/ed.ds" | sed 's/;.*//'
} >"$work/test.zone"
sign test. test ECDSAP256SHA256

cat >"$work/unsigned.zone" <<ZONE
\$ORIGIN unsigned.test.
$SOA
@ IN NS ns.test.
www IN TXT "unsigned"
www IN CAA 0 issue "ca.example"
ZONE

cat >"$work/insecure.optout.zone" <<ZONE
\$ORIGIN insecure.optout.test.
$SOA
@ IN NS ns.test.
www IN TXT "insecure-under-optout"
ZONE

sed 's/unsigned/unsupported/g' "$work/unsigned.zone" >unsupported.zone
for stem in test child ed rsa rsa512 p384 nsec3 optout expired wrongds; do
    ldns-read-zone "$work/$stem.signed" >"$stem.signed" 2>/dev/null
done
cp "$work/unsigned.zone" unsigned.zone
cp "$work/insecure.optout.zone" insecure.optout.zone
sed 's/;.*//' "$work/test.ds" >anchor.test.ds
echo "vectors written to $(pwd)"
