# shellcheck shell=bash
# Summaries of bench timings. A loopback bench on a small VM is noisy (the servers share
# its cores), so the benches report the median with the best, and the ratio of two
# commands round by round: the pair in one round ran under the same conditions.

# best N...: the smallest; worst N...: the largest; median N...: the middle one (the
# mean of the two middle ones for an even count).
best() { printf '%s\n' "$@" | sort -g | head -1; }
worst() { printf '%s\n' "$@" | sort -g | tail -1; }
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

# round_ratios "A1 A2..." "B1 B2...": A_i / B_i for each round, two decimals each.
round_ratios() {
  paste -d' ' <(tr ' ' '\n' <<<"$1") <(tr ' ' '\n' <<<"$2") | awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), ($2 > 0 ? $1 / $2 : 0) }'
}
