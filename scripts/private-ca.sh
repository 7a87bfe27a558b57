#!/usr/bin/env bash
# A private CA and a P-256 server certificate for 127.0.0.1 and localhost, made with OpenSSL as an operator would:
# scripts/private-ca.sh FOLDER [CA NAME] writes ca.pem, server.pem and server.key (mode 0600) in FOLDER.
set -euo pipefail
mkdir -p "$1"
cd "$1"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem -days 2 \
    -subj "/CN=${2:-Test CA}" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr \
    -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
    -extfile server.ext 2>/dev/null
chmod 644 ca.pem server.pem
