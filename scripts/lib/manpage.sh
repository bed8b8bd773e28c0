#!/usr/bin/env bash
# Writes postclassd(8) in roff to stdout from a built binary's own --help text, command by
# command, so the man page says exactly what --help says.
# Usage: scripts/lib/manpage.sh BINARY VERSION
set -euo pipefail
BIN=$1
VERSION=$2

# --help text as a roff no-fill block: backslashes escaped, control characters at a line's start
# made literal.
verbatim() {
    printf '.nf\n'
    sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
    printf '.fi\n'
}

# The subcommands, from the SUBCOMMANDS section of the top-level help.
commands="$(COLUMNS=100 "$BIN" --help | awk '/^SUBCOMMANDS:/ {on=1; next} on && /^  [a-z]/ {print $1} on && /^$/ {on=0}')"
[[ -n "$commands" ]] || { echo "manpage.sh: no subcommands in $BIN --help" >&2; exit 1; }

cat <<ROFF
.TH POSTCLASSD 8 "$(date -u +%Y-%m-%d)" "postclassd $VERSION" "System Administration"
.SH NAME
postclassd \\- streaming multimodal post classifier for Kafka
.SH SYNOPSIS
.B postclassd
.RI [ command ]
.RI [ options ]
.SH DESCRIPTION
ROFF
COLUMNS=100 "$BIN" --help | verbatim
echo ".SH COMMANDS"
for command in $commands; do
    [[ "$command" == "help" ]] && continue
    printf '.SS postclassd %s\n' "${command%% *}"
    COLUMNS=100 "$BIN" help "$command" | verbatim
done
cat <<'ROFF'
.SH FILES
.TP
.I /etc/postclassd/postclassd.env
Settings for the service (POSTCLASSD_* variables); postclassd check reads it too.
.TP
.I /etc/postclassd/credentials/
Kafka secrets, passed to the service by LoadCredential=: kafka-sasl-password, kafka-tls-key,
and optionally kafka-tls-key-password and kafka-oauth-client-secret.
.TP
.I /usr/share/postclassd/models/default
The default model bundle (package postclassd-models).
.TP
.I /lib/systemd/system/postclassd.service
The unit: installed, neither enabled nor started.
.SH EXIT STATUS
run: 0 after a clean stop, 1 when it cannot start, 2 on a fatal Kafka error.
check: 0 when every check passes, 1 otherwise.
.SH SEE ALSO
.BR systemctl (1),
.BR journalctl (1),
/usr/share/doc/postclassd/README.md
ROFF
