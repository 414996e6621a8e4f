"""`deltagdml ipi` against fake i-PI servers (socket threads speaking, or not, the i-PI
protocol): the served forces, and each way a server can be wrong refused in one line."""

from __future__ import annotations

import shutil
import socket
import subprocess
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


def test_positions_with_nan_are_refused_and_the_log_kept_as_partial(files, tmp_path, capsys):
    """A server that sends NaN positions on its second step: one line naming it; the
    uncertainty log is not written to its path, its record up to the failure stays in
    LOG.partial. A run that ends normally moves the log to its path."""
    start = methane_water().positions
    bad = start.copy()
    bad[3, 0] = np.nan

    def script(p: IPIProtocol) -> str:
        p.calculate(start, CELL)
        return refused(bad)(p)

    log = tmp_path / "uncertainty.csv"
    with fake_server(script) as (address, out):
        assert ipi(files, "--address", address, "--uncertainty-log", str(log)) == 1
    assert "sent positions holding NaN or inf" in one_error(capsys)
    assert out["result"] == "closed"
    assert not log.exists()
    lines = (tmp_path / "uncertainty.csv.partial").read_text().splitlines()
    assert lines[0].startswith("step,uncertainty_model") and lines[1].startswith("0,")
    assert len(lines) == 2

    with fake_server(steps([start, start + 0.01])) as (address, out):
        options = ["--uncertainty-log", str(log), "--uncertainty-stride", "1"]
        assert ipi(files, "--address", address, *options) == 0
    assert len(log.read_text().splitlines()) == 3
    assert not (tmp_path / "uncertainty.csv.partial").exists()

    log.unlink()  # no server: nothing recorded, nothing left behind
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert ipi(files, "--address", f"127.0.0.1:{port}", "--uncertainty-log", str(log)) == 1
    assert not list(tmp_path.iterdir())


IPI_INPUT = """<simulation verbosity="low" sockets_prefix="{prefix}">
  <output prefix="sim">
    <properties stride="1" filename="out">[step, potential{{electronvolt}}, conserved{{electronvolt}}, kinetic_md{{electronvolt}}]</properties>
    <trajectory filename="pos" stride="1" format="ase">positions</trajectory>
    <trajectory filename="frc" stride="1" format="ase">forces</trajectory>
  </output>
  <total_steps>{steps}</total_steps>
  <prng><seed>31415</seed></prng>
  <ffsocket name="gdml" mode="unix" pbc="false"><address>srv</address><latency>1e-4</latency></ffsocket>
  <system>
    <initialize nbeads="1">
      <file mode="xyz" units="angstrom">start.xyz</file>
      <cell mode="abc" units="angstrom">[50, 50, 50]</cell>
      <velocities mode="thermal" units="kelvin">300</velocities>
    </initialize>
    <forces><force forcefield="gdml"/></forces>
    <motion mode="dynamics">
      <dynamics mode="nve"><timestep units="femtosecond">0.1</timestep></dynamics>
    </motion>
  </system>
</simulation>
"""  # noqa: E501


@pytest.mark.skipif(shutil.which("i-pi") is None, reason="i-PI is not installed (pip install ipi)")
def test_a_real_ipi_server_runs_nve_md_on_the_models_forces(files, tmp_path):
    """i-PI itself (NVE, 20 steps of 0.1 fs, atomic units inside) driven over a UNIX socket
    at a path of our choosing: at every step its potential energy and forces are the model's
    at its positions (eV, eV/Å, as written to 8 decimals), and its conserved energy stays
    within 1e-3 of the kinetic energy: the client's units and atom order are right."""
    steps = 20
    ase.io.write(tmp_path / "start.xyz", methane_water())
    (tmp_path / "input.xml").write_text(IPI_INPUT.format(prefix=f"{tmp_path}/", steps=steps))
    with open(tmp_path / "ipi.log", "w") as log:
        server = subprocess.Popen(["i-pi", "input.xml"], cwd=tmp_path, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "srv").exists() and server.poll() is None:
            assert time.monotonic() < deadline, "i-PI did not open its socket"
            time.sleep(0.1)
        model, start = (str(files[k]) for k in ("model", "start"))
        assert cli(["ipi", model, start, "--unix", str(tmp_path / "srv")]) == 0
        assert server.wait(60) == 0, (tmp_path / "ipi.log").read_text()[-2000:]
    finally:
        server.kill()
    table = np.loadtxt(tmp_path / "sim.out")
    assert table.shape == (steps + 1, 4)
    positions = ase.io.read(tmp_path / "sim.pos_0.extxyz", ":")
    forces = ase.io.read(tmp_path / "sim.frc_0.extxyz", ":")
    assert len(positions) == len(forces) == steps + 1
    calc = GDMLCalculator(load_model(files["model"]))
    for k, (frame, F) in enumerate(zip(positions, forces, strict=True)):
        atoms = Atoms(frame.numbers, positions=frame.positions)
        atoms.calc = calc
        np.testing.assert_allclose(F.get_forces(), atoms.get_forces(), atol=1e-6)
        assert table[k, 1] == pytest.approx(atoms.get_potential_energy(), abs=1e-7)
    # i-PI's "ase" length unit differs from its Å by 1.4e-8 (relative)
    np.testing.assert_allclose(positions[0].positions, methane_water().positions, atol=2e-8)
    assert np.ptp(table[:, 2]) < 1e-3 * table[:, 3].mean()
