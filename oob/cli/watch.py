"""``oob watch``: follow kdump on the hosts' dump targets until each dump is complete.

For use without ``oob crash`` (the NMI was sent by hand, or by ``oob nmi``): say which
dumps count as new with ``--since TIME`` (the NMI time; directories the dump server
changed since then) or ``--baseline now`` (only directories that appear from now on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from oob.cli.common import (
    InventoryOpt,
    JsonOpt,
    NotifyOpt,
    TargetsArg,
    VerboseOpt,
    handle_errors,
    load_hosts,
    report_notifications,
    setup_logging,
)
from oob.cli.dumpopts import (
    AcceptNewHostKeyOpt,
    FenceKdumpOpt,
    IntervalOpt,
    KnownHostsOpt,
    SshConfigOpt,
    SshKeyOpt,
    StallAfterOpt,
    StallGraceOpt,
    TimeoutOpt,
    parse_since,
    ssh_options,
    watch_options,
    with_stall_grace,
)
from oob.errors import DumpTimeout, UsageError

if TYPE_CHECKING:
    from oob.render.dump import DumpRenderer

EPILOG = """\b
Examples:
  oob watch web01 --since 15m -i fleet.toml   # dumps of the last 15 minutes
  oob watch @rack3 --since 03:10              # since 03:10 ($OOB_INVENTORY)
  oob watch 'node[01-04]' --baseline now      # only dumps new from now on
  # no inventory: the host named on the line, on this dump target:
  oob watch web01 --address 10.0.0.7 --since 15m \\
    --target ssh://kdump@dumps/var/crash"""


