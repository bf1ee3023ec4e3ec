#!/usr/bin/env bash
# Print the path of a llama-cpp-python wheel built from source, building it once into a cache
# outside the repository: PyPI ships only its source, and compiling llama.cpp takes about
# 15 minutes on 2 busy cores, so a cached wheel keeps `make install` cheap after the first run.
# Usage: scripts/llama_cpp_wheel.sh PYTHON   (cache: $SRM_AGENT_WHEELS, else ~/.cache/srm-agent/wheels)
#
# The build targets x86-64 with AVX2/FMA/F16C rather than -march=native, so a cached wheel still
# runs if the cache outlives the CPU it was built on; the multimodal (mtmd) library is left out.
set -euo pipefail
PY="$1"
VERSION=0.3.36
FLAGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
case "$(uname -m)" in x86_64) ;; *) FLAGS="-DLLAVA_BUILD=OFF" ;; esac
CACHE="${SRM_AGENT_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/srm-agent/wheels}"
# The flags are part of the key: a change of flags builds a new wheel instead of reusing the old one.
KEY=$(printf '%s %s' "$VERSION" "$FLAGS" | sha256sum | cut -c1-12)
DIR="$CACHE/llama-cpp-python-$VERSION-$KEY"

wheel() { ls "$DIR"/llama_cpp_python-"$VERSION"-*.whl 2>/dev/null | head -n1; }

if [ -z "$(wheel)" ]; then
  mkdir -p "$CACHE"
  TMP=$(mktemp -d "$CACHE/.build.XXXXXX")
  trap 'rm -rf "$TMP"' EXIT
  echo "building llama-cpp-python $VERSION from source into $DIR (once; about 15 minutes on 2 cores)" >&2
  START=$(date +%s)
  CMAKE_ARGS="$FLAGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$PY" -m pip wheel --quiet --no-deps --no-binary llama-cpp-python "llama-cpp-python==$VERSION" -w "$TMP" >&2
  echo "built in $(( $(date +%s) - START )) s" >&2
  mkdir -p "$DIR"
  mv "$TMP"/llama_cpp_python-"$VERSION"-*.whl "$DIR"/
fi
wheel
