#!/usr/bin/env bash
# Throwaway OpenLDAP server for the LDAP sign-in tests.
#
#   slapd.sh DIR LDAP_PORT LDAPS_PORT
#
# Creates (once) in DIR: a self-signed CA + server cert (SAN 127.0.0.1 and
# localhost), slapd.conf and an mdb database seeded with dc=company,dc=com;
# then execs slapd in the foreground on ldap://127.0.0.1:LDAP_PORT/ (StartTLS
# available) and ldaps://127.0.0.1:LDAPS_PORT/. Kill the process to stop it;
# running again on the same DIR reuses the data and certs (ports may change).
# Ready when a TCP connect to LDAP_PORT succeeds (slapd listen()s only after the
# database is open); an LDAP bind that succeeds is the stricter check.
#
# Fixture (passwords are test-only):
#   admin  cn=admin,dc=company,dc=com            admin-secret   (rootdn)
#   alice  uid=alice,ou=users,dc=company,dc=com  Alice-Pass-1   alice@company.com
#   bob    uid=bob,ou=users,dc=company,dc=com    Bob-Pass-2     bob@company.com
#   groups (groupOfNames, ou=groups): wasm-admins {alice}, developers {alice, bob}
# CA for clients: DIR/ca.crt.  Needs Debian packages slapd, ldap-utils, openssl.
set -euo pipefail
PATH=$PATH:/usr/sbin:/sbin # slapd, slapadd and slappasswd live in /usr/sbin
[ $# -eq 3 ] || { echo "usage: $0 DIR LDAP_PORT LDAPS_PORT" >&2; exit 2; }
dir=$(mkdir -p "$1" && cd "$1" && pwd)
port=$2 tls_port=$3
base=dc=company,dc=com
log="$dir/setup.log"
fail() { echo "slapd.sh: $1 failed, see $log" >&2; tail -n 20 "$log" >&2; exit 1; }

if [ ! -f "$dir/server.crt" ]; then
  # OpenSSL 3: CA with CA:TRUE, server cert signed by it with SANs + serverAuth
  # (rustls/webpki insist on SANs and reject a CA cert used as a server cert).
  ossl() { openssl "$@" >>"$log" 2>&1 || fail "openssl $1"; }
  ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=wasm-as-os test CA" -keyout "$dir/ca.key" -out "$dir/ca.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
  ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=localhost" -keyout "$dir/server.key" -out "$dir/server.csr"
  printf '%s\n' basicConstraints=critical,CA:FALSE keyUsage=critical,digitalSignature \
    extendedKeyUsage=serverAuth subjectAltName=IP:127.0.0.1,DNS:localhost >"$dir/server.ext"
  ossl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 3650 -extfile "$dir/server.ext" -out "$dir/server.crt"
fi

# Config is rewritten on every start (it holds absolute paths, not ports).
mkdir -p "$dir/data"
cat >"$dir/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $dir/slapd.pid
argsfile $dir/slapd.args
loglevel 0
TLSCACertificateFile $dir/ca.crt
TLSCertificateFile $dir/server.crt
TLSCertificateKeyFile $dir/server.key

database mdb
maxsize 16777216
suffix "$base"
rootdn "cn=admin,$base"
rootpw admin-secret
directory $dir/data
index objectClass,uid,mail,member eq
# rootdn bypasses ACLs; users may bind with their own password and read.
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
EOF

if [ ! -f "$dir/data/data.mdb" ]; then
  alice=$(slappasswd -h '{SSHA}' -s Alice-Pass-1)
  bob=$(slappasswd -h '{SSHA}' -s Bob-Pass-2)
  slapadd -f "$dir/slapd.conf" >>"$log" 2>&1 <<EOF || fail slapadd
dn: $base
objectClass: dcObject
objectClass: organization
dc: company
o: Company

dn: ou=users,$base
objectClass: organizationalUnit
ou: users

dn: ou=groups,$base
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=users,$base
objectClass: inetOrgPerson
uid: alice
cn: Alice Example
sn: Example
givenName: Alice
mail: alice@company.com
userPassword: $alice

dn: uid=bob,ou=users,$base
objectClass: inetOrgPerson
uid: bob
cn: Bob Builder
sn: Builder
givenName: Bob
mail: bob@company.com
userPassword: $bob

dn: cn=wasm-admins,ou=groups,$base
objectClass: groupOfNames
cn: wasm-admins
member: uid=alice,ou=users,$base

dn: cn=developers,ou=groups,$base
objectClass: groupOfNames
cn: developers
member: uid=alice,ou=users,$base
member: uid=bob,ou=users,$base
EOF
fi

# Any -d keeps slapd in the foreground. "none" prints only a start banner and
# errors (e.g. "bind(6) failed errno=98 (Address already in use)") on stderr;
# SLAPD_DEBUG=stats (or -1) shows every operation when debugging a test.
exec slapd -d "${SLAPD_DEBUG:-none}" -f "$dir/slapd.conf" \
  -h "ldap://127.0.0.1:$port/ ldaps://127.0.0.1:$tls_port/"
