#!/usr/bin/env bash
# Builds the sample shop webapp: `app/build.sh RELEASE_ID [OUT.war]` (default app/build/shop-ID.war).
# A war is a zip of the JSPs and WEB-INF; Tomcat compiles the JSPs, so only `jar` (JDK) is needed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
id=${1:?usage: app/build.sh RELEASE_ID [OUT.war]}
out=${2:-$here/build/shop-$id.war}
command -v jar >/dev/null || { echo "app/build.sh: needs \`jar\` from a JDK (apt-get install default-jdk-headless)" >&2; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -r "$here/webapp/." "$stage/"
printf '%s\n' "$id" > "$stage/WEB-INF/release.txt"
mkdir -p "$(dirname "$out")"
rm -f "$out"
(cd "$stage" && jar --create --file "$out" --no-manifest .)
echo "$out"
