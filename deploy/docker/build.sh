#!/usr/bin/env bash
# Build both images from the repository root (the build context; .dockerignore keeps it small) and tag them for
# a registry: deploy/docker/build.sh [REGISTRY/] [TAG]   e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/ 0.1.0
set -euo pipefail
cd "$(dirname "$0")/../.."
REGISTRY=${1:-}
TAG=${2:-0.1.0}
docker build -f deploy/docker/Dockerfile.base -t "${REGISTRY}alpha-assets-base:${TAG}" .
docker build -f deploy/docker/Dockerfile.models --build-arg "BASE_IMAGE=${REGISTRY}alpha-assets-base:${TAG}" \
  -t "${REGISTRY}alpha-assets-models:${TAG}" .
