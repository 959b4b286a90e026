#!/usr/bin/env bash
# Scenarios the shared lab lacks, run beside the same peers and appended to the lab's results.tsv
# (so its summarize.py puts them in the same table), plus a CPU account of scenario a:
#
#   e  HTTPS: 2000 pages over TLS 1.3 from nginx, with a CA made here that every tool is told to trust
#   f  many hosts: 10,000 URLs over 1000 host names pinned to 127.0.0.1 with --resolve (curl and
#      scrape; oha cannot pin names, so it gets the same paths on 127.0.0.1), per-host limit 4
#   g  large pages: 200 pages of 5 MB, C=16; peak RSS must stay flat
#   cpu  scenario a's list once per tool, with the CPU seconds of the client and of nginx: on a
#      2-core box, (client + server CPU) / 2 is a floor under the wall time no scheduling can beat.
#      Beside oha, wget2 and scrape, the reqwest floor (examples/reqwest_floor.rs, FLOOR_BIN): the
#      least a reqwest client can do with the list (bodies read and dropped; with an out dir,
#      hashed with SHA-256 and written atomically inline), on one thread and on two; and the same
#      loop on hyper-util's client directly (examples/hyper_floor.rs, HYPER_FLOOR_BIN)
#
# Called by bench/run.sh with RESULTS (the lab's results dir), SCRAPE_BIN and LAB set.
set -euo pipefail
: "${RESULTS:?}" "${SCRAPE_BIN:?}" "${LAB:?}"
FLOOR_BIN=${FLOOR_BIN:-}
HYPER_FLOOR_BIN=${HYPER_FLOOR_BIN:-}
REPEAT=${REPEAT:-3}
RUN_LIMIT=${RUN_LIMIT:-180}
EXTRA=${EXTRA:-"e f g cpu"}
export LC_ALL=C PATH="$HOME/.cargo/bin:$PATH"

W=$(mktemp -d "${BENCH_TMP:-/dev/shm}/scrape-extra.XXXXXX")
chmod 755 "$W"
NGINX_PID=""
cleanup() {
  [[ -n $NGINX_PID ]] && kill -TERM "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
TLS_PORT=$(free_port)

# ---------------------------------------------------------------- corpus, certificates, nginx
python3 "$LAB/gen_corpus.py" "$W" "$PORT" "$PORT" 2000 10000 >/dev/null
mkdir -p "$W/corpus/big"
python3 - "$W/corpus/big/page.html" <<'EOF'
import sys
para = "<p>" + "Large page text for the memory scenario, repeated to five megabytes. " * 14 + "</p>\n"
with open(sys.argv[1], "w") as f:
    f.write("<!DOCTYPE html><html><head><meta charset=utf-8><title>Big page</title></head><body>\n")
    while f.tell() < 5 * 1024 * 1024:
        f.write(para)
    f.write("</body></html>\n")
EOF
chmod -R a+rX "$W/corpus"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=scrape bench CA" \
  -keyout "$W/ca.key" -out "$W/ca.pem" -addext basicConstraints=critical,CA:TRUE 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$W/server.key" \
  -out "$W/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$W/ext.cnf"
openssl x509 -req -in "$W/server.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial \
  -days 2 -extfile "$W/ext.cnf" -out "$W/server.pem" 2>/dev/null

mkdir -p "$W/nginx/tmp"
cat >"$W/nginx/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    default_type text/html;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path $W/nginx/tmp/body;
    proxy_temp_path $W/nginx/tmp/proxy;
    fastcgi_temp_path $W/nginx/tmp/fastcgi;
    uwsgi_temp_path $W/nginx/tmp/uwsgi;
    scgi_temp_path $W/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        listen 127.0.0.1:$TLS_PORT ssl backlog=4096;
        ssl_certificate $W/server.pem;
        ssl_certificate_key $W/server.key;
        ssl_protocols TLSv1.3;
        root $W/corpus;
        location ~ "^/p/[0-9]*([0-9]{3})\.html$" { try_files /pages/\$1.html =404; }
        location ~ "^/big/[0-9]+\.html$" { try_files /big/page.html =404; }
        location / { return 404; }
    }
}
EOF
nginx -p "$W/nginx" -c "$W/nginx/nginx.conf" -e "$W/nginx/error.log" &
NGINX_PID=$!
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/p/000001.html" && break
  sleep 0.1
done

# URL lists
U="$W/lists"
mkdir -p "$U"
sed "s#http://127.0.0.1:$PORT/#https://localhost:$TLS_PORT/#" "$W/urls/nginx-2000.txt" >"$U/e.txt"
: >"$U/f.txt"
: >"$U/f-resolve.args"
for h in $(seq -w 1 1000); do
  echo "--resolve=h$h.bench.test:$PORT:127.0.0.1" >>"$U/f-resolve.args"
