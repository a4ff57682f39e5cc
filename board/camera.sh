#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Debian's camera stacks for the board, as a Debian user installs them: libcamera's `cam`
# (libcamera-tools), GStreamer's `gst-launch-1.0` with `libcamerasrc` (gstreamer1.0-libcamera,
# gstreamer1.0-tools) and `v4l2-compliance`, `v4l2-ctl` (v4l-utils), Debian's own arm64
# packages, unmodified.
#
#   board/camera.sh OUTDIR [SUITE...]    -> OUTDIR/<suite>/ (a root file system to chroot
#                                           into), OUTDIR/<suite>/cmabuf-versions, OUTDIR/suites
#                                           (those made), OUTDIR/skipped (those Debian does not
#                                           offer now), OUTDIR/compliance (the suite whose
#                                           v4l2-compliance runs: the newest v4l-utils)
#
# Suites (default: trixie sid):
#   trixie  trixie with its backports, as `apt install -t trixie-backports` gives them
#           (trixie's own libcamera 0.4.0 virtual camera reports 0 bytes used per frame, a
#           libcamera bug fixed in 0.5.0; backports carry 0.7), GStreamer from trixie
#   sid     libcamera and GStreamer from sid
#
# Each suite's dependency closure is resolved by apt (a private configuration: arm64, nothing
# installed, no recommends), downloaded and unpacked (no maintainer scripts: nothing of it runs
# on this machine), then cut down to what the clients load: the programs, the two GStreamer
# plugins the tests use (libcamerasrc, and the core elements: identity, fdsink), libcamera's
# data, and every library they need by DT_NEEDED (board/camera_root.py). cam's display
# back-ends (SDL, KMS) and qcam's Qt pull most of the closure but are not loaded by what the
# tests run, so they stay out. Cached by the resolved package list; a package Debian no longer
# offers is a failure of the archive's state, said as such (the test then skips and names it).
. "$(dirname "$0")/common.sh"

OUTDIR=${1:?usage: camera.sh OUTDIR [SUITE...]}
shift
SUITES=${*:-trixie sid}
PKGS="libcamera-tools gstreamer1.0-libcamera gstreamer1.0-tools v4l-utils"
rm -rf "$OUTDIR"
mkdir -p "$OUTDIR"
: > "$OUTDIR/suites"
: > "$OUTDIR/skipped"
: > "$OUTDIR/v4l-utils"

for suite in $SUITES; do
	case $suite in
	trixie) dists="trixie trixie-backports" target=(-t trixie-backports) ;;
	sid) dists="sid" target=() ;;
	*) die "camera.sh: unknown suite $suite (trixie or sid)" ;;
	esac
	# Its own private apt configuration: arm64 only, nothing installed, no recommends.
	A=$CACHE/apt-camera-$suite
	# shellcheck disable=SC2086
	apt_setup "$A" $dists
	: > "$A/status"
	# shellcheck disable=SC2207
	opts=($(apt_opts "$A" arm64) -o "Dir::State::status=$A/status" -o APT::Install-Recommends=false)
	apt_refresh "$A" "${opts[@]}" || log "camera: apt-get update for $suite failed: using the lists it has"
	# The closure, as "name version" lines.
	if ! apt-get "${opts[@]}" -s "${target[@]}" install $PKGS 2>"$A/resolve.err" |
		awk '/^Inst / {gsub(/[()]/, "", $3); print $2, $3}' | sort > "$A/closure"; then
		:
	fi
	if [ ! -s "$A/closure" ]; then
		cat "$A/resolve.err" >&2
		log "camera: $suite offers no installable $PKGS (the archive's state)"
		echo "$suite" >> "$OUTDIR/skipped"
		continue
	fi
	key=$(cat "$A/closure" "$0" "$CMABUF_ROOT/board/camera_root.py" | sha256sum | cut -c1-12)
	R=$CACHE/camera/$suite-$key
	if [ ! -f "$R/.cmabuf-ready" ]; then
		log "camera: Debian $suite's libcamera and GStreamer ($(wc -l < "$A/closure")" \
			"packages; first run only)"
		missing=()
		while read -r name ver; do
			ls "$A/debs/${name}_${ver/:/%3a}_"*.deb >/dev/null 2>&1 || missing+=("$name=$ver")
		done < "$A/closure"
		if [ ${#missing[@]} -gt 0 ]; then
			(cd "$A/debs" && apt-get "${opts[@]}" -qq download "${missing[@]}" >&2) ||
				die "camera: downloading $suite's packages failed"
		fi
		rm -rf "$R" "$R.unpack"
		mkdir -p "$R.unpack"
		while read -r name ver; do
			dpkg-deb -x "$(ls "$A/debs/${name}_${ver/:/%3a}_"*.deb | head -n1)" "$R.unpack" ||
				die "camera: unpacking $name failed"
		done < "$A/closure"
		python3 "$CMABUF_ROOT/board/camera_root.py" "$R.unpack" "$R" ||
			die "camera: cutting $suite's root down failed"
		{
			echo "suite $suite ($dists)"
			grep -E '^(libcamera0\.[0-9]+|libcamera-tools|gstreamer1\.0-libcamera|libgstreamer1\.0-0|gstreamer1\.0-tools|v4l-utils) ' \
				"$A/closure"
		} > "$R/cmabuf-versions"
		rm -rf "$R.unpack"
		touch "$R/.cmabuf-ready"
	fi
	cp -a "$R" "$OUTDIR/$suite"
	rm -f "$OUTDIR/$suite/.cmabuf-ready"
	echo "$suite" >> "$OUTDIR/suites"
	echo "$suite $(awk '$1 == "v4l-utils" {print $2}' "$R/cmabuf-versions")" >> "$OUTDIR/v4l-utils"
done
# v4l2-compliance checks a driver against what its version knows of the kernel's API: the newest
# v4l-utils on offer runs it (trixie's 1.30 fails two checks of 7.x's vivid that 1.32 knows
# changed: the pixel array control's size, an input with audio only).
newest=
while read -r suite ver; do
	if [ -z "$newest" ] || dpkg --compare-versions "$ver" gt "${newest#* }"; then
		newest="$suite $ver"
	fi
done < "$OUTDIR/v4l-utils"
echo "${newest%% *}" > "$OUTDIR/compliance"
