#!/usr/bin/env bash
# Regenerates the Swift code for every .proto under Protos/ into the given folder
# (default: Sources/PharosProto/Generated). Needs protoc (Debian protobuf-compiler) and
# the two plugins built by `make proto-plugins` from the mirrored Swift packages.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-Sources/PharosProto/Generated}
plugins=Tools/protoc-plugins/.build/release
for p in protoc-gen-swift protoc-gen-grpc-swift-2; do
    [ -x "$plugins/$p" ] || { echo "missing $plugins/$p: run 'make proto-plugins'" >&2; exit 1; }
done
mkdir -p "$out"
rm -f "$out"/*.swift
protos=$(cd Protos && find . -name '*.proto' | sed 's|^\./||' | sort)
protoc --plugin=protoc-gen-swift="$plugins/protoc-gen-swift" \
       --plugin=protoc-gen-grpc-swift-2="$plugins/protoc-gen-grpc-swift-2" \
       -I Protos \
       --swift_out="$out" --swift_opt=Visibility=Public,FileNaming=PathToUnderscores \
       --grpc-swift-2_out="$out" --grpc-swift-2_opt=Visibility=Public,FileNaming=PathToUnderscores \
       $protos
echo "generated $(ls "$out" | wc -l) files in $out from: $(echo $protos)"
