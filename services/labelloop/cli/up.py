"""`labelloop up`: the five services as local processes until Ctrl-C, on the ports you choose.

Ports: the defaults (gRPC 50051-50055, metrics 9101-9105), `--port-base N` (gRPC N..N+4 in the
order store, trainer, scorer, selector, controller; metrics N+5..N+9), `--free-ports`, and
per-service `--store-port` ... `--controller-port` over any of these.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
import threading
from pathlib import Path

from labelloop.cli.local import SERVICES, LocalCluster, Ports, ServiceFailed, default_ports, free_ports
from labelloop.core.config import DEFAULT_PORTS, Settings


def ports_from(args: argparse.Namespace) -> dict[str, Ports]:
    """The ports `up`'s options ask for; ValueError (naming the option to change) for a bad set."""
    if args.port_base is not None and args.free_ports:
        raise ValueError("--port-base and --free-ports exclude each other: give one of them")
    if args.port_base is not None:
        if not 1024 <= args.port_base <= 65535 - 2 * len(SERVICES):
            raise ValueError(
                f"--port-base {args.port_base}: give a port from 1024 to {65535 - 2 * len(SERVICES)}"
            )
        count = len(SERVICES)
        ports = {s: Ports(args.port_base + i, args.port_base + count + i) for i, s in enumerate(SERVICES)}
    else:
        ports = free_ports() if args.free_ports else default_ports()
    for service in SERVICES:
        given = getattr(args, f"{service}_port")
        if given is not None:
            if not 1 <= given <= 65535:
                raise ValueError(f"--{service}-port {given}: give a port from 1 to 65535")
            ports[service] = Ports(given, ports[service].metrics)
    used: dict[int, str] = {}
    for service, pair in ports.items():
        for port, what in ((pair.grpc, service), (pair.metrics, f"{service} metrics")):
            if port in used:
                raise ValueError(
                    f"port {port} is given to both {used[port]} and {what}: choose distinct ports"
                )
            used[port] = what
    return ports


def check_free(ports: dict[str, Ports], host: str) -> None:
    """ValueError naming the options to change when a port is taken (another `labelloop up`?)."""
    for service, pair in ports.items():
        for port, what in ((pair.grpc, service), (pair.metrics, f"{service} metrics")):
            with socket.socket() as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    raise ValueError(
                        f"port {port} ({what}) is in use, perhaps by another `labelloop up`: "
                        "choose others with --port-base N, --free-ports or --" + f"{service}-port"
                    ) from None


def cmd_up(args: argparse.Namespace) -> int:
    """Starts the five services and keeps them running until Ctrl-C or SIGTERM."""
    settings = Settings.from_env()
    storage = settings.storage
    if args.data:
        storage = settings.with_storage(root=Path(args.data).absolute()).storage
    log_dir = Path(args.log_dir or (Path(storage.root) / "logs" if storage.backend == "local" else "logs"))
    ports = ports_from(args)
    check_free(ports, settings.bind_host)
    cluster = LocalCluster(storage=storage, log_dir=log_dir, ports=ports, settings=settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        cluster.start()
    except ServiceFailed as error:
        first = str(error).splitlines()[0]
        raise ValueError(f"{first} (see the log for why)") from None
    try:
        for service in cluster.services:
            print(f"{service:>10}  {cluster.address(service)}  metrics {cluster.metrics_url(service)}")
        where = storage.root if storage.backend == "local" else f"s3://{storage.bucket} at {storage.endpoint}"
        print(f"storage: {where}; logs: {log_dir}. Ctrl-C stops everything.")
        if (
            ports["controller"].grpc != DEFAULT_PORTS["controller"]
            or ports["store"].grpc != DEFAULT_PORTS["store"]
        ):
            print(
                f"other commands need: --controller {cluster.address('controller')} "
                f"--store {cluster.address('store')}"
            )
        sys.stdout.flush()
        while not stop.wait(1.0):
            if failed := cluster.failed():
                print(f"error: {', '.join(failed)} exited; see {log_dir}. Stopping.", file=sys.stderr)
                return 1
        return 0
    finally:
        with contextlib.suppress(Exception):
            cluster.stop()


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds `up` to the `labelloop` parser."""
    up = commands.add_parser(
        "up",
        help="run the five services locally until Ctrl-C",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    up.add_argument("--data", help="local store folder (default: LABELLOOP_STORAGE_ROOT)")
    up.add_argument("--log-dir", help="service logs (default: DATA/logs)")
    up.add_argument(
        "--free-ports", action="store_true", help="pick free ports instead of 50051-50055 and 9101-9105"
    )
    up.add_argument(
        "--port-base",
        type=int,
        metavar="N",
        help="gRPC ports N..N+4 (store, trainer, scorer, selector, controller), metrics N+5..N+9",
    )
    for service in SERVICES:
        up.add_argument(
            f"--{service}-port",
            type=int,
            metavar="PORT",
            help=f"the {service}'s gRPC port (over the default, --port-base or --free-ports)",
        )
    up.set_defaults(func=cmd_up)
