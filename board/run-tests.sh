#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs inside the board: every test, as one KTAP document on stdout.
#
# Each kselftest program becomes a subtest, indented by four spaces, as the
# kernel prints KUnit results.  Group 1 is a placeholder for the module's
# KUnit suites, which ran when init loaded the module: the host fills it in
# from the kernel log (report.py) and parses the whole with
# tools/testing/kunit/kunit.py.  After the tests,
# the full kernel log goes out between markers for the host to scan for
# oopses and warnings.

KSFT=/kselftest
out=/tmp/ktap
mkdir -p $out

# The tests: all of tests.txt but those named by cmabuf_skip=, or those named by cmabuf_tests=,
# on the kernel command line (which the kernel hands init as environment variables): for boots
# that share the tests out, or run some with other options.
if [ -n "${cmabuf_tests:-}" ]; then
	tests=$(echo "$cmabuf_tests" | tr , ' ')
	groups=0	# the module's KUnit suites were reported by the first boot
else
	tests=$(cat $KSFT/cmabuf/tests.txt)
	for t in $(echo "${cmabuf_skip:-}" | tr , ' '); do
		tests=$(echo "$tests" | grep -vx "$t")
	done
	groups=1	# the module's KUnit suites: report.py fills them in from the kernel log
fi
for t in $tests; do
	groups=$((groups + 1))
done

echo "KTAP-BEGIN"
echo "KTAP version 1"
echo "1..$groups"
n=0
if [ -z "${cmabuf_tests:-}" ]; then
	if [ -d /sys/module/kunit ]; then
		echo "KUNIT-GROUP 1"
	else
		echo "ok 1 kunit # SKIP CONFIG_KUNIT is off in $(uname -r): the module's KUnit suites are compiled out"
	fi
	n=1
fi
for t in $tests; do
	n=$((n + 1))
	start=$(cat /proc/uptime | cut -d' ' -f1)
	# $t is dir/program under $KSFT, or dir/program:test for one test of a kselftest-harness
	# program (its -t); the program's name names the subtest.
	name=${t##*/}
	only=${name#*:}
	[ "$only" = "$name" ] && only=
	name=${name%%:*}
	(cd $KSFT/${t%/*} && timeout ${CMABUF_TEST_TIMEOUT:-600} ./$name ${only:+-t "$only"}) \
		> $out/$name 2>&1
	rc=$?
	end=$(cat /proc/uptime | cut -d' ' -f1)
	# The program's own document, as a subtest.
	awk -v name="$name" '
		/^(K?TAP version)/ { print "    " $0; print "    # Subtest: " name; next }
		{ print "    " $0 }' $out/$name
	echo "# $name: exit $rc in $start..$end s (uptime)"
	case $rc in
	0) echo "ok $n $name" ;;
	4) echo "ok $n $name # SKIP" ;;
	*) echo "not ok $n $name # exit $rc" ;;
	esac
done
echo "KTAP-END"

# kmemleak (debug kernel): two scans, so that only leaks that stay are reported.
if [ -w /sys/kernel/debug/kmemleak ]; then
	echo scan > /sys/kernel/debug/kmemleak
	sleep 1
	echo scan > /sys/kernel/debug/kmemleak
fi

echo "DMESG-BEGIN"
dmesg
[ -r /sys/kernel/debug/kmemleak ] && cat /sys/kernel/debug/kmemleak
echo "DMESG-END"
