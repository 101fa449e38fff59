# bash completion for postern(1): subcommands, options, and the server
# names of the configuration (-c FILE, else the default places).

# -c FILE's FILE, if the line has one.
_postern_opt_c() {
	local i
	for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
		if [[ ${COMP_WORDS[i]} == -c ]]; then
			printf '%s\n' "${COMP_WORDS[i + 1]/#\~/$HOME}"
			return 0
		fi
	done
	return 1
}

_postern_config() {
	_postern_opt_c && return
	if [[ -n ${POSTERN_HOME:-} ]]; then
		printf '%s\n' "$POSTERN_HOME/postern.conf"
	elif [[ -n ${XDG_CONFIG_HOME:-} ]]; then
		printf '%s\n' "$XDG_CONFIG_HOME/postern/postern.conf"
	else
		printf '%s\n' "$HOME/.config/postern/postern.conf"
	fi
}

# server "NAME" { ... }: the names, one per line.
_postern_servers() {
	local conf
	conf=$(_postern_config)
	[[ -r $conf ]] || return
	sed -n 's/^[[:space:]]*server[[:space:]]*"\([^"]*\)".*/\1/p' "$conf"
}

# The server's client names: client "NAME" in its postern.conf (-c FILE,
# else $POSTERN_HOME, else /etc/postern) and its clients.d/*.conf.
_postern_clients() {
	local conf dir
	conf=$(_postern_opt_c) || conf=${POSTERN_HOME:-/etc/postern}/postern.conf
	dir=${conf%/*}
	cat "$conf" "$dir"/clients.d/*.conf 2>/dev/null |
		sed -n 's/^[[:space:]]*client[[:space:]]*"\([^"]*\)".*/\1/p'
}

# gate SUB ...: $1 is the index of "gate" in COMP_WORDS.
_postern_gate() {
	local sub="" j
	for ((j = $1 + 1; j < COMP_CWORD; j++)); do
		if [[ ${COMP_WORDS[j]} != -* ]]; then
			sub=${COMP_WORDS[j]}
			break
		fi
	done
	case $sub in
	"")
		mapfile -t COMPREPLY < <(compgen -W "init allow revoke ls status apply-nft" -- "$cur")
		;;
	init)
		[[ $cur == -* ]] && mapfile -t COMPREPLY < <(compgen -W "--egress" -- "$cur")
		;;
	allow)
		[[ $cur == -* ]] && mapfile -t COMPREPLY < <(compgen -W "--open --expires" -- "$cur")
		;;
	revoke)
		[[ $prev == revoke ]] &&
			mapfile -t COMPREPLY < <(compgen -W "$(_postern_clients)" -- "$cur")
		;;
	apply-nft)
		[[ $cur == -* ]] && mapfile -t COMPREPLY < <(compgen -W "--confirm-within" -- "$cur")
		;;
	esac
}

_postern() {
	local cur prev cmd i
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	COMPREPLY=()
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-c) ((i++)) ;;
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	if [[ $prev == -c ]]; then
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
	fi
	if [[ -z ${cmd:-} ]]; then
		if [[ $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "-c -h --help -V --version" -- "$cur")
		else
			mapfile -t COMPREPLY < <(compgen -W "genkey pubkey genpsk init add-server rm-server ls gate knock pipe forward socks doctor" -- "$cur")
		fi
		return
	fi
	case $cmd in
	knock)
		if [[ $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "--all --target --wait" -- "$cur")
		elif [[ $prev != --target ]]; then
			mapfile -t COMPREPLY < <(compgen -W "$(_postern_servers)" -- "$cur")
		fi
		;;
	pipe)
		# pipe NAME PORT: the name first
		if [[ $prev == pipe ]]; then
			mapfile -t COMPREPLY < <(compgen -W "$(_postern_servers)" -- "$cur")
		fi
		;;
	forward)
		if [[ $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "-L" -- "$cur")
		elif [[ $prev == forward ]]; then
			mapfile -t COMPREPLY < <(compgen -W "$(_postern_servers)" -- "$cur")
		fi
		;;
	doctor)
		mapfile -t COMPREPLY < <(compgen -W "$(_postern_servers)" -- "$cur")
		;;
	rm-server)
		[[ $prev == rm-server ]] &&
			mapfile -t COMPREPLY < <(compgen -W "$(_postern_servers)" -- "$cur")
		;;
	add-server)
		[[ $cur == -* ]] &&
			mapfile -t COMPREPLY < <(compgen -W "--tunnel-port --knock-port" -- "$cur")
		;;
	gate)
		_postern_gate "$i"
		;;
	esac
}
complete -F _postern postern
