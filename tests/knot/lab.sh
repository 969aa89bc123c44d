#!/bin/sh
# Builds a signed DNS hierarchy for the Knot DNS lab (tests/src/knot.rs): root `.`, TLD `lab.`
# and leaves, signed now by ldns-signzone so signatures are always fresh, plus one knotd config
# per server address. Usage: lab.sh <dir> <prefix>, where <prefix> is "127.53.B" and the
# servers are <prefix>.1 (root), .2 (lab.), .3 (leaves), .4 (lame: serves none of them).
#
# Zones (all ECDSAP256SHA256 unless said):
#   sec.lab.          NSEC; CAA/TXT, wildcard *.wild, empty non-terminal ent, CNAMEs into a
#                     signed and an unsigned zone, long CAA tags, ns-glueless host, delegates
#                     sub.sec.lab. (signed, same server as its parent)
#   n3.lab.           NSEC3 (no opt-out); wildcard, empty non-terminal
#   optout.lab.       NSEC3 opt-out; unsigned delegation unsig.optout.lab.
#   insecure.lab.     unsigned, delegated without DS
#   unsupported.lab.  its only DS names algorithm 16 (ED448), which the node does not implement
#   glueless.lab.     NS ns-glueless.sec.lab. without glue in lab.; delegates the signed
#                     kid.glueless.lab. (its DS comes from glueless servers)
#   lame.lab.         two NS: .4 is lame (REFUSED), .3 answers
#   deadins.lab.      unsigned delegation to .4 only: every CAA lookup is REFUSED (carve-out)
#   deadsig.lab.      the same with a DS in lab.: signed, so the carve-out never applies
#   expired.lab.      signatures expired (bogus)
#   tampered.lab.     www TXT changed after signing (bogus)
#   dsmismatch.lab.   lab. holds a DS of another key (bogus)
#   stripped.lab.     every RRSIG removed (bogus)
#   nodenial.lab.     every NSEC and its RRSIG removed (bogus denials)
set -eu
dir=$1
p=$2
mkdir -p "$dir/zones" "$dir/keys"
cd "$dir/keys"
INCEPTION=$(date -u -d '-1 day' +%Y%m%d%H%M%S)
EXPIRATION=$(date -u -d '+30 days' +%Y%m%d%H%M%S)

soa() { echo "@ 300 IN SOA ns.$1 hostmaster.$1 1 7200 3600 1209600 300"; }

# sign <zone> <stem> <algorithm> [ldns-signzone flags...] -> <stem>.signed and <stem>.ds
sign() {
    zone=$1 stem=$2 alg=$3
    shift 3
    ksk=$(ldns-keygen -a "$alg" -k "$zone")
    zsk=$(ldns-keygen -a "$alg" "$zone")
    ldns-signzone -i "${SIGN_INCEPTION:-$INCEPTION}" -e "${SIGN_EXPIRATION:-$EXPIRATION}" "$@" \
        -f "$stem.signed" "$stem.zone" "$zsk" "$ksk"
    cat "$ksk.ds" >"$stem.ds"
}

# leaf <zone> <stem> <server-suffix> [records...]: a zone file with SOA, NS ns.<zone> and glue.
leaf() {
    zone=$1 stem=$2 host=$3
    shift 3
    {
        echo "\$ORIGIN $zone"
        soa "$zone"
        echo "@ 300 IN NS ns.$zone"
        echo "ns 300 IN A $p.$host"
        for line in "$@"; do echo "$line"; done
    } >"$stem.zone"
}

