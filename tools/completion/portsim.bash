# bash completion for portsim (installed as share/bash-completion/completions/portsim)
_portsim() {
  local cur prev cmd
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  cmd=${COMP_WORDS[1]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "run check ss sweep merge heatmap help --help --version" -- "$cur"))
    return
  fi
  case $prev in
    --trace|-t|--out|-o|--timeseries-out|--pcap|--perfetto|--png) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --trace-level) COMPREPLY=($(compgen -W "all calls" -- "$cur")); return ;;
    --state) COMPREPLY=($(compgen -W "established syn-sent syn-recv fin-wait-1 fin-wait-2 time-wait closed close-wait last-ack listening closing all connected synchronized bucket big" -- "$cur")); return ;;
    --explain-filter) COMPREPLY=($(compgen -W "sock= errno= from= to=" -- "$cur")); compopt -o nospace; return ;;
  esac
  local opts
  case $cmd in
    run) opts="--trace --trace-level --trace-sample --seed --explain --explain-filter --ss-at --host --state --summary --pcap --perfetto --quiet --no-limits --help" ;;
    check) opts="--no-limits --help" ;;
    ss) opts="--at --host --state --summary --seed --help" ;;
    sweep) opts="--vary --seeds --out --jobs --shard --runs --list-runs --timeseries --timeseries-out --help" ;;
    merge) opts="--shards --out --timeseries-out --help" ;;
    heatmap) opts="--out --png --host --dest --ports --rows --columns --seed --no-limits --help" ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -X '!*.json' -- "$cur") $(compgen -d -- "$cur"))
  fi
}
complete -F _portsim portsim
