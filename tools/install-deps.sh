#!/usr/bin/env bash
# The one list of what portsim needs from Debian; used by the README commands and by .ci/run.
set -euo pipefail
PKGS=(build-essential cmake pkg-config
      libboost-program-options-dev nlohmann-json3-dev catch2 libfmt-dev libxxhash-dev
      libbenchmark-dev python3 python3-matplotlib iproute2 groff-base  # groff: the man page test
      slurm-wlm munge parallel  # these three: the `slurm` ctest label (tools/slurm-single-node.sh)
      clang-14 libclang-rt-14-dev  # the ASan+UBSan build and the libFuzzer target (tools/test.sh)
      tcpdump tshark chromium)  # the pictures tests: pcap read back, the heat map in headless Chromium
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
