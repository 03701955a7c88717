"""Hosts on a private network, made of Linux network namespaces and veth pairs.

Each host is a network namespace with its loopback and one interface (``eth0``) on a private
/24; a fourth namespace holds the bridge that joins them, so nothing of the machine's own network
carries the hosts' traffic, and cutting a host's cable is ``ip link set <port> down`` on the
bridge's side. Everything is made with Debian's iproute2 and removed by :meth:`Network.remove`.

A namespace is entered in two ways: a command runs through ``ip netns exec``, and a Python call
runs on a thread that joined the namespace (:func:`call_in`), so that the session's server
helpers (PostgreSQL, ``mlflow server``, their health checks) start their processes and open
their sockets there unchanged: a child process inherits its starting thread's namespace.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

SUBNET = "10.213.7"  # the hosts' /24; private, and only ever seen inside the namespaces
CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
IP_TIMEOUT = 30  # seconds for one `ip` command


class NetworkUnavailable(Exception):
    """Namespaces cannot be made here (not root, no iproute2, or the kernel refuses)."""


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT)
    if result.returncode != 0:
        raise NetworkUnavailable(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")


@dataclass
class Host:
    """One namespace: its name and its address on the private network."""

    namespace: str
    address: str
    port: str  # its cable's end on the bridge (in the switch namespace)

    def command(self, *args: str) -> list[str]:
        """``args`` run inside this host."""
        return ["ip", "netns", "exec", self.namespace, *args]


@dataclass
class Network:
    """A switch and the hosts plugged into it."""

    prefix: str
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def switch(self) -> str:
        return f"{self.prefix}-switch"

    @classmethod
    def create(cls, names: list[str]) -> Network:
        """The switch and one host per name (addresses .1, .2, … in order).

        Raises:
            NetworkUnavailable: with the reason, after removing whatever was made.
        """
        if os.geteuid() != 0:
            raise NetworkUnavailable("network namespaces need root")
        network = cls(prefix=f"agentnn{os.getpid()}")
        try:
            _ip("netns", "add", network.switch)
            _ip("-n", network.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", network.switch, "link", "set", "br0", "up")
            for number, name in enumerate(names, start=1):
                host = Host(f"{network.prefix}-{name}", f"{SUBNET}.{number}", f"port{number}")
                _ip("netns", "add", host.namespace)
                network.hosts[name] = host
                _ip("link", "add", "eth0", "netns", host.namespace, "type", "veth",
                    "peer", "name", host.port, "netns", network.switch)
                _ip("-n", network.switch, "link", "set", host.port, "master", "br0")
                _ip("-n", network.switch, "link", "set", host.port, "up")
                _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
                _ip("-n", host.namespace, "link", "set", "eth0", "up")
                _ip("-n", host.namespace, "link", "set", "lo", "up")
        except (NetworkUnavailable, OSError, subprocess.SubprocessError) as error:
            network.remove()
            if isinstance(error, NetworkUnavailable):
                raise
            raise NetworkUnavailable(f"iproute2 failed: {error}") from error
        return network

    def cut(self, name: str) -> None:
        """Pull the host's cable out at the switch: its packets go nowhere, nothing is reset."""
        _ip("-n", self.switch, "link", "set", self.hosts[name].port, "down")

    def plug(self, name: str) -> None:
        _ip("-n", self.switch, "link", "set", self.hosts[name].port, "up")

    def remove(self) -> None:
        """Delete every namespace made (their veth pairs go with them)."""
        for namespace in [h.namespace for h in self.hosts.values()] + [self.switch]:
            if os.path.exists(os.path.join(NETNS_DIR, namespace)):
                subprocess.run(["ip", "netns", "del", namespace], capture_output=True,
                               timeout=IP_TIMEOUT)


def call_in(host: Host, function: Callable[[], T]) -> T:
    """Run ``function`` on a thread that joined ``host``'s network namespace; its result.

    Sockets it opens, and processes it starts, live in that namespace.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    outcome: dict[str, object] = {}

    def joined() -> None:
        try:
            fd = os.open(os.path.join(NETNS_DIR, host.namespace), os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"setns {host.namespace}: {os.strerror(errno)}")
            finally:
                os.close(fd)
            outcome["value"] = function()
        except BaseException as error:  # handed to the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=joined, name=f"in-{host.namespace}")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
