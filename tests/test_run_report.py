"""The run report (``tandem report``, ``tandem.runreport``) and ``tandem paper``'s progress bar,
on run directories written by real paper sessions over 3,000 real bars."""

from __future__ import annotations

import base64
import csv
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import procs
import pytest

from tandem.paper import PaperSettings, run_paper
from tandem.runreport import EQUITY_COLUMNS, PNG_SIZE_PX, RunReportError, main, render_report

TANDEM = str(Path(sys.executable).parent / "tandem")  # the installed console script
INPUTS = ("report.json", "trades.csv", "equity.csv")
OUTPUTS = ("report.png", "report.html")
PARAMS = {"fast": 10, "slow": 40}  # enough crossings in 3,000 bars for a dozen trades


def free_udp_port() -> int:
    return procs.free_port()


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One real paper session (two processes over UDP) on the first 3,000 bundled bars."""
    run_dir = tmp_path_factory.mktemp("report") / "run"
    settings = PaperSettings(
        run_dir=run_dir, bars=3000, strategy_params=PARAMS, progress="off", metrics_port=-1,
        executor_metrics_port=-1, decision_addr=f"127.0.0.1:{free_udp_port()}",
        confirm_addr=f"127.0.0.1:{free_udp_port()}",
    )  # fmt: skip
    report = run_paper(settings)
    assert report["ledger_agrees"] and report["trades"] > 0
    return run_dir, report


def inputs_only(src: Path, dst: Path) -> Path:
    """A fresh run directory holding only the report's inputs, copied from ``src``."""
    dst.mkdir()
    for name in INPUTS:
        shutil.copy2(src / name, dst / name)
    return dst


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    length, chunk = struct.unpack(">I4s", data[8:16])
    assert (length, chunk) == (13, b"IHDR")
    return struct.unpack(">II", data[16:24])


def trade_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "trades.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_equity_columns_are_the_brains() -> None:
    """The renderer reads exactly the columns the brain writes to equity.csv."""
    from brain.report import EQUITY_CURVE_COLUMNS

    assert EQUITY_COLUMNS == EQUITY_CURVE_COLUMNS == ("ts", "close", "equity", "drawdown_pct", "position")


def test_paper_renders_the_report_and_names_it(paper_run) -> None:
    """``run_paper`` ends by writing report.png and report.html; the text report names them."""
    from tandem.paper import format_report

    run_dir, report = paper_run
    assert "error" not in report["run_report"], report["run_report"]
    assert report["run_report"]["png"] == str(run_dir / "report.png")
    assert report["run_report"]["html"] == str(run_dir / "report.html")
    text = format_report(report)
    assert f"report picture         {run_dir / 'report.png'}  and  report.html" in text
    assert png_size((run_dir / "report.png").read_bytes()) == (1600, 1000)


def test_png_is_a_real_picture_of_the_expected_size(paper_run, tmp_path: Path) -> None:
    """report.png is a valid 1600 x 1000 PNG that decodes to a non-blank image."""
    run_dir = inputs_only(paper_run[0], tmp_path / "run")
    paths = render_report(run_dir)
    assert paths == {"png": run_dir / "report.png", "html": run_dir / "report.html"}
    data = paths["png"].read_bytes()
    assert png_size(data) == PNG_SIZE_PX == (1600, 1000)
    pixels = matplotlib.image.imread(paths["png"])
    assert pixels.shape[:2] == (1000, 1600)
    assert pixels[..., :3].std() > 0.05, "the picture is (nearly) blank"


def test_html_embeds_the_picture_figures_and_every_trade(paper_run, tmp_path: Path) -> None:
    """report.html carries the PNG as a data URI, the key figures and one row per trade."""
    run_dir = inputs_only(paper_run[0], tmp_path / "run")
    paths = render_report(run_dir)
    page = paths["html"].read_text()
    assert f"data:image/png;base64,{base64.b64encode(paths['png'].read_bytes()).decode()}" in page
    report = json.loads((run_dir / "report.json").read_text())
    for label in ("total return", "max drawdown", "trades", "fees", "exits by reason", "decisions by outcome",
                  "round trip latency", "ledger agreement"):  # fmt: skip
        assert f">{label}</th>" in page, label
    assert f"{report['total_return_pct']:+.2f}%" in page and f"{report['max_drawdown_pct']:.2f}%" in page
    assert "executor ledger agrees with the brain" in page
    rows = trade_rows(run_dir)
    assert len(rows) == report["trades"] > 0
    assert page.count('<tr class="trade">') == len(rows)
    for row in rows:  # times as "2022-01-01 00:08", money with thousands separators and 2 decimals
        opened, closed = (row[k].replace("T", " ")[:16] for k in ("opened_at", "closed_at"))
        assert f"<td>{row['trade']}</td><td>{opened}</td><td>{closed}</td>".replace("<td>", '<td class="num">', 1) in page
        assert f">{float(row['net_pnl']):+,.2f}</td>" in page and f">{float(row['entry_price']):,.2f}</td>" in page


