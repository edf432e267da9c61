"""`dermq accounts`: manage hashed client accounts in the accounts file a running service reads."""

from __future__ import annotations

from pathlib import Path

import click

from api.accounts import AccountStore, generate_password


def _store(accounts_file: Path | None, data_dir: Path | None) -> AccountStore:
    from core.settings import Settings

    settings = Settings(**({"data_dir": data_dir} if data_dir else {}))
    return AccountStore(accounts_file or settings.effective_accounts_file)


_file_opt = click.option("--accounts-file", type=click.Path(path_type=Path), help="Default: the data directory's.")
_dir_opt = click.option("--data-dir", type=click.Path(path_type=Path), help="Default: $DERMQ_DATA_DIR or ./data")


@click.group()
def accounts() -> None:
    """Client accounts (argon2-hashed passwords)."""


@accounts.command("add")
@click.argument("name")
@click.option("--password", help="Default: prompt; or --generate.")
@click.option("--generate", is_flag=True, help="Generate a password and print it once.")
@click.option("--replace", is_flag=True, help="Overwrite an existing account's password.")
@_file_opt
@_dir_opt
def add(name: str, password: str | None, generate: bool, replace: bool, accounts_file: Path | None,
        data_dir: Path | None) -> None:
    store = _store(accounts_file, data_dir)
    if generate:
        password = generate_password()
    elif password is None:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        store.add(name, password, replace=replace)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"account {name!r} saved in {store.path}" + (f"; password: {password}" if generate else ""))


@accounts.command("list")
@_file_opt
@_dir_opt
def list_(accounts_file: Path | None, data_dir: Path | None) -> None:
    for name in _store(accounts_file, data_dir).names():
        click.echo(name)


@accounts.command("remove")
@click.argument("name")
@_file_opt
@_dir_opt
def remove(name: str, accounts_file: Path | None, data_dir: Path | None) -> None:
    if not _store(accounts_file, data_dir).remove(name):
        raise click.ClickException(f"no account {name!r}")
    click.echo(f"account {name!r} removed")
