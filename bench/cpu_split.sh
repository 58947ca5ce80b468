#!/usr/bin/env bash
# cpu_split.sh PERF_DATA US_PER_LETTER: where a process's CPU goes, from a
# `perf record` of it, in microseconds per letter: each part's share of
# the samples times the CPU per letter measured by /usr/bin/time (perf's
# own count is a sample, not a clock).  The first thread is the main one
# (XML, JSON, libcurl, the kernel's TCP); any other thread (sender's
# store worker) is one part, whatever library it was in.
#
#   bench/cpu_split.sh perf.data 17.4
#
# prints "part<TAB>us" lines, largest first, then "total<TAB>us".
# bench/run.sh uses it for its section 6 (BENCH_PERF=1).
set -euo pipefail
export LC_ALL=C
[ $# = 2 ] || { echo "usage: cpu_split.sh PERF_DATA US_PER_LETTER" >&2; exit 2; }
perf report -i "$1" -n --no-children --sort pid,dso -g none 2>/dev/null |
	awk -v us="$2" '
	/^#/ || NF < 3 { next }
	{
		tid = $3; sub(/:.*/, "", tid); n = $2; dso = $4
		if (main == "" || tid + 0 < main + 0) main = tid
		rows[NR] = tid " " n " " dso
	}
	END {
		for (i in rows) {
			split(rows[i], f, " ")
			if (f[1] != main) part = "other threads (store worker)"
			else if (f[3] ~ /kernel/) part = "kernel"
			else if (f[3] ~ /libcurl/) part = "libcurl"
			else if (f[3] ~ /^libc\.so/) part = "libc"
			else if (f[3] ~ /vdso/) part = "vdso (clock reads)"
			else if (f[3] ~ /libxml2/) part = "libxml2"
			else if (f[3] ~ /jansson/) part = "jansson"
			else if (f[3] ~ /sqlite/) part = "sqlite"
			else if (f[3] ~ /^(sender|bare_loop)/) part = "own code"
			else part = "other libraries"
			s[part] += f[2]; total += f[2]
		}
		for (p in s) printf "%s\t%.2f\n", p, us * s[p] / total
		printf "total\t%.2f\n", us
	}' | sort -t "$(printf '\t')" -k2,2 -gr | awk -F '\t' '$1 != "total" { print } $1 == "total" { t = $0 } END { print t }'
