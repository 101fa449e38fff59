# bash completion for postern(1): subcommands, options, and the server
# names of the configuration (-c FILE, else the default places).

_postern_config() {
	local i
	for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
		if [[ ${COMP_WORDS[i]} == -c ]]; then
			printf '%s\n' "${COMP_WORDS[i + 1]/#\~/$HOME}"
			return
		fi
	done
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
			mapfile -t COMPREPLY < <(compgen -W "genkey pubkey genpsk init add-server rm-server ls knock pipe forward" -- "$cur")
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
	rm-server)
		[[ $prev == rm-server ]] &&
			mapfile -t COMPREPLY < <(compgen -W "$(_postern_servers)" -- "$cur")
		;;
	add-server)
		[[ $cur == -* ]] &&
			mapfile -t COMPREPLY < <(compgen -W "--tunnel-port --knock-port" -- "$cur")
		;;
	esac
}
complete -F _postern postern