done
awk -v port="$PORT" '{ printf "http://h%04d.bench.test:%d/p/%09d.html\n", (NR - 1) % 1000 + 1, port, NR }' \
  "$W/urls/nginx-10000.txt" >"$U/f.txt"
sed "s#http://h[0-9]*\.bench\.test:#http://127.0.0.1:#" "$U/f.txt" >"$U/f-ip.txt"
for i in $(seq 0 199); do echo "http://127.0.0.1:$PORT/big/$i.html"; done >"$U/g.txt"
for f in e f g; do sed 's/.*/url = "&"/' "$U/$f.txt" >"$U/$f.curlcfg"; done
sed 's/^--resolve=/resolve = /' "$U/f-resolve.args" >>"$U/f.curlcfg"
mapfile -t RESOLVE <"$U/f-resolve.args"

# ---------------------------------------------------------------- tools
# tool_cmd SCENARIO TOOL OUT -> CMD (array) for scenario's list; 1 when the tool does not apply
tool_cmd() {
  local scen=$1 tool=$2 out=$3 list="$U/$1.txt" c=64 tls=() scrape_extra=()
  case $scen in
    e) tls=(--cacert "$W/ca.pem") ;;
    f) scrape_extra=("${RESOLVE[@]}" --per-host 4) ;;
    g) c=16 ;;
  esac
  local n; n=$(wc -l <"$list")
  case $tool in
    oha)
      local from=$list; [[ $scen == f ]] && from="$U/f-ip.txt"
      CMD=(oha --no-tui --output-format json -n "$n" -c "$c" -t 30s "${tls[@]}" --urls-from-file "$from") ;;
    curl-parallel)
      CMD=(curl -sS --no-progress-meter --parallel --parallel-max "$c" --max-time 30 --remote-name-all
           "${tls[@]}" --output-dir "$out" -K "$U/$scen.curlcfg") ;;
    wget2)
      [[ $scen == f ]] && return 1   # no way to pin host names
      local ca=(); [[ $scen == e ]] && ca=(--ca-certificate="$W/ca.pem")
      CMD=(wget2 --no-config -q --max-threads="$c" --timeout=30 --tries=1 "${ca[@]}" -P "$out" -i "$list") ;;
    aria2c)
      [[ $scen == f ]] && return 1
      local ca=(); [[ $scen == e ]] && ca=(--ca-certificate="$W/ca.pem")
      CMD=(aria2c -q -j "$c" --timeout=30 --max-tries=1 --file-allocation=none
           --auto-file-renaming=false --allow-overwrite=true "${ca[@]}" -d "$out" -i "$list") ;;
    lychee)
      [[ $scen == f ]] && return 1
      # lychee has no CA option; it reads SSL_CERT_FILE (set below for e).
      CMD=(lychee --no-progress --max-concurrency "$c" --host-concurrency "$c"
           --host-request-interval 0s --timeout 30 --max-retries 0 --format json
           -o "$out.lychee.json" "$list") ;;
    scrape)
      CMD=("$SCRAPE_BIN" "$list" --concurrency "$c" --timeout 30s --retries 0 --no-progress
           "${tls[@]}" "${scrape_extra[@]}" -o "$out")
      if [[ $scen != f ]]; then CMD+=(--per-host "$c"); fi ;;
    scrape-stdout)
      CMD=("$SCRAPE_BIN" "$list" --concurrency "$c" --timeout 30s --retries 0 --no-progress
           "${tls[@]}" "${scrape_extra[@]}")
      if [[ $scen != f ]]; then CMD+=(--per-host "$c"); fi ;;
    *) return 1 ;;
  esac
}

count_ok() {
  local tool=$1 out=$2 log=$3
  case $tool in
    oha) python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["statusCodeDistribution"].get("200",0))' "$log" 2>/dev/null || echo "?" ;;
    lychee) python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("successful", "?"))' "$out.lychee.json" 2>/dev/null || echo "?" ;;
    scrape-stdout) grep -E '^200 ' "$log" | grep -c '://' || true ;;
    *) find "$out" -type f -size +0c ! -name '*.aria2' ! -name 'manifest.jsonl' | wc -l ;;
  esac
}

nginx_ticks() { # CPU time of the nginx workers so far, in clock ticks
  local total=0 pid
  for pid in $(pgrep -P "$NGINX_PID"); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}

