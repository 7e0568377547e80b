#!/usr/bin/env bash
# Install etcd (the consortium's ordering service) from Debian's packages when /usr/bin/etcd is missing.
# Debian and Ubuntu ship it as etcd-server (etcd and etcdctl); nothing is downloaded from elsewhere.
set -euo pipefail

if [ -x /usr/bin/etcd ]; then
    echo "setup-etcd: $(/usr/bin/etcd --version | head -n 1) at /usr/bin/etcd"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    cat >&2 <<'MSG'
error: etcd is not installed and apt-get is not available on this machine.
The consortium orders transactions through etcd 3.4 or later (/usr/bin/etcd).
Install it with your system's package manager (Debian/Ubuntu package: etcd-server),
or place an etcd binary somewhere and point QCL_ETCD at it: QCL_ETCD=/path/to/etcd
MSG
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "error: installing etcd-server needs root, and sudo is not available; run this script as root" >&2
    exit 1
fi

echo "setup-etcd: installing Debian's etcd-server package"
${as_root[@]+"${as_root[@]}"} apt-get update -qq
${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server
# The package may enable a system-wide etcd service on the default ports; the project starts its own members.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
    echo "setup-etcd: note: the package started a system etcd service (ports 2379/2380); qcl uses its own members on free ports"
fi

if [ ! -x /usr/bin/etcd ]; then
    echo "error: etcd-server installed but /usr/bin/etcd is still missing" >&2
    exit 1
fi
echo "setup-etcd: $(/usr/bin/etcd --version | head -n 1) installed at /usr/bin/etcd"
