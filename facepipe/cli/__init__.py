"""The ``facepipe`` command line. Commands only parse options and call :mod:`facepipe.api`.

User errors end in one line on stderr and a non-zero exit (see :mod:`facepipe.errors` for the
exit codes); ``--debug`` shows the traceback. Nothing imports this package: it assembles.
"""

from __future__ import annotations

import json

import click

from facepipe import __version__
from facepipe.cli.analyze import analyze_command
from facepipe.cli.deblur import deblur_command
from facepipe.cli.edit import demo, edit, prepare, preview, probe
from facepipe.cli.evaluate import eval_command
from facepipe.cli.faces import faces_command
from facepipe.cli.farm import assemble, farm
from facepipe.cli.train import train
from facepipe.cli.weights import weights_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="facepipe")
@click.option("--debug", is_flag=True, help="Show full tracebacks for every command.")
def main(debug: bool) -> None:
    """Change an actor's facial expression in a finished shot."""


for command in (probe, prepare, edit, preview, assemble, demo):
    main.add_command(command)
main.add_command(weights_group, "weights")
main.add_command(faces_command, "faces")
main.add_command(analyze_command, "analyze")
main.add_command(eval_command, "eval")
main.add_command(farm, "farm")
main.add_command(train, "train")
main.add_command(deblur_command, "deblur")
