"""`labelloop up`: the five services as local processes until Ctrl-C, on the ports you choose.

Ports: the defaults (gRPC 50051-50055, metrics 9101-9105), `--port-base N` (gRPC N..N+4 in the
order store, trainer, scorer, selector, controller; metrics N+5..N+9), `--free-ports`, and
per-service `--store-port` ... `--controller-port` over any of these.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import signal
import socket
import sys
import threading
from pathlib import Path

from labelloop.cli.local import SERVICES, LocalCluster, Ports, ServiceFailed, default_ports, free_ports
from labelloop.cli.secure import default_state_dir, prepare
from labelloop.core.config import DEFAULT_PORTS, SecurityConfig, Settings


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


def import_roots(args: argparse.Namespace, settings: Settings) -> list[Path]:
    """The folders the store may import from: --import-root, else LABELLOOP_IMPORT_ROOTS, else the
    current folder (where `labelloop datasets create --manifest ./...` finds its files)."""
    if args.import_root:
        return [Path(root).absolute() for root in args.import_root]
    return list(settings.import_roots) or [Path.cwd()]


def secure_hint(security: SecurityConfig) -> str:
    """What other commands need to reach the secured services (the token by file, never printed)."""
    assert security.tokens_file is not None
    admin_token = security.tokens_file.parent / "admin.token"
    env = [f"LABELLOOP_TLS_CA={security.tls_ca}", f'LABELLOOP_TOKEN="$(cat {admin_token})"']
    if security.client_auth:
        env += [
            f"LABELLOOP_TLS_CERT={security.tls_cert}",
            f"LABELLOOP_TLS_KEY={security.tls_key}",
            "LABELLOOP_TLS_CLIENT_AUTH=true",
        ]
    return (
        f"TLS and tokens on (state in {security.tokens_file.parent}); other commands need:\n"
        f"  export {' '.join(env)}\n"
        "a token for each annotator: labelloop tokens create NAME --role annotator --annotator ID "
        f"--file {security.tokens_file}"
    )


def cmd_up(args: argparse.Namespace) -> int:
    """Starts the five services and keeps them running until Ctrl-C or SIGTERM."""
    settings = Settings.from_env()
    storage = settings.storage
    if args.data:
        storage = settings.with_storage(root=Path(args.data).absolute()).storage
    log_dir = Path(args.log_dir or (Path(storage.root) / "logs" if storage.backend == "local" else "logs"))
    if args.secure or args.mtls:
        state = Path(args.state_dir).absolute() if args.state_dir else default_state_dir(storage.root)
        settings = dataclasses.replace(settings, security=prepare(state, client_auth=args.mtls))
    ports = ports_from(args)
    check_free(ports, settings.bind_host)
    cluster = LocalCluster(
        storage=storage,
        log_dir=log_dir,
        ports=ports,
        settings=settings,
        import_roots=import_roots(args, settings),
    )
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
        if args.secure or args.mtls:
            print(secure_hint(settings.security))
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
        "--import-root",
        action="append",
        metavar="FOLDER",
        help="a folder the store may read manifests and images from (repeatable; default: "
        "LABELLOOP_IMPORT_ROOTS, else the current folder); nothing outside them is read",
    )
    up.add_argument(
        "--secure",
        action="store_true",
        help="TLS on every port and tokens: makes a local CA, certificates and an admin token in "
        "--state-dir once, and prints what other commands need",
    )
    up.add_argument("--mtls", action="store_true", help="--secure, and callers need a client certificate too")
    up.add_argument(
        "--state-dir",
        metavar="FOLDER",
        help="where --secure keeps its CA, certificates and tokens (default: labelloop-secure by the data)",
    )
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