def test_html_escapes_text_from_the_inputs(paper_run, tmp_path: Path) -> None:
    """Text taken from the inputs is HTML-escaped: a hostile instrument name stays text."""
    run_dir = inputs_only(paper_run[0], tmp_path / "run")
    report = json.loads((run_dir / "report.json").read_text())
    report["instrument"] = "<script>alert('x')</script>&"
    (run_dir / "report.json").write_text(json.dumps(report))
    page = render_report(run_dir)["html"].read_text()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;" in page


def test_tandem_report_rerenders_the_same_files(paper_run, tmp_path: Path) -> None:
    """``tandem report DIR`` rewrites report.png and report.html, byte for byte, and prints their paths."""
    run_dir = inputs_only(paper_run[0], tmp_path / "run")
    first = render_report(run_dir)
    expected = {name: (run_dir / name).read_bytes() for name in OUTPUTS}
    (run_dir / "report.png").unlink()
    (run_dir / "report.html").write_text("stale")
    proc = subprocess.run([TANDEM, "report", str(run_dir)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(first["png"]), str(first["html"])]
    assert {name: (run_dir / name).read_bytes() for name in OUTPUTS} == expected
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(INPUTS + OUTPUTS), "temporary files left behind"


def _bad_side_on_line_5(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    fields = lines[4].split(",")
    fields[2] = "oops"  # the side column (issue #16)
    lines[4] = ",".join(fields)
    path.write_text("".join(lines))


def _bad_number_on_line_5(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    fields = lines[4].split(",")
    fields[3] = "oops"  # entry_decision_id
    lines[4] = ",".join(fields)
    path.write_text("".join(lines))


CORRUPTIONS = {
    "report.json": [("missing", None, "missing"),
                    ("truncated", lambda p: p.write_text(p.read_text()[:200]), "not valid JSON"),
                    ("key gone", lambda p: p.write_text(json.dumps({k: v for k, v in json.loads(p.read_text()).items()
                                                                    if k != "latency_us"})), "latency_us")],
    "trades.csv": [("missing", None, "missing"),
                   ("bad number", _bad_number_on_line_5, "trades.csv:5:"),
                   ("bad side", _bad_side_on_line_5, "trades.csv:5: side 'oops'"),
                   ("short row", lambda p: p.write_text(p.read_text() + "99,BTC-PERP,1\n"), "fields"),
                   ("header", lambda p: p.write_text("a,b,c\n"), "trades.csv:1:")],
    "equity.csv": [("missing", None, "missing"),
                   ("bad number", _bad_number_on_line_5, "equity.csv:5:"),
                   ("header only", lambda p: p.write_text(",".join(EQUITY_COLUMNS) + "\n"), "no rows"),
                   ("time goes back", lambda p: p.write_text(p.read_text() + "2000-01-01T00:00:00Z,1,1,0,0\n"),
                    "not after"),
                   ("binary", lambda p: p.write_bytes(b"\xff\xfe\x00garbage"), "cannot be read")],
}  # fmt: skip
CASES = [(name, label, corrupt, needle) for name, cases in CORRUPTIONS.items() for label, corrupt, needle in cases]


@pytest.mark.parametrize(("name", "label", "corrupt", "needle"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_bad_input_exits_2_naming_the_file_and_writes_nothing(paper_run, tmp_path: Path, capsys, name, label,
                                                              corrupt, needle) -> None:  # fmt: skip
    """A missing or malformed input: exit 2, ``tandem report: <file>: ...`` on stderr, no output written."""
    run_dir = inputs_only(paper_run[0], tmp_path / "run")
    target = run_dir / name
    if corrupt is None:
        target.unlink()
    else:
        corrupt(target)
    before = sorted(p.name for p in run_dir.iterdir())
    assert main([str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tandem report: ") and str(target) in err and needle in err, err
    assert sorted(p.name for p in run_dir.iterdir()) == before, "an output or temporary file was written"
    with pytest.raises(RunReportError, match=name):
        render_report(run_dir)


def test_failed_render_keeps_the_previous_outputs(paper_run, tmp_path: Path) -> None:
    """A render that fails on a bad input leaves the previous report.png and report.html as they were."""
    run_dir = inputs_only(paper_run[0], tmp_path / "run")
    render_report(run_dir)
    before = {name: (run_dir / name).read_bytes() for name in OUTPUTS}
    _bad_number_on_line_5(run_dir / "equity.csv")
    with pytest.raises(RunReportError, match="equity.csv:5:"):
        render_report(run_dir)
    assert {name: (run_dir / name).read_bytes() for name in OUTPUTS} == before


def test_trade_count_must_match_the_report(paper_run, tmp_path: Path) -> None:
    """trades.csv and report.json from different runs are refused, naming both files."""
    run_dir = inputs_only(paper_run[0], tmp_path / "run")
    lines = (run_dir / "trades.csv").read_text().splitlines(keepends=True)
    (run_dir / "trades.csv").write_text("".join(lines[:-1]))
    n = len(lines) - 1
    with pytest.raises(RunReportError, match=rf"trades\.csv: {n - 1} trades, but .*report\.json says {n}$"):
        render_report(run_dir)


def test_report_command_help_and_missing_directory(tmp_path: Path, capsys) -> None:
    """``tandem report --help`` prints its usage; a directory that does not exist is exit 2."""
    proc = subprocess.run([TANDEM, "report", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "usage: tandem report" in proc.stdout and "RUN_DIR" in proc.stdout
    assert main([str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == f"tandem report: {tmp_path / 'nope'}: not a directory\n"


def test_paper_progress_shows_rate_and_eta_on_stderr(tmp_path: Path) -> None:
    """``tandem paper --progress on`` draws a bar with bars/s and an ETA on stderr; stdout keeps the report."""
    args = [
        TANDEM, "paper", "--run-dir", str(tmp_path / "run"), "--bars", "3000", "--progress", "on",
        "--strategy-params", json.dumps(PARAMS), "--decision-addr", f"127.0.0.1:{free_udp_port()}",
        "--confirm-addr", f"127.0.0.1:{free_udp_port()}", "--metrics-port", "-1", "--executor-metrics-port", "-1",
    ]  # fmt: skip
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    frames = proc.stderr.replace("\r", "\n").splitlines()
    assert any("bars/s" in f and "ETA" in f for f in frames), proc.stderr
    assert any("3,000/3,000 bars" in f for f in frames), proc.stderr
    assert proc.stdout.startswith("tandem paper report\n") and "bars/s" not in proc.stdout
    assert "report picture" in proc.stdout


def test_paper_progress_off_prints_nothing_on_stderr(tmp_path: Path) -> None:
    """``--progress off`` (and ``auto`` off a terminal) leaves stderr empty."""
    args = [
        TANDEM, "paper", "--run-dir", str(tmp_path / "run"), "--bars", "1500", "--progress", "auto",
        "--decision-addr", f"127.0.0.1:{free_udp_port()}", "--confirm-addr", f"127.0.0.1:{free_udp_port()}",
        "--metrics-port", "-1", "--executor-metrics-port", "-1",
    ]  # fmt: skip
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_paper_progress_auto_draws_on_a_terminal_even_one_without_a_size(tmp_path: Path) -> None:
    """``--progress auto`` with stderr on a real terminal (a pty, which reports 0 x 0 until someone
    sets its size, as under `script` or some CI runners) draws the bar; tqdm alone would hide it."""
    import os

    master, slave = os.openpty()
    args = [
        TANDEM, "paper", "--run-dir", str(tmp_path / "run"), "--bars", "3000", "--progress", "auto",
        "--strategy-params", json.dumps(PARAMS), "--decision-addr", f"127.0.0.1:{free_udp_port()}",
        "--confirm-addr", f"127.0.0.1:{free_udp_port()}", "--metrics-port", "-1", "--executor-metrics-port", "-1",
    ]  # fmt: skip
    try:
        assert os.get_terminal_size(slave).columns == 0
        proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=slave, text=True, timeout=120)
        os.close(slave)
        slave = -1
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the pty's other end is closed and drained
                break
            if not chunk:
                break
            out += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert proc.returncode == 0, out.decode(errors="replace")[-2000:]
    frames = out.decode(errors="replace").replace("\r", "\n").splitlines()
    assert any("3,000/3,000 bars" in f and "bars/s" in f for f in frames), frames[-5:]
    assert "bars/s" not in proc.stdout
