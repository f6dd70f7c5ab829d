"""`llmfleet run` (also `python -m llmfleet run`): the operator process; `llmfleet explain`
and `llmfleet fleet` (also `kubectl llmfleet ...`): its decisions on the live fleet."""

from __future__ import annotations

import asyncio
import os
import sys

from llmfleet.settings import Settings, parse


def configure_logging(settings: Settings) -> None:
    import kopf  # noqa: PLC0415 - kopf's own formatters, JSON included

    kopf.configure(
        verbose=settings.verbose,
        log_format=kopf.LogFormat.JSON if settings.json_logs else kopf.LogFormat.FULL,
        log_refkey="object" if settings.json_logs else None,
    )


def run(settings: Settings) -> None:
    # kopf's own API client reads the kubeconfig from the environment.
    if settings.kubeconfig:
        os.environ["KUBECONFIG"] = settings.kubeconfig
    import kopf  # noqa: PLC0415 - only `run` needs kopf and the handlers

    from llmfleet import handlers  # noqa: PLC0415

    configure_logging(settings)
    registry = kopf.OperatorRegistry()
    handlers.register(registry, settings)
    asyncio.run(
        kopf.operator(
            registry=registry,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            standalone=True,
            liveness_endpoint=f"http://0.0.0.0:{settings.liveness_port}/healthz",
        )
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "run":
        run(parse(args[1:]))
        return 0
    from llmfleet import cli  # noqa: PLC0415 - explain and fleet need no kopf

    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main())
