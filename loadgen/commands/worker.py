"""`inferload worker --master HOST[:PORT]`: a load-generating worker that joins a master started elsewhere with
`inferload run|sweep|peak|overload ... --expect-workers N` (loadgen.engine.fleet). It needs no scenario file nor
data: the master sends the scenario and the files it names before every run. Imports locust only when it runs.
"""

from __future__ import annotations

import logging

import typer


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker(
        master: str = typer.Option(
            ...,
            "--master",
            envvar="INFERLOAD_MASTER",
            help="The master's address, HOST[:PORT] (port default 5557): where `--expect-workers` listens.",
        ),
        connect_timeout: float = typer.Option(
            60.0, "--connect-timeout", min=1.0, help="Give up (exit 3) if no master answers within this (s)."
        ),
        log_level: str = typer.Option("warning", "--log-level", help="critical|error|warning|info|debug."),
    ) -> None:
        """Generate load for a master on this or another machine, run after run, until the master quits."""
        from loadgen.engine.fleet import DEFAULT_MASTER_PORT, parse_hostport

        try:
            host, port = parse_hostport(master, "127.0.0.1", DEFAULT_MASTER_PORT)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--master") from None
        logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        from loadgen.engine.fleet_worker import serve

        raise typer.Exit(serve(host, port, connect_timeout))