TSV="$RESULTS/results.tsv"
declare -A LABEL=(
  [e]="e https N=2000 C=64 (TLS 1.3, CA from the harness)"
  [f]="f many hosts N=10000 C=64 (1000 names via --resolve, per-host 4)"
  [g]="g large pages N=200 x 5MB C=16"
)
for scen in $EXTRA; do
  [[ $scen == cpu ]] && continue
  echo "== ${LABEL[$scen]}"
  for tool in oha curl-parallel wget2 aria2c lychee scrape scrape-stdout; do
    out="$W/out"
    tool_cmd "$scen" "$tool" "$out" || continue
    shown="${CMD[*]}"; shown=${shown//$W/\$W}
    (( ${#shown} > 400 )) && shown="${shown:0:400}… (1000 --resolve flags)"
    printf '%s | %s | %s\n' "${LABEL[$scen]}" "$tool" "$shown" >>"$RESULTS/commands.txt"
    n=$(wc -l <"$U/$scen.txt")
    for r in $(seq 1 "$REPEAT"); do
      rm -rf "$out" "$out.lychee.json"; mkdir -p "$out"
      log="$RESULTS/logs/$scen-$tool-$r.log"
      rc=0; t0=$EPOCHREALTIME
      ( cd "$out" || exit 1
        if [[ $scen == e ]]; then export SSL_CERT_FILE="$W/ca.pem"; fi
        exec timeout -k 5 "$RUN_LIMIT" /usr/bin/time -f '%M' -o "$W/time.txt" "${CMD[@]}" ) >"$log" 2>&1 || rc=$?
      wall=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
      rss=$(tail -n 1 "$W/time.txt" 2>/dev/null || echo "-")
      ok=$(count_ok "$tool" "$out" "$log")
      note=""; [[ $scen == f && $tool == oha ]] && note="oha: same paths on 127.0.0.1 (cannot pin names)"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$scen" "${LABEL[$scen]}" "$tool" "$n" "-" "$r" "$wall" "$rss" "$rc" "$ok" "$note" "$RUN_LIMIT" "" >>"$TSV"
      printf '   %-14s run %s: %6ss  %7s KB  rc=%s ok=%s\n' "$tool" "$r" "$wall" "$rss" "$rc" "$ok"
    done
  done
done
rm -rf "$W/out" "$W/out.lychee.json"

# ---------------------------------------------------------------- CPU account of scenario a
if [[ " $EXTRA " == *" cpu "* ]]; then
  list="$W/urls/nginx-10000.txt"
  {
    echo "| client (scenario a's list, C=64) | wall s | client CPU s (user+sys) | nginx CPU s | floor s = (client + nginx) / $(nproc) cores |"
    echo "|---|---|---|---|---|"
  } >"$RESULTS/cpu.md"
  echo "== cpu account of scenario a"
  tools="oha scrape-stdout scrape wget2"
  [[ -n $HYPER_FLOOR_BIN ]] && tools+=" hyper-floor-1t"
  [[ -n $FLOOR_BIN ]] && tools+=" reqwest-floor-1t reqwest-floor-2t reqwest-floor-1t-o reqwest-floor-2t-o"
  for tool in $tools; do
    case $tool in
      oha) CMD=(oha --no-tui --output-format json -n 10000 -c 64 --urls-from-file "$list") ;;
      scrape-stdout) CMD=("$SCRAPE_BIN" "$list" -c 64 --per-host 64 --retries 0 --no-progress) ;;
      scrape) CMD=("$SCRAPE_BIN" "$list" -c 64 --per-host 64 --retries 0 --no-progress -o "$W/out") ;;
      wget2) CMD=(wget2 --no-config -q --max-threads=64 --tries=1 -P "$W/out" -i "$list") ;;
      hyper-floor-1t) CMD=("$HYPER_FLOOR_BIN" "$list" 64) ;;
      reqwest-floor-1t) CMD=("$FLOOR_BIN" "$list" 64 1) ;;
      reqwest-floor-2t) CMD=("$FLOOR_BIN" "$list" 64 2) ;;
      reqwest-floor-1t-o) CMD=("$FLOOR_BIN" "$list" 64 1 "$W/out") ;;
      reqwest-floor-2t-o) CMD=("$FLOOR_BIN" "$list" 64 2 "$W/out") ;;
    esac
    for r in $(seq 1 "$REPEAT"); do
      rm -rf "$W/out"; mkdir -p "$W/out"
      before=$(nginx_ticks); t0=$EPOCHREALTIME
      /usr/bin/time -f '%U %S' -o "$W/time.txt" "${CMD[@]}" >/dev/null 2>&1
      wall=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
      server=$(( $(nginx_ticks) - before ))
      read -r user sys <"$W/time.txt"
      awk -v t="$tool" -v w="$wall" -v u="$user" -v s="$sys" -v n="$server" -v hz="$(getconf CLK_TCK)" -v cores="$(nproc)" \
        'BEGIN { c = u + s; g = n / hz; printf "%s\t%.3f\t%.2f\t%.2f\t%.3f\n", t, w, c, g, (c + g) / cores }'
    done >"$W/cpu-$tool.tsv"
    # the run with the median wall time
    sort -t$'\t' -k2,2n "$W/cpu-$tool.tsv" | sed -n "$(( (REPEAT + 1) / 2 ))p" |
      awk -F'\t' '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }' | tee -a "$RESULTS/cpu.md"
  done
fi
