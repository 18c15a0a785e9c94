"""``python -m bot demo``: a whole purchase offline, as a real process without any setting, and
in-process to see that nothing is left running and that a stuck step ends it in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from io import BytesIO
from pathlib import Path

import httpx
import pytest
import zxingcpp
from PIL import Image

from bot.demo import run_demo


def decode_qr(path: Path) -> str:
    results = zxingcpp.read_barcodes(Image.open(BytesIO(path.read_bytes())))
    assert len(results) == 1
    return str(results[0].text)


def value_after(output: str, label: str) -> str:
    """The word after ``label`` on the first printed line that contains it."""
    for line in output.splitlines():
        if label in line:
            return line.split(label, 1)[1].split(" ")[0]
    raise AssertionError(f"no {label!r} in\n{output}")


def test_the_demo_process_buys_pro_offline_and_writes_a_scannable_invoice(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    assert not any(k.startswith(("TELEGRAM", "OKX")) for k in env)
    image = tmp_path / "x.png"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--image", str(image)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    elapsed = time.monotonic() - started
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert result.stderr == ""  # logging stays quiet when nothing breaks
    assert elapsed < 60

    lines = out.rstrip().splitlines()
    assert "you  > /start" in lines
    assert any(line.startswith("bot  < Welcome!") for line in lines)
    assert any(line.startswith("you  > [Pro") for line in lines)
    assert "you  > [USDT]" in lines and "you  > [Tron (TRC20)]" in lines
    assert any(line.startswith("bot  < [photo] Pro") for line in lines)
    assert any("[Pro · $29 / 30 days]" in line for line in lines)  # buttons are shown
    assert f"Invoice image written to {image}" in lines

    amount = value_after(out, "Send exactly: ")
    address = value_after(out, "Address: ")
    assert f"okx  : deposit {amount} USDT on USDT-TRC20 to {address} seen" in out
    [paid] = [line for line in lines if line.startswith("bot  < ✅ Payment received for invoice ")]
    assert "Pro is active until" in paid
    assert decode_qr(image) == address

    # then Bob pays in Telegram Stars: the offer, the link, Telegram's charge, the receipt
    stars = lines[lines.index(paid) + 1 :]
    assert "you  > [⭐ Telegram Stars]" in stars
    assert any(line.startswith("bot  < Pro: ⭐ 1500 every 30 days") for line in stars)
    assert any("[Pay ⭐ 1500]" in line for line in stars)
    assert any(line.startswith("you  > [Pay] opens https://t.me/") for line in stars)
    assert any(line.startswith("tg   : 1500 Stars charged (") for line in stars)
    assert lines[-1].startswith("bot  < ⭐ Payment received: 1500 Stars. Pro is active until")


def test_without_image_the_invoice_goes_to_the_temp_dir_not_the_working_directory(
    tmp_path: Path,
) -> None:
    """In the Docker image the working directory (/app) is not writable by the bot's user."""
    cwd, temp = tmp_path / "app", tmp_path / "tmp"
    cwd.mkdir()
    temp.mkdir()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "TMPDIR": str(temp)}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    image = temp / "subsbot-demo-invoice.png"
    assert f"Invoice image written to {image}" in result.stdout.splitlines()
    assert image.read_bytes().startswith(b"\x89PNG")
    assert list(cwd.iterdir()) == []


def test_in_process_nothing_is_left_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = set(threading.enumerate())
    image = tmp_path / "invoice.png"
    assert run_demo(image=str(image)) == 0
    out = capsys.readouterr().out
    assert "Payment received: 1500 Stars" in out.rstrip().splitlines()[-1]
    assert image.read_bytes().startswith(b"\x89PNG")
    assert set(threading.enumerate()) - before == set()


def test_the_simulated_demo_rehearses_test_mode_paid_by_the_admin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``demo --simulated``: no fake OKX, the invoice marked TEST with a TEST address, and the
    admin's /simulate_deposit settles it as a real payment."""
    image = tmp_path / "invoice.png"
    assert run_demo(image=str(image), simulated=True) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("okx  :") for line in lines)
    assert "bot  < [photo] 🧪 TEST MODE: a rehearsal, not a real invoice or payment." in lines
    assert any(line.strip().startswith("Address: TEST-USDT-TRC20-") for line in lines)
    assert any(line.startswith("admin> /simulate_deposit ") for line in lines)
    assert any(line.startswith("bot  < 🧪 TEST: simulated a deposit of ") for line in lines)
    paid = lines.index("bot  < 🧪 TEST MODE: a rehearsal, not a real invoice or payment.", 3)
    assert any("✅ Payment received for invoice" in line for line in lines[paid:])
    assert image.read_bytes().startswith(b"\x89PNG")


def test_a_step_that_times_out_stops_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = set(threading.enumerate())
    image = tmp_path / "never.png"
    # 0 s: the first look for the welcome comes before the bot could have answered /start
    assert run_demo(image=str(image), step_timeout=0) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "subsbot demo: timed out after 0 s waiting for the welcome message"
    ]
    assert not image.exists()
    assert set(threading.enumerate()) - before == set()


def test_an_image_path_in_a_missing_directory_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_demo(image=str(tmp_path / "missing" / "x.png")) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("subsbot demo: --image: no directory ")


def test_the_demo_serves_the_mini_app_and_prints_its_address(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "bot", "demo", "--keep", "--image", str(tmp_path / "x.png")]
    with subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            lines: list[str] = []
            deadline = time.monotonic() + 60
            while not (lines and lines[-1].startswith("Still serving")):
                assert time.monotonic() < deadline and process.poll() is None, "\n".join(lines)
                lines.append(process.stdout.readline().rstrip("\n"))
            [shown] = [line for line in lines if line.startswith("Mini App: ")]
            url = shown.removeprefix("Mini App: ")
            assert url.startswith("http://127.0.0.1:") and url.endswith("/app")
            assert lines.index(shown) < lines.index("you  > /start")  # printed up front
            assert lines[-1] == f"Still serving (Mini App: {url}); Ctrl-C stops."
            page = httpx.get(url, timeout=10)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert '<script type="module" src="/app/app.js">' in page.text
            assert httpx.get(url + "/app.js", timeout=10).status_code == 200
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=20) == 130
        finally:
            if process.poll() is None:
                process.kill()
    with pytest.raises(httpx.ConnectError):  # nothing left listening
        httpx.get(url, timeout=5)