# CAA in RFC 3597 generic form (a tag over 15 octets is legal, RFC 8659 §4.1, but not every
# parser reads it): caa_generic <flags> <tag> <value>
caa_generic() {
    hex=$(printf '%s' "$2" | od -An -tx1 | tr -d ' \n')
    vhex=$(printf '%s' "$3" | od -An -tx1 | tr -d ' \n')
    len=$((2 + ${#2} + ${#3}))
    printf 'TYPE257 \\# %d %02x%02x%s%s' "$len" "$1" "${#2}" "$hex" "$vhex"
}

# --- grandchildren and the unsigned children ---------------------------------------------
leaf sub.sec.lab. sub 3 \
    '@ 300 IN CAA 0 issue "ca.example"' \
    'www 300 IN TXT "secure-sub-random-value-0123"'
sign sub.sec.lab. sub ECDSAP256SHA256

leaf unsig.optout.lab. unsig 3 'www 300 IN TXT "unsigned-under-optout-random-value-0123"'
cp unsig.zone "$dir/zones/unsig.zone"
leaf insecure.lab. insecure 3 \
    '@ 300 IN CAA 0 issue "ca.example"' \
    'www 300 IN TXT "insecure-www-random-value-0123"'
cp insecure.zone "$dir/zones/insecure.zone"

# --- leaves -----------------------------------------------------------------------------------
leaf sec.lab. sec 3 \
    '@ 300 IN CAA 0 issue "ca.example"' \
    'caa 300 IN CAA 0 issue "ca.example"' \
    'caa 300 IN TXT "secure-caa-random-value-0123"' \
    'deny 300 IN CAA 0 issue "other.example"' \
    'www 300 IN TXT "secure-www-random-value-0123"' \
    '*.wild 300 IN TXT "wild-txt-random-value-0123"' \
    'a.ent 300 IN TXT "below-ent-random-value-0123"' \
    'cname 300 IN CNAME www.n3.lab.' \
    'tounsigned 300 IN CNAME www.insecure.lab.' \
    "longtag 300 IN $(caa_generic 0 averyveryverylongtag x)" \
    "longtag 300 IN $(caa_generic 0 issue ca.example)" \
    "critlong 300 IN $(caa_generic 128 averyveryverylongtag x)" \
    "critlong 300 IN $(caa_generic 0 issue ca.example)" \
    "ns-glueless 300 IN A $p.3" \
    'sub 300 IN NS ns.sub.sec.lab.' \
    "ns.sub 300 IN A $p.3"
cat sub.ds >>sec.zone
sign sec.lab. sec ECDSAP256SHA256

leaf n3.lab. n3 3 \
    '@ 300 IN CAA 0 issue "ca.example"' \
    'caa 300 IN CAA 0 issue "ca.example"' \
    'www 300 IN TXT "secure-n3-random-value-0123"' \
    '*.wild 300 IN TXT "wild-n3-random-value-0123"' \
    'a.ent 300 IN TXT "below-ent-n3-random-value-0123"'
sign n3.lab. n3 ECDSAP256SHA256 -n -t 0

leaf optout.lab. optout 3 \
    '@ 300 IN CAA 0 issue "ca.example"' \
    'www 300 IN TXT "secure-optout-random-value-0123"' \
    '*.wild 300 IN TXT "wild-optout-random-value-0123"' \
    'unsig 300 IN NS ns.unsig.optout.lab.' \
    "ns.unsig 300 IN A $p.3"
sign optout.lab. optout ECDSAP256SHA256 -n -p -t 0

leaf unsupported.lab. unsupported 3 'www 300 IN TXT "ed448-random-value-0123"'
sign unsupported.lab. unsupported ED448

{
    echo "\$ORIGIN kid.glueless.lab."
    soa kid.glueless.lab.
    echo "@ 300 IN NS ns-glueless.sec.lab."
    echo 'www 300 IN TXT "secure-kid-random-value-0123"'
} >kid.zone
sign kid.glueless.lab. kid ECDSAP256SHA256
{
    echo "\$ORIGIN glueless.lab."
    soa glueless.lab.
    echo "@ 300 IN NS ns-glueless.sec.lab."
    echo '@ 300 IN CAA 0 issue "ca.example"'
    echo 'www 300 IN TXT "secure-glueless-random-value-0123"'
    echo 'kid 300 IN NS ns-glueless.sec.lab.'
    cat kid.ds
} >glueless.zone
sign glueless.lab. glueless ECDSAP256SHA256

{
    echo "\$ORIGIN lame.lab."
    soa lame.lab.
    echo "@ 300 IN NS ns1.lame.lab."
    echo "@ 300 IN NS ns2.lame.lab."
    echo "ns1 300 IN A $p.4"
    echo "ns2 300 IN A $p.3"
    echo '@ 300 IN CAA 0 issue "ca.example"'
    echo 'www 300 IN TXT "secure-lame-random-value-0123"'
} >lame.zone
sign lame.lab. lame ECDSAP256SHA256

bogus_records='@ 300 IN CAA 0 issue "ca.example"
www 300 IN TXT "original-random-value-0123"
*.wild 300 IN TXT "wild-bogus-random-value-0123"'
for stem in expired tampered dsmismatch stripped nodenial; do
    leaf "$stem.lab." "$stem" 3
    echo "$bogus_records" >>"$stem.zone"
done
SIGN_INCEPTION=20200101000000 SIGN_EXPIRATION=20200201000000 sign expired.lab. expired ECDSAP256SHA256
sign tampered.lab. tampered ECDSAP256SHA256
sed -i "s/\"original-/\"tampered-/" tampered.signed
sign dsmismatch.lab. dsmismatch ECDSAP256SHA256
other=$(ldns-keygen -a ECDSAP256SHA256 -k dsmismatch.lab.)
cat "$other.ds" >dsmismatch.ds
sign stripped.lab. stripped ECDSAP256SHA256
grep -v 'RRSIG' stripped.signed >stripped.tmp && mv stripped.tmp stripped.signed
sign nodenial.lab. nodenial ECDSAP256SHA256
grep -v -E 'IN[[:space:]]+(NSEC|RRSIG[[:space:]]+NSEC)[[:space:]]' nodenial.signed >nodenial.tmp
mv nodenial.tmp nodenial.signed

# A DS for deadsig.lab. (its key signs nothing: the zone is never served).
deadsig_ksk=$(ldns-keygen -a ECDSAP256SHA256 -k deadsig.lab.)
cat "$deadsig_ksk.ds" >deadsig.ds

# --- the TLD ------------------------------------------------------------------------------------
{
    echo "\$ORIGIN lab."
    soa lab.
    echo "@ 300 IN NS ns.lab."
    echo "ns 300 IN A $p.2"
    echo "a.root-servers 300 IN A $p.1"
    for stem in sec n3 optout insecure unsupported expired tampered dsmismatch stripped nodenial; do
        echo "$stem 300 IN NS ns.$stem.lab."
        echo "ns.$stem 300 IN A $p.3"
    done
    echo "glueless 300 IN NS ns-glueless.sec.lab."
    echo "lame 300 IN NS ns1.lame.lab."
    echo "lame 300 IN NS ns2.lame.lab."
    echo "ns1.lame 300 IN A $p.4"
    echo "ns2.lame 300 IN A $p.3"
    for stem in sec n3 optout unsupported expired tampered dsmismatch stripped nodenial glueless lame; do
        cat "$stem.ds"
    done
    # BR 3.2.2.8 carve-out: two zones whose only server is the lame .4 (REFUSED to every
    # question), one delegated without DS (insecure), one with a DS (signed: never insecure).
    echo "deadins 300 IN NS ns.deadins.lab."
    echo "ns.deadins 300 IN A $p.4"
    echo "deadsig 300 IN NS ns.deadsig.lab."
    echo "ns.deadsig 300 IN A $p.4"
    cat deadsig.ds
} >lab.zone
sign lab. lab ECDSAP256SHA256

# --- the root -----------------------------------------------------------------------------------
{
    echo "\$ORIGIN ."
    echo "@ 300 IN SOA a.root-servers.lab. hostmaster.lab. 1 7200 3600 1209600 300"
    echo "@ 300 IN NS a.root-servers.lab."
    echo "lab. 300 IN NS ns.lab."
    echo "ns.lab. 300 IN A $p.2"
    echo "a.root-servers.lab. 300 IN A $p.1"
    cat lab.ds
} >root.zone
sign . root ECDSAP256SHA256

cp root.ds "$dir/root.ds"
printf '. 3600000 IN NS a.root-servers.lab.\na.root-servers.lab. 3600000 IN A %s.1\n' "$p" \
    >"$dir/root.hints"
for stem in root lab sec sub n3 optout unsupported glueless kid lame expired tampered dsmismatch \
    stripped nodenial; do
    cp "$stem.signed" "$dir/zones/$stem.zone"
done

# --- knotd configs: one instance per address ---------------------------------------------------
knot_conf() { # <n> <zone:stem>...
    n=$1
    shift
    mkdir -p "$dir/k$n"
    {
        echo "server:"
        echo "    rundir: \"$dir/k$n\""
        echo "    listen: $p.$n@53"
        echo "    udp-workers: 1"
        echo "    tcp-workers: 1"
        echo "    background-workers: 1"
        echo "database:"
        echo "    storage: \"$dir/k$n\""
        echo "control:"
        echo "    listen: \"$dir/k$n/knot.sock\""
        echo "log:"
        echo "  - target: stderr"
        echo "    any: warning"
        echo "template:"
        echo "  - id: default"
        echo "    storage: \"$dir/zones\""
        echo "    zonefile-sync: -1"
        echo "    journal-content: none"
        echo "zone:"
        for pair in "$@"; do
            echo "  - domain: \"${pair%%:*}\""
            echo "    file: \"${pair#*:}.zone\""
        done
    } >"$dir/k$n/knot.conf"
}
knot_conf 1 .:root
knot_conf 2 lab.:lab
knot_conf 3 sec.lab.:sec sub.sec.lab.:sub n3.lab.:n3 optout.lab.:optout unsig.optout.lab.:unsig \
    insecure.lab.:insecure unsupported.lab.:unsupported glueless.lab.:glueless \
    kid.glueless.lab.:kid lame.lab.:lame \
    expired.lab.:expired tampered.lab.:tampered dsmismatch.lab.:dsmismatch \
    stripped.lab.:stripped nodenial.lab.:nodenial
knot_conf 4
