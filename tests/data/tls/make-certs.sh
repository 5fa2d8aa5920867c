#!/bin/sh
# Regenerates the TLS test certificates in this folder (run once; the PEMs
# are committed so tests are reproducible). All keys ECDSA P-256, valid for
# 100 years so the tests do not expire.
#   ca.pem / ca.key           test CA
#   server.pem / server.key   leaf for test.vless-tun.internal, localhost,
#                             127.0.0.1, signed by ca
#   other-ca.pem / other-ca.key  an unrelated CA (for "unknown CA" tests)
set -eu
cd "$(dirname "$0")"
DAYS=36525
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

newkey() { openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out "$1"; }

make_ca() { # name subject
  newkey "$1.key"
  openssl req -new -x509 -key "$1.key" -out "$1.pem" -days "$DAYS" -sha256 \
    -subj "$2" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash"
}

make_ca ca "/CN=vless-tun test CA"
make_ca other-ca "/CN=vless-tun unrelated test CA"

newkey server.key
openssl req -new -key server.key -out "$tmp/server.csr" -subj "/CN=test.vless-tun.internal"
cat > "$tmp/server.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:test.vless-tun.internal,DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
openssl x509 -req -in "$tmp/server.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
  -CAserial "$tmp/ca.srl" -out server.pem -days "$DAYS" -sha256 -extfile "$tmp/server.ext"
openssl verify -CAfile ca.pem server.pem
