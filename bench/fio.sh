#!/bin/sh
# Disk limits for bench/RESULTS.md: sequential write (+ final fsync), fsync-per-write at the two
# batch sizes the log benchmarks use, and sequential read. Run as root for drop_caches.
# Usage: bench/fio.sh [dir on the data disk]   (default: target/tmp/fio)
set -eu
DIR=${1:-$(dirname "$0")/../target/tmp/fio}
mkdir -p "$DIR"
run() { echo "== $(date -u +%H:%M:%S) load: $(cut -d' ' -f1-3 /proc/loadavg) :: fio $*"; fio --ioengine=psync --group_reporting --directory="$DIR" "$@" | grep -E "WRITE:|READ:|IOPS|clat \((u|m)sec\)|^ +sync \((u|m)sec\)"; }
# fio preallocates its files by default (fallocate=native): writes then fill unwritten extents,
# which ext4 must convert. A log segment is appended to without preallocation, so the
# --fallocate=none runs are the like-for-like limit.
run --name=seqwrite-1G --rw=write --bs=1M --size=1G --end_fsync=1
run --name=seqwrite-1G-noprealloc --rw=write --bs=1M --size=1G --end_fsync=1 --fallocate=none
run --name=seqwrite-4G-noprealloc --rw=write --bs=1M --size=4G --end_fsync=1 --fallocate=none
run --name=seqwrite-4G --rw=write --bs=1M --size=4G --end_fsync=1
run --name=fsync-16k --rw=write --bs=16k --size=256M --fsync=1 --runtime=20
run --name=fdatasync-16k --rw=write --bs=16k --size=256M --fdatasync=1 --runtime=20
run --name=fdatasync-16k-noprealloc --rw=write --bs=16k --size=256M --fdatasync=1 --runtime=20 --fallocate=none
run --name=fdatasync-1M --rw=write --bs=1M --size=1G --fdatasync=1 --runtime=20
run --name=fdatasync-1M-noprealloc --rw=write --bs=1M --size=1G --fdatasync=1 --runtime=20 --fallocate=none
# Raw device, no file system or page cache: O_DIRECT, 1 MiB, 16 in flight.
run --name=direct-write --rw=write --bs=1M --size=4G --direct=1 --ioengine=libaio --iodepth=16
# Read back the 4 GiB file written above: from the disk (O_DIRECT, and buffered after dropping
# the page cache; fio also invalidates the file's cached pages before a job by default), then
# buffered with the page cache warm (--invalidate=0, second pass).
run --name=seqwrite-4G --rw=read --bs=1M --size=4G --direct=1
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null && echo "(page cache dropped)" || echo "(could not drop caches)"
run --name=seqwrite-4G --rw=read --bs=1M --size=4G
run --name=seqwrite-4G --rw=read --bs=1M --size=4G --invalidate=0
run --name=seqwrite-4G --rw=read --bs=1M --size=4G --invalidate=0
rm -f "$DIR"/seqwrite-* "$DIR"/fsync-16k* "$DIR"/fdatasync-* "$DIR"/direct-write*
echo "== done $(date -u +%H:%M:%S) load: $(cut -d' ' -f1-3 /proc/loadavg)"
