#!/usr/bin/env bash
# Writes the seed corpus (fuzz/corpus/TARGET/*): key material in every format the tests use,
# made with openssl as the seeds' tutorial does, PROXY headers, first bytes of connections, and
# names. Run once; the corpus is committed (small files only).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
C="$HERE/corpus"
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
cd "$W"
mkdir -p "$C"/{certificates,private_key,pkcs12,ticket_keys,proxy_header,first_bytes,names}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ec.key -out ec.pem \
  -subj /CN=localhost -days 2 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.pem -subj /CN=localhost -days 2 2>/dev/null
openssl genpkey -algorithm ed25519 -out ed.key 2>/dev/null
cp ec.pem rsa.pem "$C/certificates/"
openssl x509 -in ec.pem -outform DER -out "$C/certificates/ec.der"
cat ec.pem rsa.pem > "$C/certificates/chain.pem"
cat ec.pem ec.key > "$C/certificates/combined.pem"

cp ec.key "$C/private_key/ec-pkcs8.pem"
cp ed.key "$C/private_key/ed25519.pem"
openssl ec -in ec.key -out "$C/private_key/ec-sec1.pem" 2>/dev/null
openssl rsa -in rsa.key -traditional -out "$C/private_key/rsa-pkcs1.pem" 2>/dev/null
openssl pkcs8 -topk8 -in ec.key -outform DER -nocrypt -out "$C/private_key/ec-pkcs8.der"
openssl pkcs8 -topk8 -in ec.key -passout pass:secret -v2 aes-256-cbc -out "$C/private_key/ec-encrypted.pem"
openssl pkcs8 -topk8 -in rsa.key -passout pass:secret -v1 PBE-SHA1-3DES -out "$C/private_key/rsa-encrypted-v1.pem"
openssl rsa -in rsa.key -traditional -aes256 -passout pass:secret -out "$C/private_key/rsa-legacy-aes.pem" 2>/dev/null
openssl ec -in ec.key -des3 -passout pass:secret -out "$C/private_key/ec-legacy-des3.pem" 2>/dev/null

openssl pkcs12 -export -in ec.pem -inkey ec.key -passout pass:secret -out "$C/pkcs12/ec.p12"
openssl pkcs12 -export -in rsa.pem -inkey rsa.key -passout pass:secret -legacy \
  -out "$C/pkcs12/rsa-legacy.p12" 2>/dev/null || true
openssl pkcs12 -export -in ec.pem -inkey ec.key -passout pass:secret -nomac -out "$C/pkcs12/ec-nomac.p12"

head -c 48 /dev/urandom > "$C/ticket_keys/one"
head -c 96 /dev/urandom > "$C/ticket_keys/two"

printf 'PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n' > "$C/proxy_header/v1-tcp4"
printf 'PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n' > "$C/proxy_header/v1-tcp6"
printf 'PROXY UNKNOWN\r\n' > "$C/proxy_header/v1-unknown"
# v2: signature, PROXY over TCP/IPv4, 12 address bytes.
printf '\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x01\xc0\x00\x02\x02\xdc\x04\x01\xbb' > "$C/proxy_header/v2-tcp4"
printf '\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00' > "$C/proxy_header/v2-local"

printf 'GET /a?b=c HTTP/1.1\r\nHost: example.com:8080\r\n\r\n' > "$C/first_bytes/plain-http"
printf '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' > "$C/first_bytes/client-hello-head"
printf '\x16\x03\x00\x00\x30\x01\x00\x00\x2c\x03\x00' > "$C/first_bytes/ssl3-hello"
printf '\x80\x2e\x01\x00\x02' > "$C/first_bytes/sslv2-hello"
printf '\x15\x03\x03\x00\x02\x02\x28' > "$C/first_bytes/alert"

printf 'TLS_AES_128_GCM_SHA256:ECDHE-ECDSA-AES256-GCM-SHA384' > "$C/names/suites"
printf 'X25519,P-256,secp384r1' > "$C/names/groups"
printf 'TLSv1.3' > "$C/names/version"
echo "seed corpus written to $C" >&2
