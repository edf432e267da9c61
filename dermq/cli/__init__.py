"""The `dermq` command."""

from __future__ import annotations

import click

from dermq import __version__
from dermq.cli.accounts import accounts
from dermq.cli.bench import bench
from dermq.cli.bench_batching import batching
from dermq.cli.bench_gate import gate
from dermq.cli.bench_polling import polling
from dermq.cli.bench_segmentation import segmentation
from dermq.cli.models import models
from dermq.cli.phantoms import phantoms
from dermq.cli.serve import api, up, worker
from dermq.cli.submit import submit
from dermq.cli.train import train


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dermq")
def main() -> None:
    """dermq: dermatology image analysis service."""


bench.add_command(segmentation)
bench.add_command(batching)
bench.add_command(gate)
bench.add_command(polling)
for command in (up, api, worker, accounts, submit, bench, models, train, phantoms):
    main.add_command(command)
