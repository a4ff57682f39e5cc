#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs inside the board for `make bench`: cmabuf against the mainline CMA heap
# on the same region (cmabufctl bench), and the fragmentation story
# (cmabuf_pressure -t fragmentation). Prints one JSON document between
# BENCH-BEGIN and BENCH-END; ratios only.
out=/tmp/bench
mkdir -p $out
cmabufctl bench > $out/ratios.json 2> $out/ratios.err
rc=$?
(cd /kselftest/cmabuf && CMABUF_FRAG_CYCLES=${CMABUF_FRAG_CYCLES:-1000} \
	./cmabuf_pressure -t fragmentation) > $out/frag.log 2>&1
frag=$(sed -n 's/.*fragmentation_success \([0-9]*\/[0-9]*\).*/\1/p' $out/frag.log | tail -n1)
# "small buffers beside: N of M allocated, the pool's chunks at most K MiB"
small=$(sed -n "s/.*small buffers beside: \([0-9]*\) of \([0-9]*\) allocated.* at most \([0-9]*\) MiB.*/\1\/\2 \3/p" \
	$out/frag.log | tail -n1)
sed 's/^/# /' $out/ratios.err $out/frag.log
echo "BENCH-BEGIN"
if [ $rc -eq 0 ] && [ -s $out/ratios.json ]; then
	sed "s|}\$|,\"fragmentation_success\":\"${frag:-0/0}\",\"fragmentation_small\":\"${small:-}\"}|" \
		$out/ratios.json
else
	echo "{\"error\":\"cmabufctl bench failed ($rc)\",\"fragmentation_success\":\"${frag:-0/0}\"}"
fi
echo "BENCH-END"
