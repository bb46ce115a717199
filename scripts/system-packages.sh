#!/usr/bin/env bash
# Debian/Ubuntu packages the pipeline, the API and the tests use beside Python:
#   tesseract-ocr + tesseract-ocr-vie   reading Vietnamese text in images (OCR); the pip package tesserocr brings
#                                       its own libtesseract (manylinux wheels) and reads these packages' language
#                                       data; the `tesseract` program is the pytesseract fallback
#   g++                                 builds pdqhash (Meta's PDQ, published on PyPI as source only)
#   fonts-dejavu-*, fonts-liberation2, fonts-noto-core, fonts-noto-color-emoji
#                                       fonts with Vietnamese glyphs and colour emoji for the generated images
# Installs what is missing with apt-get (through sudo when not root); elsewhere it says what to install.
set -euo pipefail
need=()
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v tesseract >/dev/null 2>&1 || need+=(tesseract-ocr)
{ command -v tesseract >/dev/null 2>&1 && tesseract --list-langs 2>/dev/null | grep -qx vie; } || need+=(tesseract-ocr-vie)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf ] || need+=(fonts-dejavu-extra)
[ -f /usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf ] || need+=(fonts-liberation2)
[ -f /usr/share/fonts/truetype/noto/NotoSans-Regular.ttf ] || need+=(fonts-noto-core)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need+=(fonts-noto-color-emoji)
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages: ${need[*]} (Debian names); install their equivalents and run make again" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing system packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
