"""A model served to an i-PI server through ASE's socket client, with the checks ASE leaves out:
the server must speak the i-PI protocol and simulate the start structure's system in its atom
order, and no connect or receive waits longer than a timeout."""

from __future__ import annotations

import contextlib
import math
import os
import socket
import stat
import time
from typing import TextIO

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import all_changes
from ase.calculators.socketio import IPIProtocol, SocketClient, SocketClosed, actualunixsocketname
from ase.data import chemical_symbols
from ase.parallel import DummyMPI

from deltagdml.data.systems import bonded_pairs
from deltagdml.dynamics.run import UncertaintyMonitor
from deltagdml.errors import DeltaGDMLError
from deltagdml.gdml.calculator import GDMLCalculator
from deltagdml.gdml.composite import DeltaModel
from deltagdml.gdml.model import GDMLModel

#: Seconds to connect and to wait for each message. An i-PI server sends STATUS as soon as it
#: accepts a client and the next positions a few ms after the forces; it is silent longer only
#: while it waits for another, slower force field or has no work for a surplus client.
DEFAULT_TIMEOUT = 60.0
#: Å: the largest change of a bond length (start structure vs the server's first positions).
DEFAULT_ORDER_TOLERANCE = 0.5


class IPIError(DeltaGDMLError):
    """The i-PI server cannot be reached, does not speak i-PI or simulates another system."""


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) → (host, port), the port within 1–65535."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise IPIError(f"i-PI address {text!r}: expected host:port")
    if not 1 <= int(port) <= 65535:
        raise IPIError(f"i-PI address {text!r}: port {port} is outside 1–65535")
    return host, int(port)


def unix_socket_path(name: str) -> str:
    """A path (with a '/', or an existing socket) as it is; a bare name under i-PI's default
    prefix (``/tmp/ipi_NAME``)."""
    if "/" in name or (os.path.exists(name) and stat.S_ISSOCK(os.stat(name).st_mode)):
        return name
    return actualunixsocketname(name)


