"""`deltagdml ipi` against fake i-PI servers (socket threads speaking, or not, the i-PI
protocol): the served forces, and each way a server can be wrong refused in one line."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.socketio import IPIProtocol
from conftest import morse_energy_forces

from deltagdml import load_model
from deltagdml.cli import main as cli
from deltagdml.gdml.calculator import GDMLCalculator
from deltagdml.gdml.model import GDMLModel
from deltagdml.gdml.model_io import save_model

CELL = np.zeros((3, 3))
WATER_FIRST = [5, 6, 7, 0, 1, 2, 3, 4]  # the water of the methane–water pair listed first


def methane_water() -> Atoms:
    water = molecule("H2O")
    water.translate([0.0, 0.0, 3.5])
    return molecule("CH4") + water


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """An sGDML model of a Morse methane–water pair and its start structure."""
    tmp = tmp_path_factory.mktemp("ipi")
    atoms = methane_water()
    R = atoms.positions + np.random.default_rng(0).normal(scale=0.05, size=(20, 8, 3))
    E, F = morse_energy_forces(R, atoms.positions)
    save_model(GDMLModel(sigma=10.0, perms="none").fit(R, atoms.numbers, F, E), tmp / "m.npz")
    ase.io.write(tmp / "start.xyz", atoms)
    return {"model": tmp / "m.npz", "start": tmp / "start.xyz"}


@contextmanager
def fake_server(
    script: Callable[[IPIProtocol], object], unix: Path | None = None
) -> Iterator[tuple[str, dict]]:
    """A server thread that accepts one client and runs ``script`` on the connection; yields
    its address (``host:port`` or the UNIX path) and a dict that gets the script's result."""
    srv = socket.socket(socket.AF_UNIX if unix else socket.AF_INET)
    srv.bind(str(unix) if unix else ("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(20)
    out: dict = {}

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(20)
            out["result"] = script(IPIProtocol(conn))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield (str(unix) if unix else "127.0.0.1:{}".format(*srv.getsockname()[1:2])), out
    finally:
        thread.join(25)
        srv.close()


def steps(frames: list[np.ndarray]) -> Callable[[IPIProtocol], object]:
    """An i-PI server's side: a force call per frame (Å), then EXIT; the forces (eV/Å)."""

    def script(p: IPIProtocol) -> list[np.ndarray]:
        forces = [p.calculate(R, CELL)["forces"] for R in frames]
        p.end()
        return forces

    return script


def until_closed(first: bytes = b"") -> Callable[[IPIProtocol], object]:
    """A server that sends ``first`` (or nothing), then waits: 'closed' when the client hangs up."""

    def script(p: IPIProtocol) -> str:
        p.socket.sendall(first)
        try:
            return "closed" if p.socket.recv(1) == b"" else "spoke"
        except ConnectionResetError:  # closed with some of ``first`` unread
            return "closed"

    return script


def refused(R: np.ndarray) -> Callable[[IPIProtocol], object]:
    """A force call that the client should refuse by closing the connection."""

    def script(p: IPIProtocol) -> str:
        try:
            p.calculate(R, CELL)
        except OSError:  # SocketClosed, or a reset while the positions were still going out
            return "closed"
        return "answered"

    return script


def ipi(files: dict[str, Path], *options: str) -> int:
    return cli(["ipi", str(files["model"]), str(files["start"]), *options])


def one_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_serves_forces_over_a_unix_socket_at_any_path(files, tmp_path):
    """``--unix`` with a full path (not under /tmp/ipi_): the model's forces at each frame;
    a frame whose molecules moved apart (bonds unchanged) is the same system."""
    start = methane_water().positions
    moved = start.copy()
    moved[5:] += [0.3, 0.4, 1.5]
    frames = [start, moved, moved + 0.02]
    with fake_server(steps(frames), unix=tmp_path / "server.sock") as (path, out):
        assert ipi(files, "--unix", path) == 0
    calc = GDMLCalculator(load_model(files["model"]))
    for R, F in zip(frames, out["result"], strict=True):
        calc.calculate(Atoms(methane_water().numbers, positions=R), ["forces"])
        np.testing.assert_allclose(F, calc.results["forces"], rtol=1e-6, atol=1e-8)


def test_a_permuted_system_is_refused_and_the_connection_closed(files, capsys):
    """Water listed first instead of methane: refused before any force is computed."""
    R = methane_water().positions[WATER_FIRST]
    with fake_server(refused(R)) as (address, out):
        assert ipi(files, "--address", address) == 1
    msg = one_error(capsys)
    assert address in msg and "another system or atom order" in msg and "0.5 Å" in msg
    assert out["result"] == "closed"


def test_another_atom_count_is_refused(files, capsys):
    with fake_server(refused(methane_water().positions[:7])) as (address, out):
        assert ipi(files, "--address", address) == 1
    msg = one_error(capsys)
    assert "simulates 7 atoms" in msg and "has 8" in msg
    assert out["result"] == "closed"


def test_a_silent_server_times_out(files, capsys):
    with fake_server(until_closed()) as (address, out):
        t0 = time.perf_counter()
        assert ipi(files, "--address", address, "--timeout", "0.5") == 1
        waited = time.perf_counter() - t0
    assert "no message within the 0.5 s timeout" in one_error(capsys)
    assert waited < 10 and out["result"] == "closed"


def test_a_server_speaking_another_protocol_is_refused(files, capsys):
    with fake_server(until_closed(b"SSH-2.0-OpenSSH_9.6\r\n")) as (address, out):
        assert ipi(files, "--address", address) == 1
    msg = one_error(capsys)
    assert address in msg and "b'SSH-2.0-Open'" in msg and "not an i-PI server" in msg
    assert out["result"] == "closed"


@pytest.mark.parametrize("port", ["0", "70000"])
def test_a_port_out_of_range_is_refused(files, capsys, port):
    assert ipi(files, "--address", f"localhost:{port}") == 1
    assert f"port {port} is outside 1–65535" in one_error(capsys)


def test_no_server_listening_is_one_line_naming_it(files, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert ipi(files, "--address", f"127.0.0.1:{port}") == 1
    assert f"i-PI server at 127.0.0.1:{port}: cannot connect" in one_error(capsys)


def test_the_tcp_socket_sends_without_delay(files):
    """TCP_NODELAY is on while the client serves (the option read inside a force call)."""
    from deltagdml.dynamics.ipi import IPIClient

    class Probe(Calculator):
        implemented_properties = ["energy", "forces"]

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            sock = client.protocol.socket
            self.nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            self.results = {"energy": 0.0, "forces": np.zeros((len(atoms), 3))}

    atoms = methane_water()
    atoms.calc = Probe()
    with fake_server(steps([atoms.positions])) as (address, out):
        client = IPIClient(address=address, timeout=20)
        client.run(atoms)
    assert atoms.calc.nodelay != 0
    np.testing.assert_array_equal(out["result"][0], 0.0)
