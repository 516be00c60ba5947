"""The `hookloop` command line, run as a user runs it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

import hookloop
from hookloop.cli import main


def _hookloop(*args, **env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLOOP_")}
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "hookloop", *args], capture_output=True,
                          text=True, env=environ, timeout=120)


def test_console_script_is_installed():
    script = shutil.which("hookloop", path=os.path.dirname(sys.executable))
    assert script is not None
    out = subprocess.run([script, "plugins"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_plugins_lists_plugins_versions_hooks_and_backends():
    out = _hookloop("plugins")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for info in hookloop.plugin_infos():
        assert info.name in text
        for hook in info.hooks:
            assert hook in text
    assert "hookloop-epoll 0.1.0" in text
    assert "hookloop-select 0.1.0" in text
    best = hookloop.available_backends()[0]
    assert f"default backend: {best}" in text
    assert "(default)" in text
    for name in ("select", "poll", "epoll"):
        assert f"  {name} " in text


def test_plugins_shows_environment_backend_as_default():
    out = _hookloop("plugins", HOOKLOOP_BACKEND="select")
    assert "default backend: select" in out.stdout


def test_plugins_with_broken_plugin_reports_it(tmp_path):
    (tmp_path / "badplug.py").write_text("raise RuntimeError('boom at import')\n")
    info = tmp_path / "badplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: badplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[hookloop]\nbad = badplug\n")
    out = _hookloop("plugins", PYTHONPATH=str(tmp_path))
    assert out.returncode == 2
    assert "boom at import" in out.stderr
    assert "distribution badplug 0.1" in out.stderr
    assert "Traceback" not in out.stderr


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "plugins" in capsys.readouterr().out


def test_unknown_command_exits_with_usage():
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2
