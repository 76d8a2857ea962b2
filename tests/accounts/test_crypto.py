"""Encryption at rest (accounts.crypto): Fernet tokens, key rotation, and the key setting."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from accounts import crypto
from widgetsite import settings as project_settings

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def test_round_trip_and_the_token_hides_the_text(settings):
    settings.FIELD_ENCRYPTION_KEYS = [NEW]
    token = crypto.encrypt("whsec_c2VjcmV0LXNlY3JldA==")
    assert "c2VjcmV0" not in token and "whsec_" not in token
    assert crypto.decrypt(token) == "whsec_c2VjcmV0LXNlY3JldA=="
    assert crypto.encrypt("same") != crypto.encrypt("same")  # random IV


def test_a_new_key_in_front_still_reads_old_tokens_and_rotate_moves_them(settings):
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    old_token = crypto.encrypt("provider password")

    settings.FIELD_ENCRYPTION_KEYS = [NEW, OLD]
    assert crypto.decrypt(old_token) == "provider password"
    rotated = crypto.rotate(old_token)

    settings.FIELD_ENCRYPTION_KEYS = [NEW]  # the old key dropped
    assert crypto.decrypt(rotated) == "provider password"
    with pytest.raises(crypto.DecryptionError) as caught:
        crypto.decrypt(old_token)
    assert "provider password" not in str(caught.value) and old_token not in str(caught.value)


@pytest.mark.parametrize("token", ["", "not a token", "gAAAAA" + "x" * 80, "é"])
def test_garbage_is_a_decryption_error(settings, token):
    settings.FIELD_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token)


def test_the_test_suite_has_a_key_without_any_file(settings):
    assert settings.FIELD_ENCRYPTION_KEYS
    Fernet(settings.FIELD_ENCRYPTION_KEYS[0].encode())


def test_key_setting_reads_the_env_newest_first(monkeypatch):
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY", f" {NEW} , {OLD} ")
    assert project_settings._field_encryption_keys() == [NEW, OLD]


def test_key_setting_reads_a_key_file(monkeypatch, tmp_path):
    key_file = tmp_path / "field_key"
    key_file.write_text(f"{NEW}\n{OLD}\n")
    monkeypatch.delenv("FIELD_ENCRYPTION_KEY", raising=False)
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY_FILE", str(key_file))
    assert project_settings._field_encryption_keys() == [NEW, OLD]


@pytest.mark.parametrize("value", ["too-short", "x" * 44, f"{NEW},nope"])
def test_a_malformed_key_stops_start_up_with_a_message(monkeypatch, value):
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY", value)
    with pytest.raises(ImproperlyConfigured, match="Fernet"):
        project_settings._field_encryption_keys()


def test_no_key_outside_tests_and_debug_stops_start_up(monkeypatch, tmp_path):
    monkeypatch.delenv("FIELD_ENCRYPTION_KEY", raising=False)
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY_FILE", str(tmp_path / "missing"))
    monkeypatch.delenv("PYTEST_VERSION", raising=False)
    monkeypatch.setattr(project_settings, "DEBUG", False)
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEY"):
        project_settings._field_encryption_keys()


def test_debug_without_a_key_makes_the_file_once(monkeypatch, tmp_path):
    key_file = tmp_path / "var" / "field_key"
    monkeypatch.delenv("FIELD_ENCRYPTION_KEY", raising=False)
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY_FILE", str(key_file))
    monkeypatch.delenv("PYTEST_VERSION", raising=False)
    monkeypatch.setattr(project_settings, "DEBUG", True)

    first = project_settings._field_encryption_keys()
    second = project_settings._field_encryption_keys()

    assert first == second and len(first) == 1
    assert key_file.stat().st_mode & 0o777 == 0o600