class _CheckedProtocol(IPIProtocol):
    """:class:`IPIProtocol` that refuses messages out of the protocol's order, an atom count
    other than the start structure's, positions that are not finite, and first positions
    whose bond lengths differ from the start structure's."""

    def __init__(self, sock: socket.socket, server: str, start: Atoms, tolerance: float) -> None:
        super().__init__(sock)
        self.server, self.tolerance = server, tolerance
        self.start: Atoms | None = start.copy()  # checked against the first positions only
        self.n_atoms = len(start)
        self.have_data = False

    def recvmsg(self) -> str:
        raw = self._recvall(12)
        msg = raw.rstrip().decode("ascii", errors="replace")
        allowed = ("STATUS", "GETFORCE" if self.have_data else "POSDATA", "EXIT")
        if msg not in allowed:
            raise IPIError(
                f"{self.server} sent {raw!r} where the i-PI protocol has {', '.join(allowed)}: "
                "not an i-PI server?"
            )
        return msg

    def recv(self, shape, dtype, what: str = "a message") -> np.ndarray:
        """An array of ``shape`` and ``dtype``; one holding NaN or inf is refused (ASE's
        own ``recv`` asserts)."""
        buf = self._recvall(int(np.dtype(dtype).itemsize * np.prod(shape)))
        a = np.frombuffer(buf, dtype=dtype).reshape(shape).copy()
        if not np.isfinite(a).all():
            raise IPIError(f"{self.server} sent {what} holding NaN or inf")
        return a

    def recvposdata(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cell = self.recv((3, 3), np.float64, "a cell").T.copy()
        icell = self.recv((3, 3), np.float64, "an inverse cell").T.copy()
        n = int(self.recv(1, np.int32)[0])
        if n != self.n_atoms:
            raise IPIError(
                f"{self.server} simulates {n} atoms, the model's system has {self.n_atoms}"
            )
        positions = self.recv((n, 3), np.float64, "positions") * units.Bohr
        if self.start is not None:
            self._check_system(positions)
            self.start = None
        self.have_data = True
        return cell * units.Bohr, icell / units.Bohr, positions

    def _check_system(self, positions: np.ndarray) -> None:
        """Refuse positions whose bond lengths (the start structure's bonds) differ by more
        than the tolerance: another system, or the atoms in another order."""
        ref, z = self.start.positions, self.start.numbers
        bonds = bonded_pairs(Atoms(z, positions=ref))
        i, j = bonds.T if len(bonds) else np.triu_indices(len(z), 1)  # none: every pair
        if not len(i):
            return
        d_ref = np.linalg.norm(ref[i] - ref[j], axis=1)
        d_new = np.linalg.norm(positions[i] - positions[j], axis=1)
        k = int(np.argmax(np.abs(d_new - d_ref)))
        if abs(d_new[k] - d_ref[k]) > self.tolerance:
            a, b = i[k], j[k]
            pair = f"{chemical_symbols[z[a]]}{a}–{chemical_symbols[z[b]]}{b}"
            raise IPIError(
                f"{self.server} simulates another system or atom order: {pair} is "
                f"{d_new[k]:.2f} Å apart in its first positions, {d_ref[k]:.2f} Å in the start "
                f"structure (tolerance {self.tolerance:g} Å)"
            )

    def sendforce(self, *args, **kwargs) -> None:
        super().sendforce(*args, **kwargs)
        self.have_data = False


class IPIClient(SocketClient):
    """ASE's :class:`SocketClient` for a TCP ``address`` (``host:port``; TCP_NODELAY set, so a
    step's small messages go out at once, not after the server's delayed ACK) or a UNIX socket
    (:func:`unix_socket_path`). ``timeout`` (s; None or 0: none) bounds the connect and each
    receive; ``tolerance`` (Å) the bond lengths' change from the start structure (the atoms
    given to :meth:`run`) to the server's first positions. The arguments are checked here, the
    connection is made by :meth:`run`; errors raise :class:`IPIError`."""

    def __init__(
        self,
        address: str | None = None,
        unix: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        tolerance: float = DEFAULT_ORDER_TOLERANCE,
    ) -> None:
        if (address is None) == (unix is None):
            raise IPIError("an i-PI server needs either a TCP address or a UNIX socket")
        if timeout is not None and not timeout >= 0:
            raise IPIError(f"timeout {timeout:g} s: must be ≥ 0 (0: none)")
        if not tolerance > 0:
            raise IPIError(f"order tolerance {tolerance:g} Å: must be > 0")
        self.timeout = timeout if timeout and math.isfinite(timeout) else None
        self.tolerance = tolerance
        self.target = unix_socket_path(unix) if unix is not None else parse_address(address)
        where = self.target if unix is not None else "{}:{}".format(*self.target)
        self.server = f"i-PI server at {where}"
        # SocketClient's state, as its __init__ sets it (it would connect at once)
        self.comm, self.host, self.port, self.unixsocket = DummyMPI(), None, None, unix
        self.bead_index, self.bead_initbytes, self.state = 0, b"", "READY"
        self.closed = True

    def _connect(self) -> socket.socket:
        """A socket connected to the server within the timeout."""
        sock = None
        try:
            if isinstance(self.target, str):
                sock = socket.socket(socket.AF_UNIX)
                sock.settimeout(self.timeout)
                sock.connect(self.target)
            else:
                sock = socket.create_connection(self.target, self.timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as err:
            if sock is not None:
                sock.close()
            if isinstance(err, TimeoutError):
                raise IPIError(
                    f"{self.server}: no connection within the {self.timeout:g} s timeout"
                ) from None
            raise IPIError(f"{self.server}: cannot connect ({err.strerror or err})") from None
        return sock

    def close(self) -> None:
        """Close in order: end our side, read what the server still sends until it closes its
        side (a second at most), then close. Closing with unread data would reset the
        connection, and a reset kills i-PI's (3.3) polling thread, so that it waits forever."""
        if not self.closed:
            sock, deadline = self.protocol.socket, time.monotonic() + 1.0
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(1.0)
                while sock.recv(1 << 16) and time.monotonic() < deadline:
                    pass
        super().close()

    def run(self, atoms: Atoms, use_stress: bool = False) -> None:
        """Connect, and serve ``atoms.calc`` until the server says EXIT or closes the
        connection; the connection is closed either way."""
        self.protocol = _CheckedProtocol(self._connect(), self.server, atoms, self.tolerance)
        self.log, self.closed = self.protocol.log, False
        try:
            super().run(atoms, use_stress)
        except TimeoutError:
            raise IPIError(
                f"{self.server}: no message within the {self.timeout:g} s timeout"
            ) from None
        except (ConnectionError, SocketClosed) as err:
            why = err.strerror or "closed"
            raise IPIError(f"{self.server}: connection lost mid-message ({why})") from None
        finally:
            self.close()


Model = GDMLModel | DeltaModel


class UncertaintyLog(GDMLCalculator):
    """:class:`GDMLCalculator` that appends a CSV line to ``log`` every ``stride`` force
    calls: the call (0, 1, …; one per i-PI MD step), each part's uncertainty (in its
    estimator's unit, named in the header) and the threshold ratio (NaN: no thresholds)."""

    def __init__(self, model: Model, log: TextIO, stride: int) -> None:
        super().__init__(model)
        self.watch = UncertaintyMonitor(model, None)
        self.log, self.stride, self.calls = log, stride, 0
        header = ",".join(f"uncertainty_{p} ({u})" for p, u in self.watch.units.items())
        log.write(f"step,{header},uncertainty_ratio\n")

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        if self.calls % self.stride == 0:
            stds = self.watch.measure(self.atoms.positions)
            values = [*stds.values(), self.watch.ratio(stds)]
            self.log.write(f"{self.calls}," + ",".join(f"{v:.6g}" for v in values) + "\n")
        self.calls += 1
