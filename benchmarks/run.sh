#!/usr/bin/env bash
# Strait's whole-system benchmark: nginx, HAProxy and Strait (gnet, netpoll, stdnet) side by
# side on one proxy core. See benchmarks/README.md.
#
#   benchmarks/run.sh [--short|--full] [--workloads l4,l4-idle,http,http-idle,http-light,h2,grpc] [--targets nginx,haproxy,strait]
#                     [--results] [--no-install] [--no-strait | --strait-bin PATH] [--keep]
#                     [-- straitbench flags...]
#
# It installs the peers when they are missing (Debian: nginx-light libnginx-mod-stream haproxy
# wrk nghttp2-client gnuplot-nox), builds the harness and Strait from this checkout, and runs
# the harness pinned to the load CPU. It starts and stops every process itself.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cmdline="benchmarks/run.sh"
for a in "$@"; do cmdline+=" $(printf '%q' "$a")"; done

profile=full
workloads=""
targets=""
results=""
install=1
strait_wanted=auto
strait_bin=""
keep=""
extra=()

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --short) profile=short ;;
    --full) profile=full ;;
    --workloads) workloads=${2:?--workloads needs a list}; shift ;;
    --workloads=*) workloads=${1#*=} ;;
    --targets) targets=${2:?--targets needs a list}; shift ;;
    --targets=*) targets=${1#*=} ;;
    --results) results="$here/RESULTS.md" ;;
    --no-install) install=0 ;;
    --no-strait) strait_wanted=no ;;
    --strait-bin) strait_bin=${2:?--strait-bin needs a path}; shift ;;
    --strait-bin=*) strait_bin=${1#*=} ;;
    --keep) keep=-keep ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra+=("$@"); break ;;
    *) echo "run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

log() { echo "run.sh: $*" >&2; }

# 1. Peers: find them, or install them from Debian's packages.
need_install=0
for c in nginx haproxy wrk taskset gnuplot h2load; do
  command -v "$c" >/dev/null 2>&1 || need_install=1
done
stream_mod=""
for m in /usr/lib/nginx/modules/ngx_stream_module.so /usr/share/nginx/modules/ngx_stream_module.so \
         /usr/lib64/nginx/modules/ngx_stream_module.so; do
  [[ -f $m ]] && stream_mod=$m && break
done
[[ -n $stream_mod ]] || need_install=1
if [[ $need_install == 1 ]]; then
  if [[ $install == 1 && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "installing peers with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # Keep package scripts from starting nginx and HAProxy services: the benchmark starts its own.
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    if [[ ! -e $policy ]]; then
      printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && made_policy=1
    fi
    apt-get update -qq >/dev/null
    apt_rc=0
    apt-get install -y -qq nginx-light libnginx-mod-stream haproxy wrk nghttp2-client gnuplot-nox util-linux >/dev/null || apt_rc=$?
    [[ $made_policy == 1 ]] && rm -f "$policy"
    [[ $apt_rc == 0 ]] || { log "apt-get install failed ($apt_rc)"; exit 1; }
  else
    log "some peers are missing (nginx, libnginx-mod-stream, haproxy, wrk, h2load, gnuplot); install them or run as root without --no-install"
  fi
fi

# 2. The harness and the idle meter.
bin="$here/out/bin"
mkdir -p "$bin"
(cd "$root" && go build -o "$bin/straitbench" ./benchmarks/cmd/straitbench && go build -o "$bin/idleconns" ./benchmarks/cmd/idleconns \
  && go build -o "$bin/grpcload" ./benchmarks/cmd/grpcload)

# 3. Strait, from this checkout, when it builds.
strait_args=()
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$root" status --porcelain 2>/dev/null | head -1) ]]; then rev="$rev+uncommitted changes"; fi
if [[ -n $strait_bin ]]; then
  # A binary built beforehand (for instance while the work tree is mid-edit).
  [[ -x $strait_bin ]] || { log "--strait-bin $strait_bin is not an executable"; exit 2; }
  strait_args=(-strait "$(cd "$(dirname "$strait_bin")" && pwd)/$(basename "$strait_bin")"
               -strait-version "prebuilt $strait_bin (work tree now at $rev)")
elif [[ $strait_wanted != no && ( -z $targets || $targets == *strait* ) ]]; then
  if [[ -d $root/cmd/strait ]] && build_err=$(cd "$root" && go build -o "$bin/strait" ./cmd/strait 2>&1); then
    strait_args=(-strait "$bin/strait" -strait-version "$rev ($(go version | awk '{print $3}'))")
  else
    note="cmd/strait does not build in this checkout"
    [[ -d $root/cmd/strait ]] || note="cmd/strait does not exist in this checkout"
    [[ -n ${build_err:-} ]] && note="$note: $(echo "$build_err" | grep -v '^#' | head -1)"
    log "Strait not measured: $note"
    if [[ $targets == *strait* ]]; then exit 1; fi
    strait_args=(-strait-note "$note")
  fi
fi

# 4. Run, pinned to the load CPU; the harness pins each process itself.
args=(-profile "$profile" -out "$here/out" -cmdline "$cmdline")
[[ -n $workloads ]] && args+=(-workloads "$workloads")
[[ -n $targets ]] && args+=(-targets "$targets")
[[ -n $results ]] && args+=(-results "$results")
[[ -n $keep ]] && args+=("$keep")
exec taskset -c 1 "$bin/straitbench" "${args[@]}" "${strait_args[@]}" "${extra[@]}"
