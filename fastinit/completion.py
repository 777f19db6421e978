"""Shell completion scripts for the command line, generated from its argparse parser (so a new
subcommand or option completes without anyone editing a script).

    eval "$(fastinit completion bash)"                 # ~/.bashrc
    fastinit completion zsh > "${fpath[1]}/_fastinit"   # zsh (or: source <(fastinit completion zsh))

Completes subcommands, each subcommand's options, the choices of a positional (``fastinit demo
<TAB>``) and otherwise file names (specs, databases, output directories).
"""
from __future__ import annotations

import argparse
import shlex

SHELLS = ("bash", "zsh")


def commands(parser: argparse.ArgumentParser) -> dict:
    """{subcommand: {"help", "options" [(flags, help, takes a value)], "positionals" [(name,
    help, choices)]}} read from ``parser``."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help or "" for c in sub._choices_actions}
    out = {}
    for name, sp in sub.choices.items():
        fmt = sp._get_formatter()
        options, positionals = [], []
        for a in sp._actions:
            text = fmt._expand_help(a) if a.help and a.help is not argparse.SUPPRESS else ""
            if a.option_strings:
                options.append((tuple(a.option_strings), text, a.nargs != 0))
            else:
                positionals.append((a.dest, text, tuple(a.choices or ()), a.nargs))
        out[name] = {"help": helps.get(name, ""), "options": options,
                     "positionals": positionals}
    return out


def bash(parser: argparse.ArgumentParser, prog: str = "fastinit") -> str:
    cmds = commands(parser)
    top = [f for a in parser._actions for f in a.option_strings]     # -h --help --version
    fn = "_" + prog.replace("-", "_")
    cases = []
    for name, c in cmds.items():
        flags = " ".join(f for o in c["options"] for f in o[0])
        valued = "|".join(f for o in c["options"] if o[2] for f in o[0])
        choices = " ".join(ch for p in c["positionals"] for ch in p[2])
        cases.append(
            f"        {shlex.quote(name)})\n"
            + (f"            case \"$prev\" in {valued}) return ;; esac\n" if valued else "")
            + f"            if [[ \"$cur\" == -* ]]; then words={shlex.quote(flags)}; "
              f"else words={shlex.quote(choices)}; fi ;;")
    return f"""# {prog} bash completion: eval "$({prog} completion bash)"
{fn}() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" words=""
    COMPREPLY=()
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=( $(compgen -W {shlex.quote(" ".join([*cmds, *top]))} -- "$cur") )
        return
    fi
    case "${{COMP_WORDS[1]}}" in
{chr(10).join(cases)}
    esac
    COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}}
complete -o default -o bashdefault -F {fn} {prog}
"""


def _sq(text: str) -> str:
    """Text inside single quotes in a shell script, on one line."""
    return " ".join(text.split()).replace("'", "'\\''")


def _zq(text: str) -> str:
    """Text inside a single-quoted zsh _arguments spec (or a _describe name)."""
    for ch in "\\[]:":
        text = text.replace(ch, "\\" + ch)
    return _sq(text)


def zsh(parser: argparse.ArgumentParser, prog: str = "fastinit") -> str:
    cmds = commands(parser)
    fn = "_" + prog.replace("-", "_")
    described = "\n".join(f"    '{_zq(n)}:{_sq(c['help'])}'" for n, c in cmds.items())
    cases = []
    for name, c in cmds.items():
        specs = []
        for flags, text, valued in c["options"]:
            value = ":value:_files" if valued else ""
            group = f"'({' '.join(flags)})'" if len(flags) > 1 else ""
            names = "{" + ",".join(flags) + "}" if len(flags) > 1 else flags[0]
            specs.append(f"{group}{names}'[{_zq(text)}]{value}'")
        for i, (dest, text, choices, nargs) in enumerate(c["positionals"], 1):
            action = f"({' '.join(_zq(ch) for ch in choices)})" if choices else "_files"
            where = "*" if nargs in ("*", "+") else str(i)
            specs.append(f"'{where}:{_zq(dest)}:{action}'")
        cases.append(f"    {name}) _arguments -s \\\n        " + " \\\n        ".join(specs)
                     + " ;;")
    return f"""#compdef {prog}
# {prog} zsh completion: {prog} completion zsh > "${{fpath[1]}}/_{prog}", or
# source <({prog} completion zsh)
{fn}() {{
  local -a commands
  commands=(
{described}
  )
  if (( CURRENT == 2 )); then
    _describe -t commands '{prog} command' commands
    return
  fi
  local cmd=$words[2]
  shift words
  (( CURRENT-- ))
  case $cmd in
{chr(10).join(cases)}
  esac
}}
if [ "$funcstack[1]" = "{fn}" ]; then
  {fn} "$@"
else
  compdef {fn} {prog}
fi
"""


def script(parser: argparse.ArgumentParser, shell: str, prog: str = "fastinit") -> str:
    """The completion script for ``shell`` ("bash" or "zsh")."""
    return {"bash": bash, "zsh": zsh}[shell](parser, prog)
