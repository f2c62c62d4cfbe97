"""`pixelsift completion SHELL`: tab completion of commands, options and their choices for bash, zsh or
tcsh, as a script generated from the parser itself (shtab), so it always matches this version."""

from __future__ import annotations

import argparse

SHELLS = ("bash", "zsh", "tcsh")
EXAMPLES = """examples:
  eval "$(pixelsift completion bash)"                            in ~/.bashrc: completion in every shell
  pixelsift completion zsh > ~/.zfunc/_pixelsift                 zsh: a file on your $fpath
  pixelsift completion bash | sudo tee /etc/bash_completion.d/pixelsift    for every user

The script is static: nothing runs when you press TAB (completion stays instant), and running this
command again after an upgrade brings the new commands and options.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "completion",
        help="tab completion for bash, zsh or tcsh",
        description="Print a shell script that completes pixelsift's commands, options and choices.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # imported when the command runs: `pixelsift --help` stays fast
    import shtab

    from pixelsift.cli import build_parser

    print(shtab.complete(build_parser(), shell=args.shell))
    return 0
