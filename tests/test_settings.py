"""Settings (SPEC section 7): defaults -> config file -> environment -> keyword arguments, later winning.

The original's keys and its `SPF_<SECTION>_<KEY>` environment names must carry over, and every bad
setting must be one error naming its dotted key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from livekit_demo.exceptions import SettingsError
from livekit_demo.passwords import hash_password
from livekit_demo.settings import Settings

ORIGINAL_YAML = """\
live_stream:
  push_url: push.yaml.example
  pull_url: pull.yaml.example
  push_auth_key: yaml-push-key
  pull_auth_key: yaml-pull-key
  app_name: show
  auth_expires: 3600
live_mic:
  app_id: yaml-rtc-app
  app_key: yaml-rtc-key
live_im:
  app_id: yaml-im-app
  app_key: yaml-im-key
  app_sign: yaml-im-sign
gateway:
  ws_addr: wss://gw.yaml.example/ws
  lwp_addr: tls://gw.yaml.example:443
storage:
  type: none
  url: ""
"""


def test_defaults_are_signed_urls_on_placeholder_domains() -> None:
    s = Settings.build(env={})
    ls = s.live_stream
    assert (ls.push_url, ls.pull_url, ls.app_name, ls.scheme, ls.auth_expires) == ("push.example.com", "pull.example.com", "live", "http", 604800)
    assert ls.push_auth_key and ls.pull_auth_key  # signed by default, so notebooks show the real shapes
    assert (s.auth.token_ttl, s.auth.refresh_window, s.auth.demo_login, s.server.max_body) == (86400, 86400, True, 1048576)
    assert (s.storage.type, s.gateway.ws_addr != "", s.gateway.lwp_addr != "") == ("tinydb", True, True)


def test_a_yaml_file_with_the_originals_keys(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(ORIGINAL_YAML, encoding="utf-8")
    s = Settings.build(config, env={})
    assert (s.live_stream.push_url, s.live_stream.pull_url, s.live_stream.app_name, s.live_stream.auth_expires) == (
        "push.yaml.example", "pull.yaml.example", "show", 3600,
    )  # fmt: skip
    assert (s.live_stream.push_auth_key, s.live_stream.pull_auth_key) == ("yaml-push-key", "yaml-pull-key")
    assert (s.live_mic.app_id, s.live_mic.app_key) == ("yaml-rtc-app", "yaml-rtc-key")
    assert (s.live_im.app_id, s.live_im.app_key, s.live_im.app_sign) == ("yaml-im-app", "yaml-im-key", "yaml-im-sign")
    assert (s.gateway.ws_addr, s.gateway.lwp_addr) == ("wss://gw.yaml.example/ws", "tls://gw.yaml.example:443")
    assert s.storage.type == "none"
    yml = tmp_path / "config.yml"
    yml.write_text(ORIGINAL_YAML, encoding="utf-8")
    assert Settings.build(yml, env={}).live_mic.app_id == "yaml-rtc-app"


def test_a_json_file_and_our_own_sections(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"live_stream": {"scheme": "https"}, "auth": {"token_ttl": 60}, "server": {"max_body": 4096}}), encoding="utf-8")
    s = Settings.build(config, env={})
    assert (s.live_stream.scheme, s.auth.token_ttl, s.server.max_body) == ("https", 60, 4096)


def test_spf_and_livekit_demo_environment_names() -> None:
    env = {
        "SPF_LIVE_STREAM_PUSH_URL": "push.spf.example",
        "SPF_LIVE_MIC_APP_ID": "spf-rtc",
        "SPF_LIVE_IM_APP_SIGN": "spf-sign",
        "SPF_GATEWAY_WS_ADDR": "wss://spf/ws",
        "SPF_STORAGE_TYPE": "mysql",
        "SPF_STORAGE_URL": "u:p@tcp(db.example:3306)/live?charset=utf8mb4&parseTime=True&loc=Local",
        "LIVEKIT_DEMO_AUTH_TOKEN_TTL": "120",
        "LIVEKIT_DEMO_AUTH_DEMO_LOGIN": "false",
        "LIVEKIT_DEMO_AUTH_ADMINS": "boss, chief",
        "LIVEKIT_DEMO_SERVER_MAX_BODY": "2048",
        "LIVEKIT_DEMO_CONFIG": "not a setting: names matching no section are left alone",
    }
    s = Settings.build(env=env)
    assert (s.live_stream.push_url, s.live_mic.app_id, s.live_im.app_sign, s.gateway.ws_addr) == ("push.spf.example", "spf-rtc", "spf-sign", "wss://spf/ws")
    assert (s.storage.type, s.storage.url) == ("mysql", env["SPF_STORAGE_URL"])
    assert (s.auth.token_ttl, s.auth.demo_login, s.auth.admins, s.server.max_body) == (120, False, ["boss", "chief"], 2048)


def test_later_layers_win(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(ORIGINAL_YAML, encoding="utf-8")
    assert Settings.build(config, env={"SPF_LIVE_STREAM_PUSH_URL": "spf"}).live_stream.push_url == "spf"
    both = {"SPF_LIVE_STREAM_PUSH_URL": "spf", "LIVEKIT_DEMO_LIVE_STREAM_PUSH_URL": "ours"}
    assert Settings.build(config, env=both).live_stream.push_url == "ours"
    assert Settings.build(config, env=both, live_stream={"push_url": "kw"}).live_stream.push_url == "kw"
    # a layer changes only the keys it names
    assert Settings.build(config, env=both).live_stream.pull_url == "pull.yaml.example"


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"env": {"SPF_LIVE_STREAM_AUTH_EXPIRES": "soon"}}, "live_stream.auth_expires"),
        ({"env": {"LIVEKIT_DEMO_AUTH_DEMO_LOGIN": "perhaps"}}, "auth.demo_login"),
        ({"env": {"SPF_LIVE_STREAM_PUSH_DOMAIN": "x"}}, "live_stream.push_domain"),
        ({"env": {"SPF_STORAGE_TYPE": "redis"}}, "storage.type"),
        ({"env": {}, "live_stream": {"scheme": "ftp"}}, "live_stream.scheme"),
        ({"env": {}, "live_stream": {"push_url": 5}}, "live_stream.push_url"),
        ({"env": {}, "server": {"port": True}}, "server.port"),
        ({"env": {}, "auth": {"jwt_secret": "short"}}, "auth.jwt_secret"),
        ({"env": {}, "auth": {"users": {"ann": "plain-password"}}}, "auth.users.ann"),
        ({"env": {}, "auth": {"token_ttl": 0}}, "auth.token_ttl"),
        ({"env": {}, "storage": "ftp://somewhere"}, "storage.url"),
        ({"env": {}, "nonsense": {"a": 1}}, "nonsense"),
    ],
)
def test_a_bad_setting_is_one_error_naming_its_key(kwargs: dict, key: str) -> None:
    with pytest.raises(SettingsError, match=rf"'{key}'"):
        Settings.build(**kwargs)


def test_a_bad_setting_in_a_file_names_its_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("live_mic:\n  app_id: x\n  app_secret: y\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"'live_mic\.app_secret'"):
        Settings.build(config, env={})
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(SettingsError, match="config_file"):
        Settings.build(broken, env={})


def test_a_password_hash_is_accepted_and_never_shown() -> None:
    s = Settings.build(env={}, auth={"users": {"boss": hash_password("pw")}, "admins": ["boss", "ann"]})
    assert s.auth.is_admin("boss") and not s.auth.is_admin("ann")  # admins must also be configured users
    assert s.to_dict(redact=True)["auth"]["users"] == {"boss": "***"}
    assert "pw" not in repr(s) and "scrypt" not in repr(s)


@pytest.mark.parametrize("text", ["memroy", "rooms", "rooms.db", "/tmp/rooms.txt", "ftp://host/rooms"])
def test_storage_strings_outside_the_three_forms_are_refused_naming_them(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError, match=r"'memory'.*'\.json'.*database URL") if "://" not in text else pytest.raises(SettingsError):
        Settings.build(env={}, storage=text)
    assert list(tmp_path.iterdir()) == []  # a typo creates no file



@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("memory", "memory"),
        ("none", "none"),
        ("rooms.json", "tinydb"),
        ("user:pass@tcp(127.0.0.1:3306)/live?charset=utf8mb4&parseTime=True&loc=Local", "mysql"),
        ("mysql://root@127.0.0.1:3306/live", "mysql"),
        ("mysql+pymysql://root@127.0.0.1:3306/live", "mysql"),
        ("postgresql://postgres@127.0.0.1/live", "postgresql"),
        ("postgres://postgres@127.0.0.1/live", "postgresql"),
        ("sqlite:///rooms.db", "sqlite"),
    ],
)
def test_storage_from_one_string(text: str, kind: str) -> None:
    storage = Settings.build(env={}, storage=text).storage
    assert storage.type == kind
    assert storage.url == ("" if kind in ("memory", "none") else text)  # the original's DSN is kept as is


def test_edge_settings_default_off_and_read_the_environment() -> None:
    s = Settings.build(env={})
    assert (s.edge.enabled, s.edge.rtmp_port, s.edge.max_streams, s.edge.max_viewers) == (False, 1935, 16, 200)
    env = {"LIVEKIT_DEMO_EDGE_ENABLED": "yes", "LIVEKIT_DEMO_EDGE_RTMP_PORT": "19350", "SPF_EDGE_MAX_VIEWERS": "5"}
    s = Settings.build(env=env, edge={"max_streams": 2})
    assert (s.edge.enabled, s.edge.rtmp_port, s.edge.max_streams, s.edge.max_viewers) == (True, 19350, 2, 5)
    with pytest.raises(SettingsError, match=r"edge\.max_viewers.*at least 1"):
        Settings.build(env={}, edge={"max_viewers": 0})
    with pytest.raises(SettingsError, match=r"edge\.rtmp_port"):
        Settings.build(env={"LIVEKIT_DEMO_EDGE_RTMP_PORT": "99999"})


def test_callback_signing_defaults_to_the_push_domain_and_key_as_configured() -> None:
    ls = Settings.build(env={}, live_stream={"push_url": "push.cdn.test", "push_auth_key": "pk"}).live_stream
    assert (ls.callback_signing_host, ls.callback_signing_key) == ("push.cdn.test", "pk")
    ls = Settings.build(env={"LIVEKIT_DEMO_LIVE_STREAM_CALLBACK_HOST": "cb.test"}, live_stream={"callback_auth_key": "ck"}).live_stream
    assert (ls.callback_signing_host, ls.callback_signing_key) == ("cb.test", "ck")
    assert Settings.build(env={}).live_stream.placeholder_domains
    assert not ls.placeholder_domains or ls.push_url == "push.example.com"
    assert not Settings.build(env={}, live_stream={"pull_url": "pull.cdn.test"}).live_stream.placeholder_domains
