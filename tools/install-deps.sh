#!/usr/bin/env bash
# The one list of what portsim needs from Debian; used by the README commands and by .ci/run.
# --vm: also what the VM oracle needs (tools/kernel-oracle --kernel 5.10|6.1|6.12, ctest -L
# oracle-vm): qemu-system-x86 without recommends. Not installed by default (.ci/run, tools/test.sh).
set -euo pipefail
VM=0
for arg in "$@"; do
  case "$arg" in
    --vm) VM=1 ;;
    -h|--help) echo "usage: tools/install-deps.sh [--vm]   (--vm: also qemu-system-x86 for the VM oracle)"; exit 0 ;;
    *) echo "install-deps.sh: unknown option '$arg' (expected --vm)" >&2; exit 2 ;;
  esac
done
PKGS=(build-essential cmake pkg-config
      libboost-program-options-dev nlohmann-json3-dev catch2 libfmt-dev libxxhash-dev
      libbenchmark-dev python3 python3-matplotlib iproute2 groff-base  # groff: the man page test
      slurm-wlm munge parallel  # these three: the `slurm` ctest label (tools/slurm-single-node.sh)
      clang-14 libclang-rt-14-dev  # the ASan+UBSan build and the libFuzzer target (tools/test.sh)
      tcpdump tshark chromium)  # the pictures tests: pcap read back, the heat map in headless Chromium
# The VM oracle boots Debian kernels under qemu (TCG); xz-utils/zstd unpack their vmlinux, cpio
# is written by tools/oracle/vm.py itself. 31 packages, ~16 MiB without recommends.
((VM)) && PKGS+=(qemu-system-x86 xz-utils zstd)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # Wait for a dpkg lock that another apt run holds, rather than fail.
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  # tshark (wireshark-common) asks whether non-root users may capture; answer no, unattended.
  echo 'wireshark-common wireshark-common/install-setuid boolean false' | $SUDO debconf-set-selections
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
fi
