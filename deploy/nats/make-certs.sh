#!/usr/bin/env bash
# Makes a private CA and certificates for TLS to and between the NATS
# servers: `deploy/nats/make-certs.sh <dir> [host ...]` writes ca.pem,
# server.pem and server-key.pem (for every host named, default nats-1..3,
# localhost and 127.0.0.1) into <dir>. Services trust ca.pem
# (--nats-ca-file); nodes use the server pair for clients and routes.
# For production, prefer certificates from your own CA; keep the keys secret.
set -euo pipefail
dir=${1:?usage: make-certs.sh <dir> [host ...]}
shift
hosts=("$@")
[ ${#hosts[@]} -gt 0 ] || hosts=(nats-1 nats-2 nats-3 nats-0.nats nats-1.nats nats-2.nats localhost 127.0.0.1)
mkdir -p "$dir"
cd "$dir"
san=""
for h in "${hosts[@]}"; do
    if [[ $h =~ ^[0-9.]+$ ]]; then san+="IP:$h,"; else san+="DNS:$h,"; fi
done
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
    -subj "/CN=Verkosto NATS CA" -keyout ca-key.pem -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=verkosto-nats" -keyout server-key.pem -out server.csr 2>/dev/null
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 825 \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "${san%,}") \
    -out server.pem 2>/dev/null
rm -f server.csr ca.srl
chmod 644 ca.pem server.pem
echo "wrote $dir/ca.pem, server.pem, server-key.pem (for: ${hosts[*]})"
