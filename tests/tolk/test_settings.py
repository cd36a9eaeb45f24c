"""Settings: defaults, environment variables, and one clear line for a wrong value."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from tolk.settings import SettingsError, load_settings


class TestSettings:
    def test_defaults(self, monkeypatch, tmp_path):
        """With nothing set, Tolk uses SQLite in the working folder and 127.0.0.1:8080."""
        monkeypatch.chdir(tmp_path)
        settings = load_settings()
        assert settings.database_url == "sqlite+aiosqlite:///./tolk.db"
        assert (settings.host, settings.port) == ("127.0.0.1", 8080)
        assert settings.redis_url is None

    def test_environment_variables(self, monkeypatch, tmp_path):
        """TOLK_* variables override the defaults."""
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("TOLK_PORT", "9000")
        monkeypatch.setenv("TOLK_REDIS_URL", "redis://127.0.0.1:6379/1")
        settings = load_settings()
        assert settings.port == 9000
        assert settings.redis_url == "redis://127.0.0.1:6379/1"

    def test_blank_secrets_count_as_unset(self, monkeypatch, tmp_path):
        """`TOLK_METRICS_TOKEN=` left empty in an environment file is no token at all."""
        monkeypatch.chdir(tmp_path)
        for name in ("TOLK_METRICS_TOKEN", "TOLK_TURN_SECRET"):
            monkeypatch.setenv(name, "")
        settings = load_settings()
        assert settings.metrics_token is None
        assert settings.turn_secret is None

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("TOLK_PORT", "eighty"),
            ("TOLK_PORT", "70000"),
            ("TOLK_DATABASE_URL", "mysql://x"),
            ("TOLK_LOG_FORMAT", "xml"),
            ("TOLK_TIMEZONE", "Mars/Olympus"),
            ("TOLK_REDIS_URL", "http://x"),
        ],
    )
    def test_wrong_value_names_the_variable(self, monkeypatch, tmp_path, name, value):
        """A wrong value is reported by variable name."""
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv(name, value)
        with pytest.raises(SettingsError, match=f"^{name}: "):
            load_settings()

    def test_secret_is_generated_once_and_kept_private(self, monkeypatch, tmp_path):
        """Without TOLK_SECRET_KEY a secret is made beside the SQLite file, owner-only."""
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("TOLK_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/data/t.db")
        first = load_settings().secret_key
        second = load_settings().secret_key
        assert first is not None
        assert second is not None
        assert first.get_secret_value() == second.get_secret_value()
        path = tmp_path / "data" / "tolk.secret"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert first.get_secret_value() not in repr(load_settings())

    def test_cli_prints_one_line_not_a_traceback(self, tmp_path):
        """`tolk serve` with a wrong setting ends with one line and exit code 2."""
        env = {**os.environ, "TOLK_PORT": "eighty"}
        result = subprocess.run(
            [sys.executable, "-m", "tolk", "serve"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            "tolk: configuration error: TOLK_PORT: Input should be a valid integer, "
            "unable to parse string as an integer"
        ]