def watch_command(
    targets: TargetsArg = None,
    inventory: InventoryOpt = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="TIME",
            help="Count dump directories changed since TIME (the NMI): 2024-05-02T03:10, 03:10, or 15m (ago).",
        ),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline", metavar="now", help="'now': count only dump directories that appear from now on."
        ),
    ] = None,
    timeout: TimeoutOpt = "30m",
    interval: IntervalOpt = 0.5,
    stall_after: StallAfterOpt = "2m",
    stall_grace: StallGraceOpt = "0",
    fence_kdump: FenceKdumpOpt = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            metavar="URL",
            help="Dump target for every host (ssh://USER@SERVER[:PORT]/PATH or file:///PATH), "
            "instead of the inventory's dump.target. Without an inventory, each TARGET is then "
            "a host name, watched on this dump target.",
        ),
    ] = None,
    layout: Annotated[
        str | None,
        typer.Option(
            "--layout",
            metavar="LAYOUT",
            help="auto, rhel, suse, suse-old or debian, instead of the inventory's.",
        ),
    ] = None,
    known_hosts: KnownHostsOpt = None,
    accept_new_host_key: AcceptNewHostKeyOpt = False,
    ssh_key: SshKeyOpt = None,
    ssh_config: SshConfigOpt = None,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            metavar="ADDRESS",
            help="Without an inventory (one host): its address, as its dump directories name it.",
        ),
    ] = None,
    notify: NotifyOpt = None,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Watch the hosts' dump targets until each new kdump dump is complete.

    Reports each dump directory as it appears, its progress, and when it is complete (by
    its distribution's rule), stalled, failed or late, with the panic lines from its
    kernel log. Several new dumps for a host: the newest is followed, the others named.
    A dump without growth for --stall-after ends stalled (--stall-grace waits longer). Exit 0 when every dump is complete, 5 otherwise, 2 for bad input, 130 when
    stopped by Ctrl-C (each host is then reported as interrupted, with where it was).
    """
    setup_logging(verbose)
    with handle_errors(verbose):
        from oob.dump.layouts import families_for
        from oob.dump.targets import parse_target

        if (since is None) == (baseline is None):
            raise UsageError(
                "say which dumps are new: --since TIME (when the NMI was sent, e.g. --since 15m) or "
                "--baseline now (only dumps that appear from now on)"
                if since is None
                else "--since and --baseline exclude each other"
            )
        if baseline is not None and baseline != "now":
            raise UsageError(f"--baseline takes only 'now', not '{baseline}' (for a time, use --since)")
        since_epoch = parse_since(since) if since is not None else None
        options = with_stall_grace(
            watch_options(interval=interval, stall_after=stall_after, timeout=timeout), stall_grace
        )
        if target is not None:
            parse_target(target)
        if layout is not None:
            families_for(layout)
        ssh = ssh_options(known_hosts, accept_new_host_key, ssh_key, ssh_config)
        hosts = _hosts(inventory, targets or [], target=target, layout=layout, address=address)
        hosts = [
            replace(
                host,
                dump=replace(host.dump, target=target or host.dump.target, layout=layout or host.dump.layout),
            )
            for host in hosts
        ]
        from oob.render.dump import DUMP_EVENTS, JsonLines, LiveConsole

        renderer: DumpRenderer = (
            JsonLines(DUMP_EVENTS | {"dump_interrupted"})
            if json_output
            else LiveConsole([h.name for h in hosts])
        )
        # imported here: `oob --help` should not pay for asyncio
        import asyncio

        from oob.notify import notifier_for

        notifier = notifier_for(notify, "oob watch", hosts)
        try:
            results = asyncio.run(
                _watch(hosts, options, ssh, since_epoch, renderer, notifier.wrap(renderer.event), fence_kdump)
            )
        except asyncio.CancelledError:  # SIGTERM/SIGHUP before the watch had begun
            raise KeyboardInterrupt from None
        finally:
            report_notifications(notifier, renderer)
        interrupted = [result.exit_code for result in results if result.state.value == "interrupted"]
        raise typer.Exit(
            interrupted[0]
            if interrupted
            else 0
            if all(result.ok for result in results)
            else DumpTimeout.exit_code
        )


def _hosts(
    inventory: list[Path] | None,
    targets: list[str],
    *,
    target: str | None,
    layout: str | None,
    address: str | None,
) -> list[Any]:
    """From the inventory; or, with --target and no inventory at all, the hosts named on the
    command line (names, not selectors: there is nothing to select from)."""
    import os

    from oob.inventory import ENV_VAR
    from oob.inventory.adhoc import HostFlags, watch_host_from_flags

    if not targets:
        raise UsageError("which hosts? TARGET... (names, globs, @group, ranges, a,b or all)")
    if inventory or os.environ.get(ENV_VAR, "").strip() or target is None:
        if address is not None:
            raise UsageError("--address is for a host without an inventory (with --target)")
        return load_hosts(inventory, targets)
    names = [name for item in targets for name in item.split(",") if name]
    if address is not None and len(names) != 1:
        raise UsageError("--address describes one host: name only that one")
    flags = HostFlags(address=address, target=target, layout=layout)
    return [watch_host_from_flags(name, flags) for name in names]


async def _watch(
    hosts: Sequence[Any],
    options: Any,
    ssh: Any,
    since: float | None,
    renderer: DumpRenderer,
    emit: Any,
    fence_kdump: str | None = None,
) -> list[Any]:
    import asyncio
    import signal

    # SIGTERM and SIGHUP end the watch as Ctrl-C does: asyncio.run cancels this task on
    # SIGINT, and the watch then reports where each host was
    main = asyncio.current_task()
    if main is not None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, main.cancel)
    from oob.signals.fence_kdump import listener_for

    listener = listener_for(hosts, fence_kdump, emit=emit)
    if listener is not None:
        await listener.start()
    try:
        return await _follow(hosts, options, ssh, since, renderer, emit)
    finally:
        if listener is not None:
            await listener.stop()


async def _follow(
    hosts: Sequence[Any], options: Any, ssh: Any, since: float | None, renderer: DumpRenderer, emit: Any
) -> list[Any]:
    import asyncio

    from oob.dump.watcher import DumpWatcher

    async with DumpWatcher(hosts, options, ssh=ssh, emit=emit) as watcher:
        # --timeout counts from now: the first listing is inside it too
        started = watcher.clock()
        base = await watcher.take_baseline(since, deadline=started + options.timeout)
        with renderer:
            try:
                results = await watcher.watch(base, started=started)
            except asyncio.CancelledError:
                # Ctrl-C (asyncio.run cancels this task): report where each host was
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                watcher.interrupt()
                results = watcher.results()
        renderer.report(results)
        return results
