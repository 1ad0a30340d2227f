#!/usr/bin/env bash
# Installs spvit's build and test dependencies from Debian (bookworm) packages. Idempotent: packages already
# present are skipped, so it is cheap to run before every build.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev                      # LibTorch 1.13 (CPU)
  libopenmpi-dev openmpi-bin        # MPI
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  libopenslide-dev libhdf5-dev
  libtiff-dev                       # spvit infer: the pyramidal label mask
  libspdlog-dev libfmt-dev libcli11-dev libyaml-cpp-dev nlohmann-json3-dev
  libpugixml-dev                    # ASAP XML slide annotations
  libgeos-dev                       # repairing invalid annotation polygons
  libnifti2-dev                     # NIfTI volumes (MSD / nnU-Net datasets, 3D label maps)
  python3-nibabel                   # tests: NIfTI files checked against an independent reader
  python3-matplotlib                # scripts/scaling/plot.py: the scaling figures (its test fails without it)
  slurmctld slurmd slurm-client munge  # tests: a one-node Slurm runs the sweeps and the preemption path (slurm_*)
  libsimgrid-dev python3-yaml       # scripts/simulation/: SimGrid SMPI replay of traced layers (simulation_* tests)
  libgtest-dev libgmock-dev libbenchmark-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages are installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
